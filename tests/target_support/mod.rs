//! Helpers shared by the reference-target integration tests: a plain-HTTP
//! client, login with the seeded users, and a response with its JSON parsed.

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
    target::spawn(config).expect("target starts")
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
