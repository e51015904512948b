//! Helpers shared by the reference-target integration tests: a plain-HTTP
//! client, login with the seeded users, and a response with its JSON parsed.
//!
//! The targets start in memory. With `CONVOY_TEST_TARGET_ON_POSTGRES=1` and
//! `CONVOY_TEST_DATABASE_URL` set, every target [`start`] starts keeps its
//! data in a fresh PostgreSQL database instead, so the same API tests check
//! the PostgreSQL backend:
//!
//! ```sh
//! eval "$(ci/postgres.sh)"
//! CONVOY_TEST_TARGET_ON_POSTGRES=1 cargo nextest run --test target_api --test target_journeys --test target_streams
//! ```

#![allow(dead_code)] // Each test crate uses its own subset.

use std::time::Duration;

use convoy::target::{self, RunningTarget, TargetConfig};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// Seeded users by role, as the tests log in.
pub const ACME_ADMIN: &str = "admin@acme.test";
pub const ACME_DISPATCHER: &str = "dispatcher@acme.test";
pub const ACME_DRIVER: &str = "driver@acme.test";
pub const ACME_DRIVER_2: &str = "driver2@acme.test";
pub const GLOBEX_ADMIN: &str = "admin@globex.test";
pub const GLOBEX_DISPATCHER: &str = "dispatcher@globex.test";
pub const GLOBEX_DRIVER: &str = "driver@globex.test";

/// A target with `faults`, on one worker thread to spare the test machine.
pub fn start(faults: &[&str]) -> RunningTarget {
    let mut config = TargetConfig {
        worker_threads: 1,
        ..TargetConfig::default()
    };
    for fault in faults {
        config = config.with_fault(fault.parse().expect("valid fault"));
    }
    if let Some(url) = database_for_target() {
        config = config.with_database(url);
    }
    target::spawn(config).expect("target starts")
}

/// A fresh database for a target, when the tests run on PostgreSQL.
fn database_for_target() -> Option<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static DATABASES: AtomicUsize = AtomicUsize::new(0);
    std::env::var_os("CONVOY_TEST_TARGET_ON_POSTGRES")?;
    let server = std::env::var("CONVOY_TEST_DATABASE_URL")
        .expect("CONVOY_TEST_TARGET_ON_POSTGRES needs CONVOY_TEST_DATABASE_URL");
    let name = format!(
        "convoy_api_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let admin = server.clone();
    let create = name.clone();
    // On a thread of its own: the caller may be inside a runtime.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                    .await
                    .expect("the test server answers");
                tokio::spawn(conn);
                for sql in [
                    format!("DROP DATABASE IF EXISTS {create} WITH (FORCE)"),
                    format!("CREATE DATABASE {create}"),
                ] {
                    client.batch_execute(&sql).await.expect("database created");
                }
            });
    })
    .join()
    .unwrap();
    let mut url: url::Url = server.parse().unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// A plain-HTTP client with a generous timeout.
pub fn client() -> Client {
    // reqwest is built without a default crypto provider; plain HTTP does not
    // need one, but building a client may still ask for it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// A client that opens a new connection for every request.
pub fn fresh_client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client builds")
}

/// A response with its body parsed as JSON (`Value::Null` if empty or not
/// JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends a request and reads the whole answer.
pub async fn send(request: RequestBuilder) -> Reply {
    let response = request.send().await.expect("request gets an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body reads");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// One seeded user's API session.
#[derive(Debug, Clone)]
pub struct Session {
    pub client: Client,
    pub base: String,
    pub token: String,
}

impl Session {
    /// Logs in as the seeded user with `email`.
    pub async fn login(target: &RunningTarget, email: &str) -> Session {
        let client = client();
        let base = target.base_url();
        let reply = send(
            client
                .post(format!("{base}/api/auth/login"))
                .header("content-type", "application/json")
                .body(json!({"email": email, "password": target::SEED_PASSWORD}).to_string()),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login as {email}: {}",
            reply.text
        );
        let token = reply.json["token"].as_str().expect("token").to_string();
        Session {
            client,
            base,
            token,
        }
    }

    /// A request to `path` with this session's token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// A request with a JSON body.
    pub fn json(&self, method: Method, path: &str, body: &Value) -> RequestBuilder {
        self.request(method, path)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        send(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        send(self.json(Method::POST, path, body)).await
    }

    /// `POST path` without a body.
    pub async fn post_empty(&self, path: &str) -> Reply {
        send(self.request(Method::POST, path)).await
    }

    /// Creates a valid order and returns its id.
    pub async fn create_order(&self, reference: &str) -> String {
        let reply = self.post("/api/orders", &order_body(reference)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "create: {}", reply.text);
        reply.json["id"].as_str().expect("order id").to_string()
    }
}

/// A valid order body around Hamburg, with two intermediate stops given in a
/// poor order.
pub fn order_body(reference: &str) -> Value {
    json!({
        "reference": reference,
        "pickup": {"address": "Am Sandtorkai 1, Hamburg", "lat": 53.5436, "lon": 9.9885},
        "dropoff": {"address": "Wandsbeker Marktstraße 1, Hamburg", "lat": 53.5727, "lon": 10.0683},
        "stops": [
            {"address": "Mönckebergstraße 7, Hamburg", "lat": 53.5503, "lon": 10.0006},
            {"address": "Große Elbstraße 39, Hamburg", "lat": 53.5451, "lon": 9.9421}
        ],
        "weight_kg": 120.5
    })
}
