//! SCIM 2.0 Users, as Okta and Microsoft Entra drive them.

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use super::http::{App, Res, app, now};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

impl App {
    async fn scim(&self, method: &str, path: &str, body: Option<Value>) -> Res {
        self.send(
            method,
            path,
            Some(&self.hr.clone()),
            body.map(|b| Body::from(b.to_string())),
            "application/scim+json",
        )
        .await
    }
}

fn assert_scim_error(r: &Res, status: StatusCode, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type, "application/scim+json", "{}", r.text);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(r.body["status"], status.as_u16().to_string());
    if let Some(t) = scim_type {
        assert_eq!(r.body["scimType"], t, "{}", r.text);
    }
}

fn new_user(id: &str, manager: Option<&str>) -> Value {
    let mut u = json!({
        "schemas": [USER, ENTERPRISE],
        "userName": id,
        "name": {"givenName": "Ana", "familyName": format!("Lima {id}")},
        "emails": [{"value": format!("{id}@example.com"), "type": "work", "primary": true}],
        "title": "Account Executive",
        "active": true,
        ENTERPRISE: {"department": "Sales"}
    });
    if let Some(m) = manager {
        u[ENTERPRISE]["manager"] = json!({"value": m});
    }
    u
}

#[tokio::test]
async fn discovery_endpoints_describe_users_and_need_a_token() {
    let app = app();
    for path in [
        "/scim/v2/ServiceProviderConfig",
        "/scim/v2/ResourceTypes",
        "/scim/v2/Schemas",
        "/scim/v2/ResourceTypes/User",
    ] {
        let r = app.scim("GET", path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.content_type, "application/scim+json");
    }
    let r = app
        .scim("GET", "/scim/v2/ServiceProviderConfig", None)
        .await;
    assert_eq!(r.body["patch"]["supported"], true);
    assert_eq!(r.body["filter"]["supported"], true);
    let r = app
        .scim("GET", &format!("/scim/v2/Schemas/{USER}"), None)
        .await;
    assert_eq!(r.body["id"], USER);
    let none = app.send("GET", "/scim/v2/Users", None, None, "").await;
    assert_scim_error(&none, StatusCode::UNAUTHORIZED, None);
    let wrong = app
        .send("GET", "/scim/v2/Users", Some(&app.ingest.clone()), None, "")
        .await;
    assert_scim_error(&wrong, StatusCode::FORBIDDEN, None);
}

#[tokio::test]
async fn users_are_created_read_filtered_and_paged() {
    let app = app();
    let r = app
        .scim("POST", "/scim/v2/Users", Some(new_user("boss", None)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.headers.get(header::LOCATION).unwrap(),
        "/scim/v2/Users/boss"
    );
    assert_eq!(
        (r.body["id"].as_str(), r.body["userName"].as_str()),
        (Some("boss"), Some("boss"))
    );
    assert_eq!(r.body["name"]["formatted"], "Ana Lima boss");
    assert_eq!(r.body["emails"][0]["value"], "boss@example.com");
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["meta"]["resourceType"], "User");
    for i in 0..4 {
        let r = app
            .scim(
                "POST",
                "/scim/v2/Users",
                Some(new_user(&format!("rep{i}"), Some("boss"))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let dup = app
        .scim("POST", "/scim/v2/Users", Some(new_user("rep1", None)))
        .await;
    assert_scim_error(&dup, StatusCode::CONFLICT, Some("uniqueness"));
    let no_name = app
        .scim("POST", "/scim/v2/Users", Some(json!({"schemas": [USER]})))
        .await;
    assert_scim_error(&no_name, StatusCode::BAD_REQUEST, Some("invalidValue"));

    let r = app.scim("GET", "/scim/v2/Users/rep2", None).await;
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], "boss");
    assert_scim_error(
        &app.scim("GET", "/scim/v2/Users/nobody", None).await,
        StatusCode::NOT_FOUND,
        None,
    );

    let r = app
        .scim(
            "GET",
            "/scim/v2/Users?filter=userName%20eq%20%22REP3%22",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.text);
    assert_eq!(r.body["Resources"][0]["id"], "rep3");
    let r = app
        .scim("GET", "/scim/v2/Users?startIndex=2&count=2", None)
        .await;
    assert_eq!(
        (
            r.body["totalResults"].as_u64(),
            r.body["itemsPerPage"].as_u64(),
            r.body["startIndex"].as_u64()
        ),
        (Some(5), Some(2), Some(2))
    );
    assert_eq!(r.body["Resources"][0]["id"], "rep0");
    let r = app
        .scim("GET", "/scim/v2/Users?filter=title%20co%20%22x%22", None)
        .await;
    assert_scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"));
}

#[tokio::test]
async fn deprovisioning_by_patch_or_put_starts_the_departure() {
    let app = app();
    app.scim("POST", "/scim/v2/Users", Some(new_user("boss", None)))
        .await;
    for id in ["okta-user", "entra-user", "put-user"] {
        app.scim("POST", "/scim/v2/Users", Some(new_user(id, Some("boss"))))
            .await;
    }
    let customer = json!({"id": "c1", "actor": "okta-user", "occurred_at": now(), "type": "customer_created",
                          "customer": "C-1", "name": "Acme", "owner": "okta-user"});
    app.post(
        "/v1/events",
        &app.ingest.clone(),
        json!({"events": [customer]}),
    )
    .await;

    // Okta: replace with a path and a boolean.
    let okta = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let r = app
        .scim("PATCH", "/scim/v2/Users/okta-user", Some(okta))
        .await;
    assert_eq!(
        (r.status, r.body["active"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{}",
        r.text
    );
    // Entra: capitalised op, no path, the value as a string.
    let entra = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "Replace", "value": {"active": "False"}}]});
    let r = app
        .scim("PATCH", "/scim/v2/Users/entra-user", Some(entra))
        .await;
    assert_eq!(r.body["active"], false, "{}", r.text);
    // PUT of the whole user with active false.
    let mut put = new_user("put-user", Some("boss"));
    put["active"] = json!(false);
    let r = app.scim("PUT", "/scim/v2/Users/put-user", Some(put)).await;
    assert_eq!(r.body["active"], false, "{}", r.text);

    let (departed, planned) = app
        .ledger
        .read(|s| {
            let ids = ["okta-user", "entra-user", "put-user"]
                .map(|i| proto_types::ids::EmployeeId::parse(i).unwrap());
            (
                ids.iter()
                    .filter(|i| s.directory.get(i).unwrap().is_departed())
                    .count(),
                s.handovers.plan(&ids[0]).map(|p| p.assignments.len()),
            )
        })
        .await
        .unwrap();
    assert_eq!(departed, 3);
    assert_eq!(
        planned,
        Some(1),
        "the customer is planned to go to the manager"
    );
}

#[tokio::test]
async fn without_a_possible_successor_deprovisioning_still_disables_at_once() {
    let app = app();
    app.scim("POST", "/scim/v2/Users", Some(new_user("loner", None)))
        .await;
    let customer = json!({"id": "c1", "actor": "loner", "occurred_at": now(), "type": "customer_created",
                          "customer": "C-1", "name": "Acme", "owner": "loner"});
    app.post(
        "/v1/events",
        &app.ingest.clone(),
        json!({"events": [customer]}),
    )
    .await;
    let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let r = app.scim("PATCH", "/scim/v2/Users/loner", Some(op)).await;
    assert_eq!(
        (r.status, r.body["active"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{}",
        r.text
    );
    let (active, departed) = app
        .ledger
        .read(|s| {
            let e = s
                .directory
                .get(&proto_types::ids::EmployeeId::parse("loner").unwrap())
                .unwrap();
            (e.is_active(), e.is_departed())
        })
        .await
        .unwrap();
    assert_eq!(
        (active, departed),
        (false, false),
        "disabled; the departure awaits HR"
    );
}

#[tokio::test]
async fn attribute_changes_reactivation_and_deletion() {
    let app = app();
    app.scim("POST", "/scim/v2/Users", Some(new_user("boss", None)))
        .await;
    app.scim("POST", "/scim/v2/Users", Some(new_user("u1", Some("boss"))))
        .await;
    let before = app.entries().await;
    let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "title", "value": "Key Account Manager"},
        {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Enterprise Sales"},
        {"op": "remove", "path": format!("{ENTERPRISE}:manager")}
    ]});
    let r = app.scim("PATCH", "/scim/v2/Users/u1", Some(op)).await;
    assert_eq!(r.body["title"], "Key Account Manager", "{}", r.text);
    assert_eq!(r.body[ENTERPRISE]["department"], "Enterprise Sales");
    assert!(r.body[ENTERPRISE].get("manager").is_none(), "{}", r.text);
    assert_eq!(
        app.entries().await,
        before + 1,
        "one employee_updated event"
    );
    let same = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "title", "value": "Key Account Manager"}]});
    app.scim("PATCH", "/scim/v2/Users/u1", Some(same)).await;
    assert_eq!(app.entries().await, before + 1, "no change, no event");
    let bad = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "replace", "path": "userName", "value": "other"}]});
    assert_scim_error(
        &app.scim("PATCH", "/scim/v2/Users/u1", Some(bad)).await,
        StatusCode::BAD_REQUEST,
        Some("mutability"),
    );

    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    app.scim("PATCH", "/scim/v2/Users/u1", Some(off)).await;
    let on = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": true}]});
    let r = app.scim("PATCH", "/scim/v2/Users/u1", Some(on)).await;
    assert_eq!(r.body["active"], true, "{}", r.text);

    let r = app.scim("DELETE", "/scim/v2/Users/u1", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_scim_error(
        &app.scim("GET", "/scim/v2/Users/u1", None).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &app.scim("DELETE", "/scim/v2/Users/u1", None).await,
        StatusCode::NOT_FOUND,
        None,
    );
}
