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

let emails = 0;
/** An email no other call gives: a create needs an identifier, and one already held resolves
 * to the profile holding it. */
function uniqueEmail() {
  emails += 1;
  return `client${emails}-${process.pid}@example.com`;
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
  const { id } = await client.memory.v1.profiles(STORE).create({ traits: { Contact: { email: uniqueEmail(), lastName: "Mock" } } });
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
  const { id } = await client.memory.v1.profiles(STORE).create({ traits: { Contact: { email: uniqueEmail(), lastName: "Mock" } } });
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
  assert.deepEqual(Object.keys(fetched.traits.Contact), ["email", "lastName", "city"]);
  assert.equal(fetched.traits.Contact.city, "Paris");
  assert.equal(fetched.traits.Contact.lastName, "Mock");
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
  // One call at a time: a rejection not yet awaited would be reported as unhandled.
  for (const call of [
    () => profile.fetch(),
    () => profile.patch({ traits: { Contact: { city: "Paris" } } }),
    () => profile.remove(),
  ]) {
    const error = await restError(call());
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
  const { id } = await client.memory.v1.profiles(STORE).create({ traits: { Contact: { email: uniqueEmail(), lastName: "Mock" } } });
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

test("list traits through the library's token paging, with event times", async () => {
  const client = memoryClient();
  const email = uniqueEmail();
  const { id } = await client.memory.v1.profiles(STORE).create({ traits: { Contact: { email } } });
  const profile = client.memory.v1.profiles(STORE, id);
  // `Event-Time` is a plain header: the library's patch takes extra headers.
  await profile.patch({ traits: { Activity: { visitCount: 2 } } }, { "Event-Time": "2030-01-01T00:00:02Z" });
  await profile.patch({ traits: { Activity: { visitCount: 1, vip: true } } }, { "Event-Time": "2030-01-01T00:00:01Z" });
  await eventually("both patches applied", async () => {
    const p = await profile.fetch();
    return p.traits.Activity && p.traits.Activity.vip ? p : null;
  });
  const traits = client.memory.v1.traits(STORE, id);
  // `list` follows `meta.nextToken` page by page (pageSize 1: three pages).
  const listed = await traits.list({ pageSize: 1, orderBy: "ASC" });
  assert.deepEqual(
    listed.map((t) => [t.traitGroup, t.name, t.value]),
    [
      ["Contact", "email", email],
      ["Activity", "vip", true],
      ["Activity", "visitCount", 2],
    ],
  );
  // The older write's visitCount was stale; its time is not the trait's.
  assert.ok(listed[2].timestamp instanceof Date, String(listed[2].timestamp));
  assert.equal(listed[2].timestamp.toISOString(), "2030-01-01T00:00:02.000Z");
  assert.equal(listed[1].timestamp.toISOString(), "2030-01-01T00:00:01.000Z");
  const page = await traits.page({ pageSize: 2, traitGroups: "Activity" });
  assert.equal(page.instances.length, 2);
  assert.ok(page.nextPageUrl === undefined || page.nextPageUrl === null, String(page.nextPageUrl));
  const error = await restError(traits.list({ pageSize: 0 }));
  assert.equal(error.status, 400);
  assert.equal(error.code, 520046);
  assert.equal(error.message, "`pageSize` 0 is not within 1 to 1000");
});

test("lookup, bulk, and a profile followed through a join (what the library does with 301/308)", async () => {
  const client = memoryClient();
  const email = uniqueEmail();
  const phone = `+1317555${String(process.pid % 10000).padStart(4, "0")}`;
  const older = (await client.memory.v1.profiles(STORE).create({ traits: { Contact: { email, firstName: "Old" } } })).id;
  const newer = (await client.memory.v1.profiles(STORE).create({ traits: { Contact: { phone } } })).id;
  assert.notEqual(older, newer);
  // One bulk item holds both identifiers: the two profiles are joined into the older.
  const bulk = await client.memory.v1.bulk(STORE).update({
    profiles: [{ traits: { Contact: { email: email.toUpperCase(), phone: phone.replace("+1", "1-"), city: "Oslo" } } }],
  });
  assert.equal(bulk.message, "Profile batch accepted for processing.");

  const lookup = await client.memory.v1.lookup(STORE).create({ idType: "phone", value: phone.slice(2) });
  assert.equal(lookup.normalizedValue, phone);
  assert.deepEqual(lookup.profiles, [older]);

  const canonical = await eventually("the join applied", async () => {
    const p = await client.memory.v1.profiles(STORE, older).fetch();
    return p.traits.Contact.city === "Oslo" ? p : null;
  });
  assert.equal(canonical.traits.Contact.firstName, "Old");

  // The library does not follow redirects (its request client sets `maxRedirects: 0` unless
  // `allowRedirects`). A fetch treats 3xx as success: it resolves with the redirect body
  // read as a profile (no id); the status and headers are in `fetchWithHttpInfo`.
  const moved = client.memory.v1.profiles(STORE, newer);
  const fetched = await moved.fetchWithHttpInfo();
  assert.equal(fetched.statusCode, 301);
  const location = `${baseUrl}/v1/Stores/${STORE}/Profiles/${older}`;
  assert.equal(fetched.headers.location, location);
  assert.equal(fetched.headers["canonical-profile-id"], older);
  const plain = await moved.fetch();
  assert.equal(plain.id, undefined);
  // A write (PATCH, DELETE) is 308, not re-sent by the library either. Its patch takes
  // 3xx as an error: a RestException with status 308 and the redirect's message (the body has
  // no code). Its remove takes 3xx as success: it resolves, and removeWithHttpInfo shows the
  // 308 and the headers. Neither is applied to the canonical profile.
  const patchError = await restError(moved.patch({ traits: { Contact: { city: "Rome" } } }));
  assert.equal(patchError.status, 308);
  assert.equal(patchError.message, "This resource has moved.");
  const removed = await moved.removeWithHttpInfo();
  assert.equal(removed.statusCode, 308);
  assert.equal(removed.headers.location, location);
  assert.equal(removed.headers["canonical-profile-id"], older);
  // The listing of the joined-away id redirects as well (301), to the canonical listing.
  const listing = await fetch(`${baseUrl}/v1/Stores/${STORE}/Profiles/${newer}/Traits`, {
    headers: { authorization: "Basic " + Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString("base64") },
    redirect: "manual",
  });
  assert.equal(listing.status, 301);
  assert.equal(listing.headers.get("location"), `${location}/Traits`);
  assert.deepEqual(await listing.json(), { message: "This resource has moved.", uri: `${location}/Traits` });
  // Following it by hand: the canonical id's answer names itself.
  const followed = await client.memory.v1.profiles(STORE, fetched.headers["canonical-profile-id"]).fetchWithHttpInfo();
  assert.equal(followed.statusCode, 200);
  assert.equal(followed.headers["canonical-profile-id"], older);
  assert.equal(followed.body.id, older);
  assert.equal(followed.body.traits.Contact.city, "Oslo");
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
  const { id } = await memoryClient().memory.v1.profiles(STORE).create({ traits: { Contact: { email: uniqueEmail(), lastName: "Mock" } } });
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
