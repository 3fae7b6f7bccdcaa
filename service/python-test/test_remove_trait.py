"""The official Python helper library (`twilio` 9.x, pinned in requirements.txt) against
profile-service: its `profiles(...).patch(...)` cannot remove a trait, because the library
drops every `None` from a request body before sending it (`ClientBase.copy_non_none_values`);
sending the body through the client's `http_client` directly can.

Run by service/run-tests.sh in a venv; by hand:

    PROFILE_SERVICE_BIN=target/debug/profile-service \
        service/python-test/.venv/bin/python -m unittest discover -s service/python-test -v
"""

import json
import os
import subprocess
import tempfile
import time
import unittest

import twilio
from twilio.base.client_base import ClientBase
from twilio.rest import Client
from twilio.rest.memory.v1.profile import ProfileList

ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
AUTH_TOKEN = "python-test-token"
STORE = "mem_store_00000000000000000000000000"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("PROFILE_SERVICE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")),
    "debug",
    "profile-service",
)


class RemoveTraitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise RuntimeError(f"service binary not built: {BIN}")
        cls.data_dir = tempfile.TemporaryDirectory(prefix="profile-service-python-test-")
        cls.service = subprocess.Popen(
            [
                BIN,
                "--port", "0",
                "--data-dir", cls.data_dir.name,
                "--account-sid", ACCOUNT_SID,
                "--auth-token", AUTH_TOKEN,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = cls.service.stdout.readline().strip()
        prefix = "profile-service listening on "
        if not line.startswith(prefix):
            cls.service.kill()
            raise RuntimeError(f"the service did not start: {line!r}")
        cls.base_url = line[len(prefix):]
        cls.service.stdout.readline()  # the recovery line

    @classmethod
    def tearDownClass(cls):
        cls.service.terminate()
        cls.service.wait(timeout=30)
        cls.service.stdout.close()
        cls.data_dir.cleanup()

    def client(self):
        """A twilio client whose Memory domain is the local service."""
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.memory.base_url = self.base_url
        return client

    def create(self, client, traits):
        profile = client.memory.v1.profiles(STORE).create(
            ProfileList.ProfileData({"traits": traits})
        )
        self.assertTrue(profile.id.startswith("mem_profile_"), profile.id)
        return profile.id

    def traits_when(self, client, profile_id, done):
        """The profile's traits once `done(traits)` holds (the worker applies within ms)."""
        deadline = time.monotonic() + 15
        while True:
            profile = client.memory.v1.profiles(STORE, profile_id).fetch()
            if done(profile.traits) or time.monotonic() > deadline:
                return profile.traits
            time.sleep(0.02)

    def test_the_pinned_library_is_9x(self):
        self.assertEqual(twilio.__version__.split(".")[0], "9", twilio.__version__)

    def test_the_library_drops_none_from_request_bodies(self):
        self.assertIsInstance(self.client(), ClientBase)
        body = {"traits": {"Contact": {"firstName": None, "city": "Paris"}, "Activity": None}}
        self.assertEqual(
            self.client().copy_non_none_values(body),
            {"traits": {"Contact": {"city": "Paris"}}},
        )

    def test_patch_with_none_does_not_remove_the_trait(self):
        client = self.client()
        profile_id = self.create(
            client,
            {"Contact": {"email": "drop@example.com", "firstName": "Alyssa", "lastName": "Hacker"}},
        )
        # What the caller means: remove firstName, set city. What is sent: set city only.
        client.memory.v1.profiles(STORE, profile_id).patch(
            ProfileList.ProfilePatch(
                {"traits": {"Contact": {"firstName": None, "city": "Paris"}}}
            )
        )
        traits = self.traits_when(
            client, profile_id, lambda t: t["Contact"].get("city") == "Paris"
        )
        self.assertEqual(
            traits,
            {
                "Contact": {
                    "email": "drop@example.com",
                    "firstName": "Alyssa",
                    "lastName": "Hacker",
                    "city": "Paris",
                }
            },
        )

    def test_the_http_client_workaround_removes_the_trait(self):
        client = self.client()
        profile_id = self.create(
            client,
            {"Contact": {"email": "remove@example.com", "firstName": "Alyssa", "lastName": "Hacker"}},
        )
        url = f"{self.base_url}/v1/Stores/{STORE}/Profiles/{profile_id}"
        # `http_client.request` (TwilioHttpClient) hands a dict to `requests` as `json=` when
        # the Content-Type is application/json, so `None` goes out as `null`. (A string from
        # json.dumps would be encoded again, as one JSON string.)
        response = client.http_client.request(
            "PATCH",
            url,
            auth=(ACCOUNT_SID, AUTH_TOKEN),
            data={"traits": {"Contact": {"firstName": None, "city": "Paris"}}},
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        self.assertEqual(response.status_code, 202, response.text)
        self.assertEqual(
            json.loads(response.text),
            {"message": "Trait modifications accepted for processing."},
        )
        traits = self.traits_when(
            client, profile_id, lambda t: t["Contact"].get("city") == "Paris"
        )
        self.assertEqual(
            traits,
            {"Contact": {"email": "remove@example.com", "lastName": "Hacker", "city": "Paris"}},
        )


if __name__ == "__main__":
    unittest.main()
