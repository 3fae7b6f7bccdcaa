//! The HTTP surface over HTTP/1.1: shapes of answers and errors, authentication on
//! every route, request checks, and the memory mode.

mod common;

use std::time::Duration;

use common::{Client, STORE, Server, basic, profile_path, wait_for};
use serde_json::json;

fn error_body(code: u32, status: u16, message: &str) -> serde_json::Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/api/errors/{code}"),
        "status": status,
    })
}

fn create(client: &Client, traits: &str) -> String {
    let response = client
        .post(&format!("/v1/Stores/{STORE}/Profiles"), traits)
        .unwrap();
    assert_eq!(response.status, 202, "{}", response.body);
    let body = response.json();
    assert_eq!(
        body["message"],
        json!("Profile resolved and accepted for processing.")
    );
    body["id"].as_str().unwrap().to_owned()
}

/// A create body with an email no other call gives.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!(r#"{{"traits": {{"Contact": {{"email": "u{n}@example.com"}}}}}}"#)
}

/// A service with its log in a temporary directory.
fn started() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Server::start(dir.path()), dir)
}

#[test]
fn every_route_needs_valid_basic_credentials() {
    let (server, _dir) = started();
    let id = create(&server.client(), &unique());
    let unauthenticated = [
        None,
        Some(basic(common::SID, "wrong")),
        Some(basic("ACother", common::TOKEN)),
        Some("Bearer abc".to_owned()),
        Some("Basic !!!".to_owned()),
    ];
    for authorization in unauthenticated {
        let client = Client::new(server.port, authorization.clone());
        for (method, path) in [
            ("GET", profile_path(&id)),
            ("PATCH", profile_path(&id)),
            ("DELETE", profile_path(&id)),
            ("POST", format!("/v1/Stores/{STORE}/Profiles")),
            ("GET", format!("{}/Traits", profile_path(&id))),
            ("POST", format!("/v1/Stores/{STORE}/Profiles/Lookup")),
            ("PUT", format!("/v1/Stores/{STORE}/Profiles/Bulk")),
            (
                "GET",
                format!("/v1/ControlPlane/Stores/{STORE}/TraitGroups"),
            ),
            ("GET", "/no/such/route".to_owned()),
        ] {
            let body = matches!(method, "PATCH" | "POST" | "PUT").then_some(&b"{}"[..]);
            let response = client
                .request(method, &path, &[("Content-Type", "application/json")], body)
                .unwrap();
            assert_eq!(
                response.status, 401,
                "{method} {path} with {authorization:?}"
            );
            assert_eq!(
                response.json(),
                error_body(
                    20003,
                    401,
                    "Failed to complete request due to lack of authentication credentials"
                )
            );
        }
    }
    // Nothing was changed by the refused requests.
    let profile = server.client().get(&profile_path(&id)).unwrap();
    assert_eq!(profile.status, 200);
}

#[test]
fn patch_is_accepted_then_applied() {
    let (server, _dir) = started();
    let client = server.client();
    let id = create(
        &client,
        r#"{"traits": {"Contact": {"email": "a@b.c", "city": "Paris"}}}"#,
    );
    let response = client
        .patch(
            &profile_path(&id),
            r#"{"traits": {"Activity": {"vip": true}, "Contact": {"city": null}}}"#,
        )
        .unwrap();
    assert_eq!(response.status, 202);
    assert_eq!(
        response.json(),
        json!({"message": "Trait modifications accepted for processing."})
    );
    let body = wait_for("the patch applied", Duration::from_secs(30), || {
        let response = client.get(&profile_path(&id)).unwrap();
        (response.status == 200 && response.body.contains("vip")).then_some(response.body)
    });
    let created_at = serde_json::from_str::<serde_json::Value>(&body).unwrap()["createdAt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created_at.len(),
        "2025-01-01T12:00:00Z".len(),
        "{created_at}"
    );
    let only = client
        .get(&format!("{}?traitGroups=Activity,Other", profile_path(&id)))
        .unwrap();
    assert_eq!(
        only.body,
        format!(
            r#"{{"id":"{id}","createdAt":"{created_at}","traits":{{"Activity":{{"vip":true}}}}}}"#
        )
    );
    assert_eq!(
        body,
        format!(
            r#"{{"id":"{id}","createdAt":"{created_at}","traits":{{"Contact":{{"email":"a@b.c"}},"Activity":{{"vip":true}}}}}}"#
        )
    );
}

#[test]
fn rejected_patches_name_every_violation_with_the_right_code() {
    let (server, _dir) = started();
    let client = server.client();
    let id = create(&client, &unique());
    let cases = [
        (
            r#"{"traits": {"Nope": {"x": 1}, "Contact": {"fax": "1"}}}"#,
            520047,
            "patch rejected, 2 violations: `/traits/Nope`: trait group `Nope` is not declared in the schema; `/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`",
        ),
        (
            r#"{"traits": {"Contact": {"fax": "1", "email": 3}}}"#,
            520063,
            "patch rejected, 2 violations: `/traits/Contact/fax`: trait `fax` is not declared in trait group `Contact`; `/traits/Contact/email`: expected a string, found a number",
        ),
        (
            r#"{"traits": {"Contact": {"email": 3}}}"#,
            520046,
            "patch rejected, 1 violation: `/traits/Contact/email`: expected a string, found a number",
        ),
    ];
    for (patch, code, message) in cases {
        let response = client.patch(&profile_path(&id), patch).unwrap();
        assert_eq!(response.status, 400, "{patch}");
        assert_eq!(response.json(), error_body(code, 400, message), "{patch}");
    }
    let response = client.patch(&profile_path(&id), r#"{"traits": "#).unwrap();
    let body = response.json();
    assert_eq!((response.status, &body["code"]), (400, &json!(520046)));
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("patch rejected, 1 violation: ")
            && message.contains("malformed JSON at line 1, column 11"),
        "{message}"
    );
}

/// The message is the crate's own one-line form: the count, the first three violations, `...`.
#[test]
fn a_long_violation_list_is_the_crates_one_line_message() {
    let (server, _dir) = started();
    let client = server.client();
    let id = create(&client, &unique());
    let traits: Vec<String> = (0..90).map(|i| format!(r#""unknown{i}": 1"#)).collect();
    let patch = format!(r#"{{"traits": {{"Contact": {{{}}}}}}}"#, traits.join(","));
    let response = client.patch(&profile_path(&id), &patch).unwrap();
    assert_eq!(response.status, 400);
    let message = response.json()["message"].as_str().unwrap().to_owned();
    let expected = (0..3)
        .map(|i| format!("`/traits/Contact/unknown{i}`: trait `unknown{i}` is not declared in trait group `Contact`"))
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(
        message,
        format!("patch rejected, 90 violations: {expected}; ...")
    );
}

#[test]
fn ids_and_stores_are_checked() {
    let (server, _dir) = started();
    let client = server.client();
    let response = client.get(&profile_path("mem_profile_X")).unwrap();
    assert_eq!(
        response.json(),
        error_body(
            520046,
            400,
            "`mem_profile_X` is not a valid profile id: expected `^mem_profile_[0-7][0-9a-z]{25}$`"
        )
    );
    let response = client
        .get("/v1/Stores/mem_store_1/Profiles/mem_profile_00000000000000000000000000")
        .unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["code"], json!(520049));
    let other_store = "mem_store_00000000000000000000000001";
    for path in [
        format!("/v1/Stores/{other_store}/Profiles/mem_profile_00000000000000000000000000"),
        format!("/v1/ControlPlane/Stores/{other_store}/TraitGroups"),
    ] {
        let response = client.get(&path).unwrap();
        assert_eq!(
            response.json(),
            error_body(
                20404,
                404,
                &format!("memory store `{other_store}` does not exist")
            )
        );
    }
    let missing = "mem_profile_00000000000000000000000000";
    for response in [
        client.get(&profile_path(missing)).unwrap(),
        client
            .patch(&profile_path(missing), r#"{"traits": {}}"#)
            .unwrap(),
        client.delete(&profile_path(missing)).unwrap(),
    ] {
        assert_eq!(
            response.json(),
            error_body(20404, 404, &format!("profile `{missing}` does not exist"))
        );
    }
}

#[test]
fn bodies_must_be_json_and_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--max-body-bytes",
        "100",
    ]);
    let client = server.client();
    let id = create(&client, &unique());
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| vec![("Content-Type", c)])
            .unwrap_or_default();
        let response = client
            .request("PATCH", &profile_path(&id), &headers, Some(b"{}"))
            .unwrap();
        assert_eq!(response.status, 400, "{content_type:?}");
        assert_eq!(response.json()["code"], json!(520046));
    }
    let response = client
        .request(
            "PATCH",
            &profile_path(&id),
            &[("Content-Type", "application/json; charset=utf-8")],
            Some(br#"{"traits": {}}"#),
        )
        .unwrap();
    assert_eq!(response.status, 202);
    let big = format!(
        r#"{{"traits": {{"Contact": {{"city": "{}"}}}}}}"#,
        "x".repeat(100)
    );
    let response = client.patch(&profile_path(&id), &big).unwrap();
    assert_eq!(
        response.json(),
        error_body(520046, 400, "request body exceeds the limit of 100 bytes")
    );
}

#[test]
fn trait_groups_are_listed_in_the_api_shape() {
    let (server, _dir) = started();
    let client = server.client();
    let path = format!("/v1/ControlPlane/Stores/{STORE}/TraitGroups");
    let response = client.get(&path).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        r#"{"traitGroups":[{"displayName":"Contact","description":"Traits related to contact information.","version":3},{"displayName":"Activity"},{"displayName":"Preferences"}],"meta":{"key":"traitGroups","pageSize":3}}"#
    );
    let response = client.get(&format!("{path}?includeTraits=true")).unwrap();
    let body = response.json();
    assert_eq!(
        body["traitGroups"][1],
        json!({"displayName": "Activity", "traits": {
            "lastVisited": {"dataType": "STRING"},
            "visitCount": {"dataType": "NUMBER", "validationRule": {"ruleType": "NUMBER", "min": 0.0}},
            "lifetimeValue": {"dataType": "NUMBER"},
            "vip": {"dataType": "BOOLEAN"}
        }})
    );
    // Declared order is kept.
    assert!(response.body.find("lastVisited").unwrap() < response.body.find("vip").unwrap());
}

#[test]
fn memory_mode_writes_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&["--data-dir", data.to_str().unwrap(), "--in-memory"]);
    assert_eq!(
        server.started,
        json!({"durable": false, "recovery": null, "storage": "memory"})
    );
    wait_for("the warning on stderr", Duration::from_secs(10), || {
        let stderr = server.stderr.lock().unwrap();
        stderr.contains("--in-memory: NOT durable").then_some(())
    });
    let client = server.client();
    let id = create(
        &client,
        r#"{"traits": {"Contact": {"email": "m@b.c", "city": "Paris"}}}"#,
    );
    wait_for("the create applied", Duration::from_secs(30), || {
        (client.get(&profile_path(&id)).unwrap().status == 200).then_some(())
    });
    assert!(!data.exists());
}

#[test]
fn a_data_directory_of_another_store_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    Server::start(dir.path()).kill();
    let other = "mem_store_00000000000000000000000001";
    let stderr = Server::try_start_with(&["--data-dir", data, "--store-id", other])
        .err()
        .expect("the service refuses to start");
    let another = if common::on_postgres() {
        "database"
    } else {
        "`--data-dir`"
    };
    assert!(
        stderr.contains(&format!(
            "holds store `{STORE}`, not `{other}`: start with `--store-id {STORE}`, or use another {another}"
        )),
        "{stderr}"
    );
}
