//! The reference target's API over real HTTP: health, request ids, login and
//! tokens, and the order routes with their status rules. The journeys across
//! routes (lifecycle, tenant isolation, idempotency, dispatch) are in
//! `target_journeys.rs`.

mod target_support;

use convoy::target::{
    Claims, DEV_JWT_SECRET, Role, SEED_PASSWORD, SEED_USERS, TargetConfig, sign_token, verify_token,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use target_support::{
    ACME_ADMIN, ACME_DISPATCHER, ACME_DRIVER, GLOBEX_ADMIN, Session, client, order_body, send,
    start,
};

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
    // A real order of the token's tenant: each route would act on it with a
    // valid token, so only the missing credentials can refuse it.
    let order = Session::login(&target, ACME_ADMIN)
        .await
        .create_order("AUTH-1")
        .await;

    let paths = [
        (Method::GET, "/api/orders".to_string()),
        (Method::POST, "/api/orders".to_string()),
        (Method::GET, "/api/shipments".to_string()),
        (Method::GET, format!("/orders/{order}")),
        (Method::PATCH, format!("/api/orders/{order}")),
        (Method::DELETE, format!("/api/orders/{order}")),
        (Method::POST, format!("/api/orders/{order}/accept")),
        (Method::POST, format!("/api/shipments/{order}/route")),
        (Method::POST, format!("/orders/{order}/deliver")),
        (Method::GET, format!("/api/orders/{order}/adjustments")),
        (Method::POST, "/api/dispatch/assign".to_string()),
        (Method::GET, "/api/drivers/drv-acme-1/coaching".to_string()),
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
    // None of the refused requests touched the order.
    let still = send(
        client
            .get(format!("{base}/api/orders/{order}"))
            .bearer_auth(&valid),
    )
    .await;
    assert_eq!(
        (still.status, still.json["status"].as_str()),
        (StatusCode::OK, Some("created"))
    );
}

#[tokio::test]
async fn wrong_methods_and_oversized_bodies_answer_the_json_error_shape() {
    let target = start(&[]);
    let admin = Session::login(&target, ACME_ADMIN).await;
    let order = admin.create_order("SHAPE-1").await;

    for (method, path, allowed) in [
        (Method::PUT, format!("/api/orders/{order}"), "PATCH"),
        (Method::GET, format!("/api/orders/{order}/accept"), "POST"),
        (Method::DELETE, "/api/orders".to_string(), "POST"),
        (Method::POST, "/health".to_string(), "GET"),
    ] {
        let reply = send(
            admin
                .request(method.clone(), &path)
                .header("x-request-id", "wrong-method"),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(reply.json["code"], "method_not_allowed", "{}", reply.text);
        assert!(reply.json["error"].is_string(), "{}", reply.text);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("x-request-id"), Some("wrong-method"));
        assert!(
            reply.header("allow").is_some_and(|a| a.contains(allowed)),
            "{method} {path}: allow {:?}",
            reply.header("allow")
        );
    }

    // Over the 2 MiB the target reads: refused before any parsing.
    let big = "x".repeat(2 * 1024 * 1024 + 1);
    let reply = send(
        admin
            .request(Method::POST, "/api/orders")
            .header("content-type", "application/json")
            .header("x-request-id", "too-big")
            .body(big),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    assert_eq!(reply.json["code"], "payload_too_large", "{}", reply.text);
    assert!(
        reply.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("2097152 bytes")),
        "{}",
        reply.text
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-request-id"), Some("too-big"));
    // Just under the limit it reaches the route, which judges the JSON.
    let under = send(
        admin
            .request(Method::POST, "/api/orders")
            .header("content-type", "application/json")
            .body("x".repeat(1024)),
    )
    .await;
    assert_eq!(under.status, StatusCode::BAD_REQUEST, "{}", under.text);
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
