// Drives profile-service through the official twilio helper library (the version pinned in
// package-lock.json), with `client.memory.baseUrl` pointed at the service on loopback.
// The two checks the library cannot make (it always sends credentials and always sends
// `Content-Type: application/json`) use plain HTTP, at the end.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");
const twilio = require("twilio");

const ACCOUNT_SID = "AC" + "0123456789abcdef".repeat(2);
const AUTH_TOKEN = "client-test-token";
const STORE = "mem_store_00000000000000000000000000";
const REPO = path.resolve(__dirname, "..", "..", "..");
const BIN =
  process.env.PROFILE_SERVICE_BIN ||
  path.join(process.env.CARGO_TARGET_DIR || path.join(REPO, "target"), "debug", "profile-service");

let service;
let dataDir;
let baseUrl;

/** A twilio client whose Memory domain is the local service. */
function memoryClient(authToken = AUTH_TOKEN) {
  const client = twilio(ACCOUNT_SID, authToken, { autoRetry: false });
  client.memory.baseUrl = baseUrl;
  return client;
}

/** Calls `f` until it resolves to a truthy value, for at most `ms`. */
async function eventually(what, f, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await f();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The rejection of `promise`, which must be a RestException. */
async function restError(promise) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.constructor.name, "RestException", String(error));
    return error;
  }
  assert.fail("the call succeeded");
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `service binary not built: ${BIN}`);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "profile-service-client-test-"));
  service = spawn(
    BIN,
    ["--port", "0", "--data-dir", dataDir, "--max-body-bytes", "65536"],
    {
      env: { ...process.env, TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines = readline.createInterface({ input: service.stdout });
  const line = await new Promise((resolve, reject) => {
    service.once("exit", (code) => reject(new Error(`service exited with ${code}`)));
    lines.once("line", resolve);
  });
  const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
  assert.ok(match, `unexpected first line: ${line}`);
  baseUrl = match[1];
});

after(() => {
  if (service) service.kill("SIGKILL");
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test("create, patch (202 and its message), fetch after the worker applied it, remove", async () => {
  const client = memoryClient();
  const created = await client.memory.v1.profiles(STORE).create({
    traits: { Contact: { email: "alyssa@example.com", firstName: "Alyssa" } },
  });
  assert.match(created.id, /^mem_profile_[0-7][0-9a-z]{25}$/);
  assert.equal(created.message, "Profile resolved and accepted for processing.");

  const profile = client.memory.v1.profiles(STORE, created.id);
  const patched = await profile.patchWithHttpInfo({
    traits: { Activity: { lastVisited: "2024-10-07T15:39:25Z", visitCount: 3 }, Contact: { firstName: null } },
  });
  assert.equal(patched.statusCode, 202);
  assert.equal(patched.body.message, "Trait modifications accepted for processing.");
  const again = await profile.patch({ traits: { Preferences: { channels: ["sms", "email"] } } });
  assert.equal(again.message, "Trait modifications accepted for processing.");

  const expected = {
    Contact: { email: "alyssa@example.com" },
    Activity: { lastVisited: "2024-10-07T15:39:25Z", visitCount: 3 },
    Preferences: { channels: ["sms", "email"] },
  };
  const fetched = await eventually("both patches applied", async () => {
    const p = await profile.fetch();
    return p.traits && p.traits.Preferences ? p : null;
  });
  assert.equal(fetched.id, created.id);
  assert.ok(fetched.createdAt instanceof Date && !isNaN(fetched.createdAt), String(fetched.createdAt));
  assert.deepEqual(fetched.traits, expected);
  // Order is part of the profile: groups and traits as they were added.
  assert.equal(JSON.stringify(fetched.traits), JSON.stringify(expected));

  const onlyActivity = await profile.fetch({ traitGroups: "Activity,Loyalty" });
  assert.deepEqual(onlyActivity.traits, { Activity: expected.Activity });

  const removed = await profile.removeWithHttpInfo();
  assert.equal(removed.statusCode, 202);
  assert.equal(removed.body.message, "Profile accepted for deletion.");
  const gone = await eventually("the delete applied", async () => {
    try {
      await profile.fetch();
      return null;
    } catch (error) {
      return error;
    }
  });
  assert.equal(gone.status, 404);
  assert.equal(gone.code, 20404);
});

test("an unknown group is rejected with 400 and code 520047", async () => {
  const client = memoryClient();
  const { id } = await client.memory.v1.profiles(STORE).create({ traits: { Contact: { lastName: "Mock" } } });
  const error = await restError(
    client.memory.v1.profiles(STORE, id).patch({ traits: { Loyalty: { tier: "gold" } } }),
  );
  assert.equal(error.status, 400);
  assert.equal(error.code, 520047);
  assert.equal(error.moreInfo, "https://www.twilio.com/docs/api/errors/520047");
  assert.match(error.message, /`\/traits\/Loyalty`: trait group `Loyalty` is not declared/);
});

test("an unknown trait is rejected with 400 and code 520063, nothing applied", async () => {
  const client = memoryClient();
  const { id } = await client.memory.v1.profiles(STORE).create({ traits: { Contact: { lastName: "Mock" } } });
  const profile = client.memory.v1.profiles(STORE, id);
  const error = await restError(profile.patch({ traits: { Contact: { lastName: "Other", fax: "+1555" } } }));
  assert.equal(error.status, 400);
  assert.equal(error.code, 520063);
  assert.match(error.message, /`\/traits\/Contact\/fax`: trait `fax` is not declared in trait group `Contact`/);

  const wrongType = await restError(profile.patch({ traits: { Activity: { visitCount: "many" } } }));
  assert.equal(wrongType.status, 400);
  assert.equal(wrongType.code, 520046);
  assert.match(wrongType.message, /`\/traits\/Activity\/visitCount`/);

  // A later valid patch is applied after the rejected ones, which changed nothing.
  await profile.patch({ traits: { Contact: { city: "Paris" } } });
  const fetched = await eventually("the valid patch applied", async () => {
    const p = await profile.fetch();
    return p.traits.Contact.city ? p : null;
  });
  assert.deepEqual(fetched.traits, { Contact: { lastName: "Mock", city: "Paris" } });
});

test("a wrong password is rejected with 401 and code 20003", async () => {
  const error = await restError(
    memoryClient("wrong-token").memory.v1.profiles(STORE, "mem_profile_00000000000000000000000000").fetch(),
  );
  assert.equal(error.status, 401);
  assert.equal(error.code, 20003);
});

test("an unknown profile is 404 with code 20404, for fetch, patch and remove", async () => {
  const profile = memoryClient().memory.v1.profiles(STORE, "mem_profile_00000000000000000000000000");
  for (const call of [profile.fetch(), profile.patch({ traits: { Contact: { city: "Paris" } } }), profile.remove()]) {
    const error = await restError(call);
    assert.equal(error.status, 404);
    assert.equal(error.code, 20404);
  }
  const unknownStore = await restError(
    memoryClient().memory.v1.profiles("mem_store_00000000000000000000000001", "mem_profile_00000000000000000000000000").fetch(),
  );
  assert.equal(unknownStore.status, 404);
  assert.equal(unknownStore.code, 20404);
});

test("an id that is not a TTID is 400", async () => {
  const error = await restError(memoryClient().memory.v1.profiles(STORE, "mem_profile_X").fetch());
  assert.equal(error.status, 400);
  assert.match(error.message, /is not a valid profile id/);
});

test("a body over the size limit is 400", async () => {
  const client = memoryClient();
  const { id } = await client.memory.v1.profiles(STORE).create({ traits: { Contact: { lastName: "Mock" } } });
  const error = await restError(
    client.memory.v1.profiles(STORE, id).patch({ traits: { Contact: { lastName: "x".repeat(70000) } } }),
  );
  assert.equal(error.status, 400);
  assert.match(error.message, /exceeds the limit of 65536 bytes/);
});

test("the trait groups list, through the library's paging", async () => {
  const groups = await memoryClient().memory.v1.traitGroups(STORE).list({ includeTraits: true });
  assert.deepEqual(
    groups.map((g) => g.displayName),
    ["Contact", "Activity", "Preferences"],
  );
  assert.equal(groups[0].traits.email.dataType, "STRING");
});

// Plain HTTP: the library cannot send a request without credentials or with another
// content type.
test("plain HTTP: no credentials is 401, a non-JSON content type is 400", async () => {
  const url = `${baseUrl}/v1/Stores/${STORE}/Profiles/mem_profile_00000000000000000000000000`;
  const anonymous = await fetch(url);
  assert.equal(anonymous.status, 401);
  assert.deepEqual(await anonymous.json(), {
    code: 20003,
    message: "Failed to complete request due to lack of authentication credentials",
    more_info: "https://www.twilio.com/docs/api/errors/20003",
    status: 401,
  });

  const authorization = "Basic " + Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString("base64");
  const { id } = await memoryClient().memory.v1.profiles(STORE).create({ traits: { Contact: { lastName: "Mock" } } });
  const form = await fetch(`${baseUrl}/v1/Stores/${STORE}/Profiles/${id}`, {
    method: "PATCH",
    headers: { authorization, "content-type": "application/x-www-form-urlencoded" },
    body: "traits=1",
  });
  assert.equal(form.status, 400);
  const body = await form.json();
  assert.equal(body.status, 400);
  assert.match(body.message, /expected content type `application\/json`/);
});
