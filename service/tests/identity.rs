//! Identity, event time, the traits listing and bulk upserts over HTTP: create resolution,
//! joins and their redirects (301/308 with `Location` and `Canonical-Profile-Id`), Lookup,
//! `Event-Time` and stale writes, order independence across two services, listing pages
//! and errors, and bulk per-item failures.

mod common;

use std::time::Duration;

use common::{Client, STORE, Server, profile_path, snapshot_profiles, traits_path, wait_for};
use serde_json::{Value, json};

fn error_body(code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/api/errors/{code}"),
        "status": 400,
    })
}

fn profiles_path() -> String {
    format!("/v1/Stores/{STORE}/Profiles")
}

/// Creates (or resolves) a profile from `traits`; its id.
#[track_caller]
fn create(client: &Client, traits: &str) -> String {
    let response = client.post(&profiles_path(), traits).unwrap();
    assert_eq!(response.status, 202, "{}", response.body);
    response.json()["id"].as_str().unwrap().to_owned()
}

/// Creates (or resolves) a profile from `traits` with `Event-Time` `at`; its id.
#[track_caller]
fn create_at(client: &Client, at: &str, traits: &str) -> String {
    let response = client
        .request(
            "POST",
            &profiles_path(),
            &[("Content-Type", "application/json"), ("Event-Time", at)],
            Some(traits.as_bytes()),
        )
        .unwrap();
    assert_eq!(response.status, 202, "{}", response.body);
    response.json()["id"].as_str().unwrap().to_owned()
}

/// The profile once `ready` holds for it (the worker applies asynchronously).
#[track_caller]
fn profile_when(client: &Client, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_for("the profile applied", Duration::from_secs(30), || {
        let response = client.get(&profile_path(id)).unwrap();
        (response.status == 200)
            .then(|| response.json())
            .filter(|body| ready(body))
    })
}

fn lookup(client: &Client, id_type: &str, value: &str) -> Value {
    let body = json!({"idType": id_type, "value": value}).to_string();
    let response = client
        .post(&format!("{}/Lookup", profiles_path()), &body)
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

fn started() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Server::start(dir.path()), dir)
}

#[test]
fn a_create_without_an_identifier_is_refused() {
    let (server, _dir) = started();
    let client = server.client();
    for traits in [
        r#"{"traits": {"Contact": {"city": "Paris"}}}"#,
        r#"{"traits": {}}"#,
        r#"{"traits": {"Contact": {"email": null, "city": "Paris"}}}"#,
    ] {
        let response = client.post(&profiles_path(), traits).unwrap();
        assert_eq!(response.status, 400, "{traits}");
        assert_eq!(
            response.json(),
            error_body(
                520046,
                "a profile must carry at least one identifier trait (a trait with `idTypePromotion`: `Contact.email`, `Contact.phone`)"
            )
        );
    }
}

#[test]
fn a_create_matching_one_profile_resolves_to_it_and_applies_its_traits() {
    let (server, _dir) = started();
    let client = server.client();
    let id = create(
        &client,
        r#"{"traits": {"Contact": {"email": "alyssa@example.com", "firstName": "Alyssa"}}}"#,
    );
    // The same email, written differently: normalized, it matches.
    let again = create(
        &client,
        r#"{"traits": {"Contact": {"email": "Alyssa@Example.COM", "city": "Paris"}}}"#,
    );
    assert_eq!(again, id);
    let profile = profile_when(&client, &id, |p| p["traits"]["Contact"]["city"] == "Paris");
    assert_eq!(
        profile["traits"],
        json!({"Contact": {"email": "Alyssa@Example.COM", "firstName": "Alyssa", "city": "Paris"}})
    );
    let found = lookup(&client, "email", "ALYSSA@example.com ");
    assert_eq!(
        found,
        json!({"normalizedValue": "alyssa@example.com", "profiles": [id]})
    );
}

/// A create matching two profiles joins them into the one created first, which answers;
/// the other id redirects: 301 for reads, 308 for writes, with `Location` and
/// `Canonical-Profile-Id`; and all of it survives a restart.
#[test]
fn a_create_matching_two_profiles_joins_them_and_the_other_id_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let client = server.client();
    let first = create(
        &client,
        r#"{"traits": {"Contact": {"email": "a@example.com", "firstName": "Ann"}}}"#,
    );
    let second = create(
        &client,
        r#"{"traits": {"Contact": {"phone": "+13175551234", "lastName": "Lee"}, "Activity": {"vip": true}}}"#,
    );
    assert_ne!(first, second);
    let joined = create(
        &client,
        r#"{"traits": {"Contact": {"email": "A@example.com", "phone": "1-317-555-1234", "city": "Oslo"}}}"#,
    );
    assert_eq!(joined, first, "the profile created first answers");
    let profile = profile_when(&client, &first, |p| {
        p["traits"]["Contact"]["city"] == "Oslo"
    });
    assert_eq!(
        profile["traits"],
        json!({
            "Contact": {"email": "A@example.com", "phone": "1-317-555-1234", "firstName": "Ann", "lastName": "Lee", "city": "Oslo"},
            "Activity": {"vip": true}
        })
    );
    let check = |server: &Server| {
        let client = server.client();
        let port = server.port;
        let base = format!("http://127.0.0.1:{port}");
        let response = client.get(&profile_path(&first)).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("Canonical-Profile-Id"),
            Some(first.as_str())
        );
        let cases = [
            ("GET", profile_path(&second), 301, profile_path(&first)),
            (
                "GET",
                format!("{}?pageSize=1", traits_path(&second)),
                301,
                format!("{}?pageSize=1", traits_path(&first)),
            ),
            ("PATCH", profile_path(&second), 308, profile_path(&first)),
            ("DELETE", profile_path(&second), 308, profile_path(&first)),
        ];
        for (method, path, status, to) in cases {
            let body =
                (method == "PATCH").then_some(&br#"{"traits": {"Contact": {"city": "X"}}}"#[..]);
            let response = client
                .request(method, &path, &[("Content-Type", "application/json")], body)
                .unwrap();
            assert_eq!(
                response.status, status,
                "{method} {path}: {}",
                response.body
            );
            let uri = format!("{base}{to}");
            assert_eq!(
                response.header("Location"),
                Some(uri.as_str()),
                "{method} {path}"
            );
            assert_eq!(
                response.header("Canonical-Profile-Id"),
                Some(first.as_str()),
                "{method} {path}"
            );
            assert_eq!(
                response.json(),
                json!({"message": "This resource has moved.", "uri": uri}),
                "{method} {path}"
            );
        }
        for (id_type, value) in [("email", "a@example.com"), ("phone", "(317) 555-1234")] {
            assert_eq!(lookup(&client, id_type, value)["profiles"], json!([first]));
        }
    };
    check(&server);
    server.kill();
    let server = Server::start(dir.path());
    check(&server);
    // The redirected writes were not applied.
    let response = server.client().get(&profile_path(&first)).unwrap();
    assert_eq!(response.json()["traits"]["Contact"]["city"], "Oslo");
}

/// A patch setting an identifier another profile holds joins the two into the one created
/// first, even when the patched profile is the newer one.
#[test]
fn a_patch_setting_anothers_identifier_joins_them() {
    let (server, _dir) = started();
    let client = server.client();
    let older = create(
        &client,
        r#"{"traits": {"Contact": {"email": "old@example.com"}}}"#,
    );
    let newer = create(
        &client,
        r#"{"traits": {"Contact": {"phone": "+4930123456"}, "Preferences": {"language": "de"}}}"#,
    );
    let response = client
        .patch(
            &profile_path(&newer),
            r#"{"traits": {"Contact": {"email": "OLD@example.com"}}}"#,
        )
        .unwrap();
    assert_eq!(response.status, 202, "{}", response.body);
    let profile = profile_when(&client, &older, |p| p["traits"]["Preferences"].is_object());
    assert_eq!(profile["id"], json!(older));
    assert_eq!(
        profile["traits"]["Contact"],
        json!({"email": "OLD@example.com", "phone": "+4930123456"})
    );
    let response = client.get(&profile_path(&newer)).unwrap();
    assert_eq!(response.status, 301);
    assert_eq!(
        response.header("Canonical-Profile-Id"),
        Some(older.as_str())
    );
    assert_eq!(
        lookup(&client, "phone", "+49 30 123456")["profiles"],
        json!([older])
    );
    // Lookup's own checks.
    let lookup_path = format!("{}/Lookup", profiles_path());
    for (body, message) in [
        (
            r#"{"idType": "fax", "value": "1"}"#,
            "`idType` `fax` is not the `idTypePromotion` of any trait of this store",
        ),
        (
            r#"{"idType": "phone", "value": "555-1234"}"#,
            "`value` `555-1234` is not a valid `phone` identifier",
        ),
    ] {
        let response = client.post(&lookup_path, body).unwrap();
        assert_eq!(response.json(), error_body(520046, message), "{body}");
    }
    assert_eq!(
        lookup(&client, "email", "nobody@example.com"),
        json!({"normalizedValue": "nobody@example.com", "profiles": []})
    );
}

/// With `Event-Time`, a late write with an older event time is stale: it changes nothing,
/// and the listing shows the newer write's time.
#[test]
fn an_older_event_time_does_not_overwrite_newer_data() {
    let (server, _dir) = started();
    let client = server.client();
    let id = create(
        &client,
        r#"{"traits": {"Contact": {"email": "e@example.com"}}}"#,
    );
    let path = profile_path(&id);
    let newer = client
        .patch_at(
            &path,
            "2025-03-01T10:00:00Z",
            r#"{"traits": {"Contact": {"city": "Rome"}}}"#,
        )
        .unwrap();
    assert_eq!(newer.status, 202);
    let older = client
        .patch_at(
            &path,
            "2025-03-01T11:00:00+02:00",
            r#"{"traits": {"Contact": {"city": "Paris", "lastName": "Old"}}}"#,
        )
        .unwrap();
    assert_eq!(older.status, 202);
    let profile = profile_when(&client, &id, |p| {
        p["traits"]["Contact"]["lastName"] == "Old"
    });
    assert_eq!(profile["traits"]["Contact"]["city"], "Rome");
    let listing = client
        .get(&format!(
            "{}?traitGroups=Contact&orderBy=ASC",
            traits_path(&id)
        ))
        .unwrap();
    assert_eq!(listing.status, 200);
    let traits = listing.json()["traits"].clone();
    let city = traits
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "city")
        .unwrap();
    assert_eq!(
        city,
        &json!({"name": "city", "value": "Rome", "traitGroup": "Contact", "timestamp": "2025-03-01T10:00:00Z"})
    );
    let response = client
        .patch_at(
            &path,
            "yesterday",
            r#"{"traits": {"Contact": {"city": "X"}}}"#,
        )
        .unwrap();
    assert_eq!(
        response.json(),
        error_body(
            520046,
            "header `Event-Time`: `yesterday` is not an RFC 3339 date-time in the years 0000 to 9999, such as `2024-10-07T15:39:25.123456Z`"
        )
    );
}

/// The writes of one customer, each with its event time: removals, sets again, and two
/// writes at the same instant.
const WRITES: [(&str, &str); 6] = [
    (
        "2025-05-01T09:00:00Z",
        r#"{"traits": {"Contact": {"city": "Paris", "lastName": "Doe"}, "Activity": {"visitCount": 1}}}"#,
    ),
    (
        "2025-05-01T09:00:01Z",
        r#"{"traits": {"Contact": {"city": null}, "Preferences": {"language": "fr"}}}"#,
    ),
    (
        "2025-05-01T09:00:02.5Z",
        r#"{"traits": {"Contact": {"city": "Rome"}, "Activity": {"visitCount": 2, "vip": true}}}"#,
    ),
    (
        "2025-05-01T09:00:03Z",
        r#"{"traits": {"Activity": {"vip": null}, "Preferences": {"channels": ["sms"]}}}"#,
    ),
    (
        "2025-05-01T09:00:04Z",
        r#"{"traits": {"Contact": {"firstName": "Jo"}, "Preferences": {"language": null}}}"#,
    ),
    (
        "2025-05-01T09:00:05Z",
        r#"{"traits": {"Preferences": {"language": "it"}, "Activity": {"lastVisited": "x"}}}"#,
    ),
];

/// The traits part of a body, as sent (ids and creation times differ between two services).
fn without_id(body: &str) -> String {
    format!("{{{}", &body[body.find(r#""traits""#).unwrap()..])
}

/// The stored form without tiebreakers: the tiebreaker is each store's own log sequence
/// number, which depends on the order the store received the writes in.
fn without_tiebreaks(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("tiebreak");
            map.remove("id");
            map.remove("createdAt");
            map.values_mut().for_each(without_tiebreaks);
        }
        Value::Array(items) => items.iter_mut().for_each(without_tiebreaks),
        _ => {}
    }
}

/// The same writes, sent with `Event-Time` in two different orders to two fresh services,
/// end at the same profile: the GET bodies byte for byte, and the stored forms (up to the
/// stores' own tiebreakers).
#[test]
fn the_same_writes_in_two_orders_end_at_the_same_profile() {
    let orders: [[usize; 6]; 2] = [[0, 1, 2, 3, 4, 5], [5, 3, 1, 4, 0, 2]];
    let mut bodies = Vec::new();
    let mut stored = Vec::new();
    for order in orders {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path());
        let client = server.client();
        let id = create_at(
            &client,
            "2025-05-01T08:00:00Z",
            r#"{"traits": {"Contact": {"email": "same@example.com"}}}"#,
        );
        for index in order {
            let (at, body) = WRITES[index];
            let response = client.patch_at(&profile_path(&id), at, body).unwrap();
            assert_eq!(response.status, 202, "{}", response.body);
        }
        // A restart applies everything before it listens, and writes the stored form.
        server.kill();
        let server = Server::start(dir.path());
        let response = server.client().get(&profile_path(&id)).unwrap();
        bodies.push(without_id(&response.body));
        let mut profile = snapshot_profiles(dir.path()).remove(&id).unwrap();
        without_tiebreaks(&mut profile);
        stored.push(profile);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(
        bodies[0],
        r#"{"traits":{"Contact":{"email":"same@example.com","firstName":"Jo","lastName":"Doe","city":"Rome"},"Activity":{"lastVisited":"x","visitCount":2},"Preferences":{"channels":["sms"],"language":"it"}}}"#
    );
    assert_eq!(stored[0], stored[1]);
    assert_eq!(
        serde_json::to_string(&stored[0]).unwrap(),
        serde_json::to_string(&stored[1]).unwrap()
    );
    // The removal is kept as a tombstone with its event time.
    assert_eq!(
        stored[0]["traits"]["Activity"]["vip"],
        json!({"value": null, "time": "2025-05-01T09:00:03Z"})
    );
}

#[test]
fn traits_are_listed_in_pages_with_the_crates_errors() {
    let (server, _dir) = started();
    let client = server.client();
    let id = create_at(
        &client,
        "2025-05-01T08:00:00Z",
        r#"{"traits": {"Contact": {"email": "l@example.com", "firstName": "Lu"}}}"#,
    );
    for (at, body) in WRITES {
        assert_eq!(
            client
                .patch_at(&profile_path(&id), at, body)
                .unwrap()
                .status,
            202
        );
    }
    profile_when(&client, &id, |p| {
        p["traits"]["Preferences"]["language"] == "it"
    });
    // Page by page, newest first: every live trait once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("{}?pageSize=3", traits_path(&id));
        if let Some(token) = &token {
            path.push_str(&format!("&pageToken={token}"));
        }
        let response = client.get(&path).unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.header("Canonical-Profile-Id"), Some(id.as_str()));
        let page = response.json();
        assert_eq!(page["meta"]["key"], "traits");
        assert_eq!(page["meta"]["pageSize"], 3);
        for record in page["traits"].as_array().unwrap() {
            seen.push(format!(
                "{}.{}",
                record["traitGroup"].as_str().unwrap(),
                record["name"].as_str().unwrap()
            ));
        }
        match page["meta"]["nextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "Preferences.language",
            "Activity.lastVisited",
            "Contact.firstName",
            "Preferences.channels",
            "Contact.city",
            "Activity.visitCount",
            "Contact.lastName",
            "Contact.email",
        ]
    );
    let only = client
        .get(&format!(
            "{}?traitGroups=Preferences,Activity&orderBy=ASC",
            traits_path(&id)
        ))
        .unwrap()
        .json();
    let names: Vec<&str> = only["traits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["visitCount", "channels", "lastVisited", "language"]);
    let errors = [
        ("pageSize=0", 520046, "`pageSize` 0 is not within 1 to 1000"),
        (
            "pageSize=1001",
            520046,
            "`pageSize` 1001 is not within 1 to 1000",
        ),
        (
            "orderBy=up",
            520046,
            "`orderBy` `up` is neither `ASC` nor `DESC`",
        ),
        (
            "pageToken=x",
            520046,
            "`pageToken` is not a token this listing made",
        ),
        (
            "traitGroups=Contact,Nope",
            520047,
            "`traitGroups`: trait group `Nope` is not declared in the schema",
        ),
    ];
    for (query, code, message) in errors {
        let response = client
            .get(&format!("{}?{query}", traits_path(&id)))
            .unwrap();
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.json(), error_body(code, message), "{query}");
    }
    let first = client
        .get(&format!("{}?pageSize=2", traits_path(&id)))
        .unwrap()
        .json();
    let token = first["meta"]["nextToken"].as_str().unwrap();
    let response = client
        .get(&format!(
            "{}?pageSize=2&orderBy=ASC&pageToken={token}",
            traits_path(&id)
        ))
        .unwrap();
    assert_eq!(
        response.json(),
        error_body(
            520046,
            "`pageToken` was made for another `orderBy` or `traitGroups`"
        )
    );
    let missing = "mem_profile_00000000000000000000000000";
    assert_eq!(client.get(&traits_path(missing)).unwrap().status, 404);
}

#[test]
fn a_bulk_upsert_resolves_each_item_like_a_create() {
    let (server, _dir) = started();
    let client = server.client();
    let existing = create(
        &client,
        r#"{"traits": {"Contact": {"email": "x@example.com"}}}"#,
    );
    let body = r#"{"profiles": [
        {"traits": {"Contact": {"email": "X@example.com", "firstName": "Xi"}}},
        {"traits": {"Contact": {"phone": "+13175556789", "lastName": "Doe"}}},
        {"traits": {"Contact": {"phone": "317 555 6789", "email": "y@example.com"}}}
    ]}"#;
    let response = client
        .put(&format!("{}/Bulk", profiles_path()), body)
        .unwrap();
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(
        response.json(),
        json!({"message": "Profile batch accepted for processing."})
    );
    let profile = profile_when(&client, &existing, |p| {
        p["traits"]["Contact"]["firstName"] == "Xi"
    });
    assert_eq!(profile["traits"]["Contact"]["email"], "X@example.com");
    let doe = lookup(&client, "phone", "+13175556789")["profiles"].clone();
    assert_eq!(doe.as_array().unwrap().len(), 1);
    assert_eq!(lookup(&client, "email", "y@example.com")["profiles"], doe);
}

/// One bad item rejects the whole request (400, nothing accepted), and the answer names
/// every failing item by its pointer in the request body.
#[test]
fn a_bulk_upsert_with_bad_items_is_refused_whole_naming_each() {
    let (server, _dir) = started();
    let client = server.client();
    let path = format!("{}/Bulk", profiles_path());
    let body = r#"{"profiles": [
        {"traits": {"Contact": {"email": "ok@example.com"}}},
        {"traits": {"Contact": {"email": 3}}},
        {"traits": {"Contact": {"email": "fine@example.com"}}},
        {"traits": {"Contact": {"city": "no identifier"}}},
        {"traits": {"Contact": {"phone": "12", "fax": "1"}}}
    ]}"#;
    let response = client.put(&path, body).unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        error_body(
            520063,
            "bulk upsert rejected, nothing accepted: 3 of 5 profiles invalid: \
             `/profiles/1/traits/Contact/email`: expected a string, found a number; \
             `/profiles/3`: a profile must carry at least one identifier trait (a trait with `idTypePromotion`: `Contact.email`, `Contact.phone`); \
             `/profiles/4/traits/Contact/phone`: string does not match pattern `^\\+?[0-9 ().-]{7,24}$`; \
             `/profiles/4/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`"
        )
    );
    // Nothing of the request was accepted.
    assert_eq!(
        lookup(&client, "email", "ok@example.com")["profiles"],
        json!([])
    );
    for (body, message) in [
        (
            r#"{"profiles": []}"#.to_owned(),
            "`/profiles` holds 0 profiles, not 1 to 1000",
        ),
        (
            format!(
                r#"{{"profiles": [{}]}}"#,
                vec![r#"{"traits": {"Contact": {"email": "a@b.c"}}}"#; 1001].join(",")
            ),
            "`/profiles` holds 1001 profiles, not 1 to 1000",
        ),
    ] {
        let response = client.put(&path, &body).unwrap();
        assert_eq!(response.json(), error_body(520046, message));
    }
}
