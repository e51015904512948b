//! Journeys across the reference target's routes over real HTTP, as the
//! platforms' go-live checklists describe them: the order lifecycle and its
//! ledger, tenant isolation, idempotent replay and dispatch.

mod target_support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use target_support::{
    ACME_ADMIN, ACME_DISPATCHER, ACME_DRIVER, ACME_DRIVER_2, GLOBEX_ADMIN, GLOBEX_DISPATCHER,
    GLOBEX_DRIVER, Session, order_body, send, start,
};

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
    // Another tenant's order is 404, as on every route, and answers exactly
    // as an order id that exists nowhere: its existence does not show.
    let globex = Session::login(&target, GLOBEX_DISPATCHER).await;
    let theirs = globex
        .post("/api/dispatch/assign", &json!({"loadId": id}))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);
    assert_eq!(theirs.json["code"], "not_found");
    assert!(!theirs.text.contains(id.as_str()), "{}", theirs.text);
    let nowhere = globex
        .post(
            "/api/dispatch/assign",
            &json!({"loadId": "00000000-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!(
        (nowhere.status, &nowhere.json),
        (theirs.status, &theirs.json)
    );
    // Globex's own loads still get a globex driver.
    let own = globex
        .post("/api/dispatch/assign", &json!({"loadId": "G-1"}))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert!(
        own.json["driverId"]
            .as_str()
            .unwrap()
            .starts_with("drv-globex-")
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
