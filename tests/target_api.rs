//! The reference target's API over real HTTP: every route and every status
//! rule, tenant isolation, the order lifecycle and idempotent creation.

mod target_support;

use convoy::target::{
    Claims, DEV_JWT_SECRET, Role, SEED_PASSWORD, SEED_USERS, TargetConfig, sign_token, verify_token,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use target_support::{Session, client, order_body, send, start};

const ACME_ADMIN: &str = "admin@acme.test";
const ACME_DISPATCHER: &str = "dispatcher@acme.test";
const ACME_DRIVER: &str = "driver@acme.test";
const ACME_DRIVER_2: &str = "driver2@acme.test";
const GLOBEX_ADMIN: &str = "admin@globex.test";
const GLOBEX_DISPATCHER: &str = "dispatcher@globex.test";
const GLOBEX_DRIVER: &str = "driver@globex.test";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn health_answers_ok_on_both_paths_without_auth() {
    let target = start(&[]);
    let client = client();
    for path in ["/health", "/api/health"] {
        let reply = send(client.get(format!("{}{path}", target.base_url()))).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.json, json!({"status": "ok"}), "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(
            reply
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty())
        );
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let target = start(&[]);
    let client = client();
    let url = format!("{}/health", target.base_url());
    let echoed = send(client.get(&url).header("x-request-id", "trace-123")).await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-123"));
    let first = send(client.get(&url)).await;
    let second = send(client.get(&url)).await;
    let (a, b) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert_ne!(a, b);
    assert_eq!(a.len(), 36, "a hyphenated UUID: {a}");
    // Errors carry one too.
    let missing = send(client.get(format!("{}/no/such/route", target.base_url()))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json["code"], "not_found");
    assert!(missing.header("x-request-id").is_some());
    let unauthorized = send(
        client
            .get(format!("{}/api/orders", target.base_url()))
            .header("x-request-id", "r-9"),
    )
    .await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthorized.header("x-request-id"), Some("r-9"));
}

#[tokio::test]
async fn every_seeded_user_can_log_in_and_gets_a_valid_token() {
    let target = start(&[]);
    let client = client();
    for user in SEED_USERS {
        let reply = send(
            client
                .post(format!("{}/api/auth/login", target.base_url()))
                .body(json!({"email": user.email, "password": user.password}).to_string()),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            user.email,
            reply.text
        );
        assert_eq!(reply.json["token_type"], "Bearer");
        assert_eq!(reply.json["expires_in"], 3600);
        assert_eq!(reply.json["user"]["id"], user.id);
        assert_eq!(reply.json["user"]["tenant"], user.tenant);
        assert_eq!(reply.json["user"]["role"], user.role.as_str());
        let claims = verify_token(
            DEV_JWT_SECRET.as_bytes(),
            reply.json["token"].as_str().unwrap(),
            unix_now(),
        )
        .expect("token verifies with the configured secret");
        assert_eq!(
            (claims.sub.as_str(), claims.tenant.as_str(), claims.role),
            (user.id, user.tenant, user.role)
        );
        assert!(claims.exp > unix_now() + 3000);
    }
}

#[tokio::test]
async fn login_refuses_bad_credentials_and_bad_bodies() {
    let target = start(&[]);
    let client = client();
    let url = format!("{}/api/auth/login", target.base_url());
    let login = |body: String| send(client.post(&url).body(body));
    let wrong_password = login(json!({"email": ACME_ADMIN, "password": "nope"}).to_string()).await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.json["error"], "invalid email or password");
    let unknown =
        login(json!({"email": "ceo@acme.test", "password": SEED_PASSWORD}).to_string()).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let malformed = login("{\"email\": ".to_string()).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json["code"], "malformed_json");
    let missing = login(json!({"email": ACME_ADMIN}).to_string()).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.json["field"], "password");
}

#[tokio::test]
async fn tokens_are_signed_with_the_configured_secret_and_ttl() {
    let target = convoy::target::spawn(
        TargetConfig::default()
            .with_jwt_secret("another-secret")
            .with_token_ttl(std::time::Duration::from_secs(120)),
    )
    .unwrap();
    let session = Session::login(&target, ACME_ADMIN).await;
    assert!(verify_token(b"another-secret", &session.token, unix_now()).is_ok());
    assert!(verify_token(DEV_JWT_SECRET.as_bytes(), &session.token, unix_now()).is_err());
    let claims = verify_token(b"another-secret", &session.token, unix_now()).unwrap();
    assert!(claims.exp - claims.iat == 120);
}

#[tokio::test]
async fn protected_routes_need_a_valid_unexpired_token() {
    let target = start(&[]);
    let base = target.base_url();
    let client = client();
    let claims = |exp: u64, tenant: &str| Claims {
        sub: "usr-acme-admin".into(),
        tenant: tenant.into(),
        role: Role::Admin,
        iat: unix_now() - 7200,
        exp,
    };
    let expired = sign_token(DEV_JWT_SECRET.as_bytes(), &claims(unix_now() - 60, "acme"));
    let wrong_secret = sign_token(b"not-the-secret", &claims(unix_now() + 600, "acme"));
    let unknown_tenant = sign_token(
        DEV_JWT_SECRET.as_bytes(),
        &claims(unix_now() + 600, "initech"),
    );
    let valid = sign_token(DEV_JWT_SECRET.as_bytes(), &claims(unix_now() + 600, "acme"));

    let paths = [
        (Method::GET, "/api/orders"),
        (Method::POST, "/api/orders"),
        (Method::GET, "/api/shipments"),
        (Method::GET, "/orders/00000000-0000-4000-8000-000000000000"),
        (Method::POST, "/api/dispatch/assign"),
        (Method::GET, "/api/drivers/drv-acme-1/coaching"),
    ];
    for (method, path) in paths {
        let url = format!("{base}{path}");
        let none = send(client.request(method.clone(), &url)).await;
        assert_eq!(
            none.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        let basic = send(
            client
                .request(method.clone(), &url)
                .header("authorization", "Basic YTpi"),
        )
        .await;
        assert_eq!(
            basic.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with Basic auth"
        );
        for (what, token) in [
            ("garbage", "not.a.token"),
            ("expired", expired.as_str()),
            ("wrong secret", wrong_secret.as_str()),
            ("unknown tenant", unknown_tenant.as_str()),
        ] {
            let reply = send(client.request(method.clone(), &url).bearer_auth(token)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with a {what} token"
            );
            assert_eq!(reply.json["code"], "unauthorized");
        }
    }
    let expired_reply = send(
        client
            .get(format!("{base}/api/orders"))
            .bearer_auth(&expired),
    )
    .await;
    assert!(
        expired_reply.json["error"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // The same claims, signed properly and unexpired, pass.
    let ok = send(client.get(format!("{base}/api/orders")).bearer_auth(&valid)).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn orders_are_created_validated_and_served_under_every_prefix() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let created = admin.post("/api/shipments", &order_body("PO-1")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/orders/{id}").as_str())
    );
    assert_eq!(created.json["status"], "created");
    assert_eq!(created.json["tenant"], "acme");
    assert_eq!(created.json["reference"], "PO-1");
    assert_eq!(created.json["created_by"], "usr-acme-admin");
    assert_eq!(created.json["weight_kg"], 120.5);
    assert_eq!(created.json["stops"].as_array().unwrap().len(), 2);
    assert!(created.json["driver_id"].is_null());
    assert!(created.header("idempotent-replayed").is_none());
    for prefix in ["/api/orders", "/api/shipments", "/orders"] {
        let got = admin.get(&format!("{prefix}/{id}")).await;
        assert_eq!(got.status, StatusCode::OK, "{prefix}");
        assert_eq!(got.json, created.json, "{prefix}");
    }
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    assert_eq!(
        dispatcher.post("/orders", &order_body("PO-2")).await.status,
        StatusCode::CREATED
    );
    let driver = Session::login(&target, ACME_DRIVER).await;
    let refused = driver.post("/api/orders", &order_body("PO-3")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json["code"], "forbidden");
    assert_eq!(target.orders_count("acme"), 2);
    assert_eq!(target.orders_count("globex"), 0);
    // Unknown and unparsable ids are 404s.
    assert_eq!(
        admin
            .get("/api/orders/00000000-0000-4000-8000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.get("/api/orders/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn malformed_json_is_400_and_invalid_fields_are_422_with_the_field() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    for body in ["{\"pickup\": ", "", "[1, 2]", "not json"] {
        let reply = send(admin.request(Method::POST, "/api/orders").body(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(reply.json["code"], "malformed_json", "{body:?}");
    }
    let cases: [(&str, Value, &str); 7] = [
        ("/weight_kg", json!(0), "weight_kg"),
        ("/weight_kg", json!(-5), "weight_kg"),
        ("/pickup/lat", json!(123.0), "pickup.lat"),
        ("/dropoff/lon", json!("east"), "dropoff.lon"),
        ("/dropoff/address", json!(""), "dropoff.address"),
        ("/stops/1/lat", json!(null), "stops[1].lat"),
        ("/reference", json!(42), "reference"),
    ];
    for (pointer, value, field) in cases {
        let mut body = order_body("PO-bad");
        *body.pointer_mut(pointer).unwrap() = value;
        let reply = admin.post("/api/orders", &body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{pointer}: {}",
            reply.text
        );
        assert_eq!(reply.json["field"], field, "{pointer}");
        assert_eq!(reply.json["code"], "validation_failed");
        assert!(
            reply.json["error"].as_str().unwrap().contains(field),
            "{}",
            reply.text
        );
    }
    let mut no_pickup = order_body("PO-bad");
    no_pickup.as_object_mut().unwrap().remove("pickup");
    let reply = admin.post("/api/orders", &no_pickup).await;
    assert_eq!(
        (reply.status, reply.json["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("pickup"))
    );
    assert_eq!(
        target.orders_count("acme"),
        0,
        "no invalid order was stored"
    );
}

#[tokio::test]
async fn lists_filter_by_status_and_key_and_stay_in_the_tenant() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let driver = Session::login(&target, ACME_DRIVER).await;
    let first = admin.create_order("L-1").await;
    admin.create_order("L-2").await;
    let keyed = send(
        admin
            .json(Method::POST, "/api/orders", &order_body("L-3"))
            .header("idempotency-key", "list-key"),
    )
    .await;
    assert_eq!(keyed.status, StatusCode::CREATED);
    assert_eq!(
        driver
            .post_empty(&format!("/api/orders/{first}/accept"))
            .await
            .status,
        StatusCode::OK
    );

    let all = admin.get("/api/orders").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json["count"], 3);
    let references: Vec<&str> = all.json["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["reference"].as_str().unwrap())
        .collect();
    assert_eq!(references, ["L-1", "L-2", "L-3"], "oldest first");
    let accepted = admin.get("/api/orders?status=accepted").await;
    assert_eq!(accepted.json["count"], 1);
    assert_eq!(accepted.json["orders"][0]["id"], first.as_str());
    let by_key = admin.get("/orders?idempotency_key=list-key").await;
    assert_eq!(by_key.json["count"], 1);
    assert_eq!(by_key.json["orders"][0]["reference"], "L-3");
    let limited = driver.get("/api/shipments?limit=2").await;
    assert_eq!(
        (
            limited.json["count"].as_u64(),
            limited.json["total"].as_u64()
        ),
        (Some(2), Some(3))
    );
    let bad = admin.get("/api/orders?status=lost").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );

    let globex = Session::login(&target, GLOBEX_ADMIN).await;
    let theirs = globex.get("/api/orders").await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(theirs.json["count"], 0);
    assert_eq!(
        globex
            .get("/api/orders?idempotency_key=list-key")
            .await
            .json["count"],
        0
    );
}

#[tokio::test]
async fn admins_patch_and_delete_orders_within_the_rules() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let driver = Session::login(&target, ACME_DRIVER).await;
    let id = admin.create_order("P-1").await;
    let path = format!("/api/orders/{id}");

    let patched = send(admin.json(
        Method::PATCH,
        &path,
        &json!({"reference": "P-1b", "weight_kg": 80}),
    ))
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(
        (
            patched.json["reference"].as_str(),
            patched.json["weight_kg"].as_f64()
        ),
        (Some("P-1b"), Some(80.0))
    );
    assert_eq!(admin.get(&path).await.json["reference"], "P-1b");
    let by_dispatcher =
        send(dispatcher.json(Method::PATCH, &path, &json!({"reference": "x"}))).await;
    assert_eq!(by_dispatcher.status, StatusCode::FORBIDDEN);
    let status = send(admin.json(Method::PATCH, &path, &json!({"status": "delivered"}))).await;
    assert_eq!(
        (status.status, status.json["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let invalid = send(admin.json(Method::PATCH, &path, &json!({"weight_kg": 0}))).await;
    assert_eq!(
        (invalid.status, invalid.json["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("weight_kg"))
    );
    let malformed = send(admin.request(Method::PATCH, &path).body("{")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

    // Once accepted, the plan is frozen but the reference may change.
    assert_eq!(
        driver.post_empty(&format!("{path}/accept")).await.status,
        StatusCode::OK
    );
    let frozen = send(admin.json(Method::PATCH, &path, &json!({"weight_kg": 90}))).await;
    assert_eq!(
        (frozen.status, frozen.json["code"].as_str()),
        (StatusCode::CONFLICT, Some("illegal_transition"))
    );
    assert_eq!(
        send(admin.json(Method::PATCH, &path, &json!({"reference": "P-1c"})))
            .await
            .status,
        StatusCode::OK
    );

    assert_eq!(
        send(dispatcher.request(Method::DELETE, &path)).await.status,
        StatusCode::FORBIDDEN
    );
    let deleted = send(admin.request(Method::DELETE, &path)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    assert_eq!(admin.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(admin.request(Method::DELETE, &path)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(target.orders_count("acme"), 0);
}

#[tokio::test]
async fn the_lifecycle_runs_from_created_to_delivered_with_a_ledger_row() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let driver = Session::login(&target, ACME_DRIVER).await;
    let id = admin.create_order("LC-1").await;
    let path = format!("/api/orders/{id}");

    let accepted = driver.post_empty(&format!("{path}/accept")).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert_eq!(accepted.json["status"], "accepted");
    assert_eq!(accepted.json["driver_id"], "drv-acme-1");

    let routed = dispatcher.post_empty(&format!("{path}/route")).await;
    assert_eq!(routed.status, StatusCode::OK, "{}", routed.text);
    assert_eq!(routed.json["status"], "routed");
    assert_eq!(routed.json["order_id"], id.as_str());
    let stops: Vec<&str> = routed.json["stops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(stops, ["pickup", "stop", "stop", "dropoff"]);
    // From the pickup at Sandtorkai, the Elbstraße stop (west) and the
    // Mönckebergstraße stop (east, towards the dropoff) are best visited west
    // first: the given order (east first) is longer.
    assert_eq!(
        routed.json["stops"][1]["address"],
        "Große Elbstraße 39, Hamburg"
    );
    let distance = routed.json["distance_km"].as_f64().unwrap();
    assert!(distance > 5.0 && distance < 30.0, "{distance}");
    assert!(distance <= routed.json["unoptimised_km"].as_f64().unwrap());
    assert!(routed.json["duration_min"].as_f64().unwrap() > 0.0);
    assert_eq!(
        admin.get(&path).await.json["route"]["distance_km"],
        routed.json["distance_km"]
    );

    assert_eq!(
        admin.get(&format!("{path}/adjustments")).await.json["count"],
        0
    );
    let delivered = driver.post_empty(&format!("{path}/deliver")).await;
    assert_eq!(delivered.status, StatusCode::OK, "{}", delivered.text);
    assert_eq!(delivered.json["order"]["status"], "delivered");
    let adjustment = &delivered.json["adjustment"];
    assert_eq!(adjustment["order_id"], id.as_str());
    assert_eq!(adjustment["tenant"], "acme");
    assert_eq!(adjustment["reason"], "delivery_charge");
    assert!(adjustment["amount"].as_i64().unwrap() > 0);
    assert!(adjustment["id"].is_string() && adjustment["created_at"].is_string());

    let ledger = dispatcher.get(&format!("{path}/adjustments")).await;
    assert_eq!(ledger.status, StatusCode::OK);
    assert_eq!(ledger.json["count"], 1);
    assert_eq!(&ledger.json["adjustments"][0], adjustment);
    assert_eq!(ledger.json["total"], adjustment["amount"]);
    assert_eq!(
        driver.get(&format!("{path}/adjustments")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(target.ledger_rows("acme"), 1);
    let coaching = driver.get("/api/drivers/drv-acme-1/coaching").await;
    assert_eq!(coaching.json["deliveriesCompleted"], 1);
    // Delivered orders keep their ledger: they cannot be deleted.
    let delete = send(admin.request(Method::DELETE, &path)).await;
    assert_eq!(delete.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn illegal_transitions_are_409_and_wrong_actors_403() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let driver = Session::login(&target, ACME_DRIVER).await;
    let other_driver = Session::login(&target, ACME_DRIVER_2).await;
    let id = admin.create_order("IT-1").await;
    let path = format!("/api/orders/{id}");
    let conflict = |reply: &target_support::Reply, what: &str| {
        assert_eq!(reply.status, StatusCode::CONFLICT, "{what}: {}", reply.text);
        assert_eq!(reply.json["code"], "illegal_transition", "{what}");
    };

    conflict(
        &admin.post_empty(&format!("{path}/route")).await,
        "route a created order",
    );
    conflict(
        &driver.post_empty(&format!("{path}/deliver")).await,
        "deliver a created order",
    );
    assert_eq!(
        admin.post_empty(&format!("{path}/accept")).await.status,
        StatusCode::FORBIDDEN,
        "admins do not accept"
    );
    assert_eq!(
        driver.post_empty(&format!("{path}/accept")).await.status,
        StatusCode::OK
    );
    conflict(
        &driver.post_empty(&format!("{path}/accept")).await,
        "accept twice",
    );
    conflict(
        &other_driver.post_empty(&format!("{path}/accept")).await,
        "accept an accepted order",
    );
    conflict(
        &driver.post_empty(&format!("{path}/deliver")).await,
        "deliver an unrouted order",
    );
    assert_eq!(
        other_driver
            .post_empty(&format!("{path}/route"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        driver.post_empty(&format!("{path}/route")).await.status,
        StatusCode::OK
    );
    conflict(
        &driver.post_empty(&format!("{path}/route")).await,
        "route twice",
    );
    assert_eq!(
        other_driver
            .post_empty(&format!("{path}/deliver"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin.post_empty(&format!("{path}/deliver")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        driver.post_empty(&format!("{path}/deliver")).await.status,
        StatusCode::OK
    );
    let again = driver.post_empty(&format!("{path}/deliver")).await;
    conflict(&again, "deliver twice");
    assert!(again.json["error"].as_str().unwrap().contains("delivered"));
    assert_eq!(
        target.ledger_rows("acme"),
        1,
        "a refused delivery writes no ledger row"
    );
}

#[tokio::test]
async fn concurrent_accepts_let_exactly_one_driver_win() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let drivers = [
        Session::login(&target, ACME_DRIVER).await,
        Session::login(&target, ACME_DRIVER_2).await,
    ];
    let id = admin.create_order("RACE-1").await;
    let path = format!("/api/orders/{id}/accept");
    let (a, b) = tokio::join!(drivers[0].post_empty(&path), drivers[1].post_empty(&path));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
}

#[tokio::test]
async fn another_tenants_orders_and_drivers_are_404_everywhere() {
    let target = start(&[]);
    let acme_admin = Session::login(&target, ACME_ADMIN).await;
    let acme_driver = Session::login(&target, ACME_DRIVER).await;
    let globex_admin = Session::login(&target, GLOBEX_ADMIN).await;
    let globex_dispatcher = Session::login(&target, GLOBEX_DISPATCHER).await;
    let globex_driver = Session::login(&target, GLOBEX_DRIVER).await;
    let created = acme_admin.create_order("ISO-1").await;
    let routed = acme_admin.create_order("ISO-2").await;
    assert_eq!(
        acme_driver
            .post_empty(&format!("/api/orders/{routed}/accept"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        acme_driver
            .post_empty(&format!("/api/orders/{routed}/route"))
            .await
            .status,
        StatusCode::OK
    );

    let not_found = |reply: target_support::Reply, what: &str| {
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{what}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"], "order not found", "{what}");
    };
    for prefix in ["/api/orders", "/api/shipments", "/orders"] {
        not_found(
            globex_admin.get(&format!("{prefix}/{created}")).await,
            "get",
        );
    }
    not_found(
        send(globex_admin.json(
            Method::PATCH,
            &format!("/api/orders/{created}"),
            &json!({"reference": "mine"}),
        ))
        .await,
        "patch",
    );
    not_found(
        send(globex_admin.request(Method::DELETE, &format!("/api/orders/{created}"))).await,
        "delete",
    );
    not_found(
        globex_driver
            .post_empty(&format!("/api/orders/{created}/accept"))
            .await,
        "accept",
    );
    not_found(
        globex_dispatcher
            .post_empty(&format!("/api/orders/{routed}/route"))
            .await,
        "route",
    );
    not_found(
        globex_driver
            .post_empty(&format!("/api/orders/{routed}/deliver"))
            .await,
        "deliver",
    );
    not_found(
        globex_admin
            .get(&format!("/api/orders/{routed}/adjustments"))
            .await,
        "adjustments",
    );

    // Nothing of acme's changed.
    let original = acme_admin.get(&format!("/api/orders/{created}")).await;
    assert_eq!(
        (original.status, original.json["reference"].as_str()),
        (StatusCode::OK, Some("ISO-1"))
    );
    assert!(original.json["driver_id"].is_null());
    assert_eq!(
        acme_admin.get(&format!("/api/orders/{routed}")).await.json["status"],
        "routed"
    );
    assert_eq!(target.orders_count("acme"), 2);
    assert_eq!(target.ledger_rows("acme"), 0);

    let coaching = globex_dispatcher
        .get("/api/drivers/drv-acme-1/coaching")
        .await;
    assert_eq!(
        (coaching.status, coaching.json["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("driver not found"))
    );
}

#[tokio::test]
async fn idempotent_replays_return_the_first_answer_and_create_one_order() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let create = |key: &'static str, body: Value| {
        let request = admin
            .json(Method::POST, "/api/orders", &body)
            .header("idempotency-key", key);
        send(request)
    };
    let first = create("key-1", order_body("IDEM-1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = create("key-1", order_body("IDEM-1")).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json["id"], first.json["id"]);
    assert_eq!(replay.text, first.text, "the original body, verbatim");
    assert_eq!(target.orders_with_idempotency_key("acme", "key-1"), 1);

    // The same JSON written differently is the same request.
    let reordered = send(
        admin
            .request(Method::POST, "/api/orders")
            .header("idempotency-key", "key-1")
            .body(reversed_keys(&order_body("IDEM-1"))),
    )
    .await;
    assert_eq!(reordered.header("idempotent-replayed"), Some("true"));
    assert_eq!(reordered.json["id"], first.json["id"]);

    let different = create("key-1", order_body("IDEM-other")).await;
    assert_eq!(different.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(different.json["code"], "idempotency_key_reused");
    assert_eq!(different.json["field"], "Idempotency-Key");
    assert_eq!(target.orders_count("acme"), 1);

    // Keys are scoped per tenant: globex's key-1 is a different order.
    let globex = Session::login(&target, GLOBEX_ADMIN).await;
    let theirs = send(
        globex
            .json(Method::POST, "/api/orders", &order_body("IDEM-1"))
            .header("idempotency-key", "key-1"),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert!(theirs.header("idempotent-replayed").is_none());
    assert_ne!(theirs.json["id"], first.json["id"]);
    assert_eq!(target.orders_with_idempotency_key("globex", "key-1"), 1);
    assert_eq!(target.orders_with_idempotency_key("acme", "key-1"), 1);

    // A refused first attempt does not burn the key.
    let mut invalid = order_body("IDEM-2");
    invalid["weight_kg"] = json!(0);
    assert_eq!(
        create("key-2", invalid).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        create("key-2", order_body("IDEM-2")).await.status,
        StatusCode::CREATED
    );
    assert_eq!(target.orders_with_idempotency_key("acme", "key-2"), 1);
}

/// Writes a JSON value with every object's keys in reverse order and extra
/// whitespace: the same document, spelt differently.
fn reversed_keys(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("{} :  {}", Value::from(k.as_str()), reversed_keys(v)))
                .collect();
            format!("{{ {} }}", fields.join(" ,\n "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed_keys).collect();
            format!("[ {} ]", items.join(", "))
        }
        other => other.to_string(),
    }
}

#[tokio::test]
async fn twenty_concurrent_replays_create_exactly_one_order() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let requests = (0..20).map(|_| {
        send(
            admin
                .json(Method::POST, "/api/orders", &order_body("CONC-1"))
                .header("idempotency-key", "concurrent-key"),
        )
    });
    let replies = futures_join_all(requests).await;
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.json["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every replay answers with the one order");
    let replayed = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 19);
    assert_eq!(
        target.orders_with_idempotency_key("acme", "concurrent-key"),
        1
    );
    assert_eq!(target.orders_count("acme"), 1);
}

/// Runs futures concurrently on this task's runtime (no `futures` crate).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task completes"));
    }
    outputs
}

#[tokio::test]
async fn dispatch_recommends_a_driver_of_the_tenant_deterministically() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let id = admin.create_order("D-1").await;

    let first = dispatcher
        .post("/api/dispatch/assign", &json!({"loadId": id}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json["loadId"], id.as_str());
    let driver = first.json["driverId"].as_str().unwrap();
    assert!(driver.starts_with("drv-acme-"), "{driver}");
    // The pickup is at Sandtorkai, drv-acme-1's depot.
    assert_eq!(driver, "drv-acme-1");
    assert!(
        first.json["reason"]
            .as_str()
            .unwrap()
            .contains("km from pickup")
    );
    let score = first.json["score"].as_f64().unwrap();
    assert!(score > 0.0 && score <= 1.0, "{score}");
    let again = admin
        .post("/api/dispatch/assign", &json!({"loadId": id}))
        .await;
    assert_eq!(again.json, first.json, "same state, same answer");

    // A heavy load only the 26 t truck can carry.
    let mut heavy = order_body("D-2");
    heavy["weight_kg"] = json!(5000);
    let heavy = admin.post("/api/orders", &heavy).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let assigned = dispatcher
        .post("/api/dispatch/assign", &json!({"loadId": heavy}))
        .await;
    assert_eq!(assigned.json["driverId"], "drv-acme-2");

    // Load ids that are not orders (as in the platform's smoke test) work too.
    let unknown = dispatcher
        .post("/api/dispatch/assign", &json!({"loadId": "test-load-1"}))
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert!(
        unknown.json["driverId"]
            .as_str()
            .unwrap()
            .starts_with("drv-acme-")
    );
    let globex = Session::login(&target, GLOBEX_DISPATCHER).await;
    let theirs = globex
        .post("/api/dispatch/assign", &json!({"loadId": id}))
        .await;
    assert!(
        theirs.json["driverId"]
            .as_str()
            .unwrap()
            .starts_with("drv-globex-")
    );
    assert!(
        !theirs.json["reason"]
            .as_str()
            .unwrap()
            .contains("km from pickup"),
        "no peeking at acme's order"
    );

    // Workload counts: once drv-acme-1 carries two loads, drv-acme-2 gets
    // the next load that is not an order.
    let driver = Session::login(&target, ACME_DRIVER).await;
    let before = dispatcher
        .post("/api/dispatch/assign", &json!({"loadId": "L-9"}))
        .await;
    assert_eq!(before.json["driverId"], "drv-acme-1");
    for reference in ["W-1", "W-2"] {
        let order = admin.create_order(reference).await;
        let accepted = driver
            .post_empty(&format!("/api/orders/{order}/accept"))
            .await;
        assert_eq!(accepted.status, StatusCode::OK);
    }
    let after = dispatcher
        .post("/api/dispatch/assign", &json!({"loadId": "L-9"}))
        .await;
    assert_eq!(after.json["driverId"], "drv-acme-2", "{}", after.text);

    assert_eq!(
        driver
            .post("/api/dispatch/assign", &json!({"loadId": id}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let missing = dispatcher.post("/api/dispatch/assign", &json!({})).await;
    assert_eq!(
        (missing.status, missing.json["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("loadId"))
    );
    let malformed = send(
        dispatcher
            .request(Method::POST, "/api/dispatch/assign")
            .body("{"),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn coaching_is_for_the_tenants_staff_and_the_driver_themself() {
    let target = start(&[]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let driver = Session::login(&target, ACME_DRIVER).await;
    let reply = dispatcher.get("/api/drivers/drv-acme-2/coaching").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["driverId"], "drv-acme-2");
    let tips = reply.json["tips"].as_array().unwrap();
    assert!(!tips.is_empty());
    assert!(
        tips.iter()
            .all(|t| t["message"].as_str().is_some_and(|m| !m.is_empty()))
    );
    assert!(reply.json["safetyScore"].as_f64().unwrap() < 100.0);

    assert_eq!(
        driver.get("/api/drivers/drv-acme-1/coaching").await.status,
        StatusCode::OK
    );
    assert_eq!(
        driver.get("/api/drivers/drv-acme-2/coaching").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        dispatcher
            .get("/api/drivers/drv-nobody/coaching")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        dispatcher
            .get("/api/drivers/usr-acme-admin/coaching")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        dispatcher
            .get("/api/drivers/drv-globex-1/coaching")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn only_the_newest_orders_are_kept_per_tenant() {
    let target = convoy::target::spawn(TargetConfig {
        max_orders_per_tenant: 3,
        ..TargetConfig::default()
    })
    .unwrap();
    let admin = Session::login(&target, ACME_ADMIN).await;
    let keyed = |key: &'static str| {
        send(
            admin
                .json(Method::POST, "/api/orders", &order_body("KEEP"))
                .header("idempotency-key", key),
        )
    };
    let oldest = keyed("keep-0").await.json["id"].clone();
    for i in 1..5 {
        admin.create_order(&format!("KEEP-{i}")).await;
    }
    assert_eq!(target.orders_count("acme"), 3);
    let gone = admin
        .get(&format!("/api/orders/{}", oldest.as_str().unwrap()))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    // The forgotten order took its idempotency record along.
    let again = keyed("keep-0").await;
    assert!(again.header("idempotent-replayed").is_none());
    assert_ne!(again.json["id"], oldest);
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    let target = start(&[]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/health", target.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
}
