//! The built-in reference logistics API, with fault injection.
//!
//! convoy's scenarios, examples and integration tests need a logistics API to
//! run against that behaves like the platforms we imitate (orders with an
//! `Idempotency-Key`, a driver lifecycle, a ledger, tenant isolation, AI-style
//! dispatch) and that can be told to misbehave on purpose. This module is that
//! API: on axum, in memory or on PostgreSQL, started in process with [`spawn`]
//! (own thread, own runtime, ephemeral loopback port) or from the command line
//! with `convoy target` (which calls [`prepare`]).
//!
//! It is a crate of its own (`convoy-reference-api`) and depends on no harness
//! code: the thing measured must not lean on the thing that measures it. The
//! `convoy` binary joins the two (`convoy run` without `--target`, `convoy
//! target`); `tests/architecture.rs` keeps the wall standing.
//!
//! # Seeded tenants and users
//!
//! Two tenants, `acme` (depots around Hamburg) and `globex` (around
//! Rotterdam), each with an admin, a dispatcher and two drivers. Every user's
//! password is [`SEED_PASSWORD`] (`convoy-demo`); the full table is
//! [`SEED_USERS`].
//!
//! | email                     | tenant | role       | user id                 |
//! |---------------------------|--------|------------|-------------------------|
//! | `admin@acme.test`         | acme   | admin      | `usr-acme-admin`        |
//! | `dispatcher@acme.test`    | acme   | dispatcher | `usr-acme-dispatcher`   |
//! | `driver@acme.test`        | acme   | driver     | `drv-acme-1`            |
//! | `driver2@acme.test`       | acme   | driver     | `drv-acme-2`            |
//! | `admin@globex.test`       | globex | admin      | `usr-globex-admin`      |
//! | `dispatcher@globex.test`  | globex | dispatcher | `usr-globex-dispatcher` |
//! | `driver@globex.test`      | globex | driver     | `drv-globex-1`          |
//! | `driver2@globex.test`     | globex | driver     | `drv-globex-2`          |
//!
//! # Routes
//!
//! Every response carries `x-request-id` (the request's own, echoed, or a
//! fresh UUID). Errors are JSON: `{"error": "...", "code": "...", "field":
//! "..."}` (`field` only for validation errors). Order routes exist under
//! three prefixes, `/api/orders`, `/api/shipments` and `/orders`, written
//! `{orders}` below.
//!
//! | route | who | answer |
//! |---|---|---|
//! | `GET /health`, `GET /api/health` | anyone | `200 {"status":"ok"}` |
//! | `GET /openapi.json` | anyone | this API as an OpenAPI 3.1 document |
//! | `POST /api/auth/login` `{"email","password"}` | anyone | `200 {"token","token_type":"Bearer","expires_in","user":{..}}`, 401 |
//! | `POST {orders}` | admin, dispatcher | 201 order; honours `Idempotency-Key` |
//! | `GET {orders}?status=&idempotency_key=&limit=` | any role | `{"orders":[..],"count":N,"total":M}` |
//! | `GET {orders}/{id}` | any role | order |
//! | `PATCH {orders}/{id}` | admin | order |
//! | `DELETE {orders}/{id}` | admin | 204 |
//! | `POST {orders}/{id}/accept` | driver | order, `created` → `accepted` |
//! | `POST {orders}/{id}/route` | admin, dispatcher, the assigned driver | route, `accepted` → `routed` |
//! | `POST {orders}/{id}/deliver` | the assigned driver | `{"order","adjustment"}`, `routed` → `delivered` |
//! | `GET {orders}/{id}/adjustments` | admin, dispatcher | `{"adjustments":[..],"count","total"}` |
//! | `POST /api/dispatch/assign` `{"loadId"}` | admin, dispatcher | `{"loadId","driverId","reason","score",..}` |
//! | `GET /api/drivers/{id}/coaching` | admin, dispatcher, the driver | coaching tips |
//! | `GET /events`, `GET /api/events` | any role (bearer or `?access_token=`) | the tenant's events as server-sent events |
//! | `GET /ws`, `GET /api/ws` | any role (bearer or `?access_token=`) | the tenant's events over a WebSocket |
//!
//! The event streams and their JSON are described in `stream.rs` and
//! `events.rs` (and README.md, "event streams").
//!
//! Status rules: 401 without a valid, unexpired bearer token; 403 for a role
//! that may not act; 404 for anything of another tenant (never 403, which
//! would reveal that it exists); 409 for an illegal lifecycle transition; 400
//! for malformed JSON; 422 for a well-formed body with an invalid field.
//!
//! The order body (`POST`) is:
//!
//! ```json
//! {
//!   "reference": "PO-1001",
//!   "pickup":  {"address": "Am Sandtorkai 1, Hamburg", "lat": 53.5436, "lon": 9.9885},
//!   "dropoff": {"address": "Mönckebergstraße 7, Hamburg", "lat": 53.5503, "lon": 10.0006},
//!   "stops":   [{"address": "Große Elbstraße 39, Hamburg", "lat": 53.5451, "lon": 9.9421}],
//!   "weight_kg": 120.5
//! }
//! ```
//!
//! `pickup`, `dropoff` and `weight_kg` (0 < w ≤ 40,000) are required;
//! `reference` (1–64 characters) and `stops` (at most 20 intermediate drops)
//! are optional; an address is 1–200 characters, `lat` in −90..=90, `lon` in
//! −180..=180. Deliveries write a ledger row whose `amount` is in cents
//! (minor units) of `currency`.
//!
//! # Storage
//!
//! Handlers hold the API's rules and call one storage interface
//! (`storage.rs`) with two backends, so routes, JSON and status codes are the
//! same in both (the API tests run against either: see
//! `tests/target_support`).
//!
//! **In memory** (the default): each tenant keeps its newest
//! [`TargetConfig::max_orders_per_tenant`] orders (100,000 by default) and
//! forgets older ones with their idempotency records and ledger rows, under
//! one mutex per tenant.
//!
//! **PostgreSQL** ([`TargetConfig::database`], `convoy target --database-url
//! URL` or `CONVOY_TARGET_DATABASE_URL`): tenants, orders with their
//! idempotency keys and first answers, and `order_adjustments`, in the schema
//! of `migrations/` (compiled in, applied at startup in one transaction under
//! an advisory lock, recorded in `schema_migrations`; [`migrate()`] does the
//! same for tests and tools). The URL's role migrates and must be able to
//! create tables and the role `convoy_app`; requests never run as it:
//!
//! - every connection of the pool (`--database-connections`, 8) does
//!   `SET ROLE convoy_app`, a role that cannot log in, is not a superuser,
//!   has no `BYPASSRLS` and owns nothing, and startup refuses to serve if the
//!   role would bypass row-level security;
//! - every request is one transaction that first does
//!   `set_config('app.tenant', $1, true)` (transaction-local), and the
//!   policies of `0001_orders_rls.sql` confine it to that tenant. The
//!   target's queries carry no tenant filter of their own, on purpose:
//!   row-level security alone makes another tenant's order a 404, which
//!   `tests/postgres_target.rs` proves by disabling it and watching the API
//!   leak;
//! - idempotent creation is `INSERT ... ON CONFLICT DO NOTHING` against the
//!   unique key `(tenant_id, idempotency_key)`; when nothing was inserted,
//!   the stored first answer (fingerprint, status, body) is replayed, so
//!   concurrent duplicates create one row;
//! - edits lock the order (`SELECT ... FOR UPDATE`), and delivery writes its
//!   `order_adjustments` row in the transaction that sets `delivered`.
//!
//! `SET ROLE` lets one URL both migrate and serve; it is a privilege drop by
//! the target's own code, not a boundary against it. A deployment that wants
//! the database to enforce the split runs migrations separately and gives
//! the target a login role that is a member of `convoy_app`.
//!
//! An `Idempotency-Key` lives as long as its order (deleting the order frees
//! it), in both backends.
//!
//! # Faults
//!
//! See [`Fault`] for the syntax (`--fault latency=20ms`, `error-rate=0.05`,
//! `stall=1s@5s`, `tenant-leak=0.05`, `idempotency-race`, `slow-body=20ms`,
//! `truncated-body`, `crash-after=1000`, and on the event streams
//! `event-delay=50ms`, `event-drop=0.1`, `event-leak=0.05`,
//! `stream-close=30s`). With PostgreSQL, the HTTP faults
//! apply unchanged; `tenant-leak` reads the other tenant's order in a
//! transaction set to that tenant (a wrong tenant context, the bug
//! row-level security cannot catch); `idempotency-race` cannot happen (the
//! unique key refuses a second order for a key) and is refused as a usage
//! error by [`TargetConfig::validate`].

mod auth;
mod dispatch;
mod duration;
mod error;
mod events;
mod fault;
mod inject;
mod lifecycle;
mod migrate;
mod openapi;
mod optimise;
mod orders;
mod pool;
mod postgres;
mod server;
mod storage;
mod store;
mod stream;
mod validate;

use std::time::Duration;

pub use auth::{
    Claims, Role, SEED_PASSWORD, SEED_USERS, SeedUser, TokenError, sign_token, verify_token,
};
pub use fault::{Fault, FaultError, Latency};
pub use openapi::document as openapi_document;
pub use postgres::{DatabaseUrl, TargetError, migrate};
pub use server::{PreparedTarget, RunningTarget, prepare, serve, spawn, spawn_on};

/// The tenants the target is seeded with.
pub const TENANTS: &[&str] = &["acme", "globex"];

/// The JWT secret used when none is configured. Fine for a local reference
/// target, which is why `convoy target` refuses public addresses by default.
pub const DEV_JWT_SECRET: &str = "convoy-reference-target-dev-secret";

/// The most events [`TargetConfig::event_buffer`] may keep per tenant.
pub const MAX_EVENT_BUFFER: usize = 1 << 20;

/// How the reference target runs: its faults, its token signing, its threads.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Faults to inject; each applies on its own (two latencies add up).
    pub faults: Vec<Fault>,
    /// Secret for the HS256 signature of issued tokens; must not be empty.
    pub jwt_secret: String,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// Worker threads of the runtime [`spawn`] starts (1 = a single-threaded
    /// runtime). [`serve`] runs on the caller's runtime and ignores it.
    pub worker_threads: usize,
    /// Most orders kept per tenant: beyond it the oldest are forgotten, with
    /// their idempotency records and ledger rows, so that soak tests run in
    /// bounded memory. The memory backend's only: PostgreSQL keeps them all.
    pub max_orders_per_tenant: usize,
    /// Where to keep the data: `None` in memory, else in this PostgreSQL
    /// database, migrated at startup, tenants isolated by row-level
    /// security.
    pub database: Option<DatabaseUrl>,
    /// Most connections to the database at once.
    pub database_connections: usize,
    /// Events each tenant's stream keeps for subscribers that have not read
    /// them yet; one that falls further behind loses the oldest and is told
    /// how many (`lagged`).
    pub event_buffer: usize,
    /// Seed for the draws of the event faults (`event-drop`, `event-leak`,
    /// the range of `event-delay`), so that a run can be repeated; `None`
    /// draws from entropy.
    pub event_seed: Option<u64>,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            faults: Vec::new(),
            jwt_secret: DEV_JWT_SECRET.to_string(),
            token_ttl: Duration::from_secs(3600),
            worker_threads: 2,
            max_orders_per_tenant: 100_000,
            database: None,
            database_connections: 8,
            event_buffer: 1024,
            event_seed: None,
        }
    }
}

impl TargetConfig {
    /// Adds a fault to inject.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Replaces the JWT secret.
    pub fn with_jwt_secret(mut self, secret: impl Into<String>) -> Self {
        self.jwt_secret = secret.into();
        self
    }

    /// Keeps the data in the PostgreSQL database at `url`.
    pub fn with_database(mut self, url: impl Into<String>) -> Self {
        self.database = Some(DatabaseUrl::from(url.into()));
        self
    }

    /// Checks what can be checked before starting: a JWT secret, an event
    /// buffer of a sensible size, a database URL that parses, and faults
    /// that fit the backend. The
    /// `idempotency-race` fault cannot happen with PostgreSQL, whose unique
    /// key `(tenant_id, idempotency_key)` refuses a second order for a key.
    pub fn validate(&self) -> Result<(), TargetError> {
        if self.jwt_secret.is_empty() {
            return Err(TargetError::Config(
                "the JWT secret must not be empty".to_string(),
            ));
        }
        if !(1..=MAX_EVENT_BUFFER).contains(&self.event_buffer) {
            return Err(TargetError::Config(format!(
                "the event buffer must hold 1 to {MAX_EVENT_BUFFER} events, found {}",
                self.event_buffer
            )));
        }
        if let Some(url) = &self.database {
            url.config()?;
            if self.faults.contains(&Fault::IdempotencyRace) {
                return Err(TargetError::Config(
                    "the idempotency-race fault does not apply with --database-url: the database's \
                     unique key (tenant_id, idempotency_key) refuses a second order for a key; \
                     run the target in memory to see the race"
                        .to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Replaces the token lifetime.
    pub fn with_token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_has_no_faults_and_one_hour_tokens() {
        let config = TargetConfig::default();
        assert!(config.faults.is_empty());
        assert_eq!(config.token_ttl, Duration::from_secs(3600));
        assert_eq!(config.jwt_secret, DEV_JWT_SECRET);
    }

    #[test]
    fn the_event_buffer_must_fit() {
        for bad in [0, MAX_EVENT_BUFFER + 1] {
            let config = TargetConfig {
                event_buffer: bad,
                ..TargetConfig::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("event buffer"), "{err}");
        }
        assert!(TargetConfig::default().validate().is_ok());
    }

    #[test]
    fn every_tenant_has_each_role() {
        for tenant in TENANTS {
            for role in [Role::Admin, Role::Dispatcher, Role::Driver] {
                assert!(
                    SEED_USERS
                        .iter()
                        .any(|u| u.tenant == *tenant && u.role == role),
                    "{tenant} has no {role:?}"
                );
            }
        }
    }
}
