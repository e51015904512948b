//! The target's in-memory state: per-tenant orders, idempotency records and
//! ledger rows.
//!
//! Each tenant has its own mutex, so tenants never contend and a handler can
//! make a check and the write that depends on it in one critical section (how
//! idempotent creation avoids a check-then-insert race). Handlers hold a lock
//! only for in-memory work, never across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use axum::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;
use uuid::Uuid;

use super::TENANTS;
use super::optimise::Route;

/// Index of a tenant in [`TENANTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TenantId(usize);

impl TenantId {
    /// The tenant called `name`, if it is seeded.
    pub fn from_name(name: &str) -> Option<Self> {
        TENANTS.iter().position(|t| *t == name).map(TenantId)
    }

    /// The tenant's name.
    pub fn name(self) -> &'static str {
        TENANTS[self.0]
    }

    /// Every tenant.
    pub fn all() -> impl Iterator<Item = TenantId> {
        (0..TENANTS.len()).map(TenantId)
    }
}

/// Where an order's lifecycle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OrderStatus {
    Created,
    Accepted,
    Routed,
    Delivered,
}

impl OrderStatus {
    /// The status as written in answers and `?status=`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Accepted => "accepted",
            OrderStatus::Routed => "routed",
            OrderStatus::Delivered => "delivered",
        }
    }

    /// Parses `?status=`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            OrderStatus::Created,
            OrderStatus::Accepted,
            OrderStatus::Routed,
            OrderStatus::Delivered,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// A place to pick up or drop off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Location {
    pub address: String,
    pub lat: f64,
    pub lon: f64,
}

/// An order (a shipment), as stored and as answered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Order {
    #[serde(serialize_with = "as_string")]
    pub id: Uuid,
    pub tenant: &'static str,
    pub reference: Option<String>,
    pub status: OrderStatus,
    pub pickup: Location,
    pub dropoff: Location,
    pub stops: Vec<Location>,
    pub weight_kg: f64,
    pub created_by: String,
    pub driver_id: Option<String>,
    pub route: Option<Route>,
    pub idempotency_key: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A ledger row in `order_adjustments`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Adjustment {
    #[serde(serialize_with = "as_string")]
    pub id: Uuid,
    #[serde(serialize_with = "as_string")]
    pub order_id: Uuid,
    pub tenant: &'static str,
    /// In minor units (cents) of `currency`.
    pub amount: i64,
    pub currency: &'static str,
    pub reason: &'static str,
    pub created_at: String,
}

/// The first answer to an idempotent creation, replayed for the same key.
#[derive(Debug, Clone)]
pub(crate) struct IdempotentAnswer {
    /// SHA-256 of the canonical JSON of the request body.
    pub fingerprint: [u8; 32],
    pub status: StatusCode,
    pub order_id: Uuid,
    pub body: Bytes,
}

/// Everything one tenant owns.
#[derive(Debug, Default)]
pub(crate) struct TenantData {
    next_seq: u64,
    /// Orders in creation order, keyed by sequence number.
    orders: BTreeMap<u64, Order>,
    by_id: HashMap<Uuid, u64>,
    /// Idempotency records, scoped to the tenant.
    pub idempotency: HashMap<String, IdempotentAnswer>,
    ledger: HashMap<Uuid, Vec<Adjustment>>,
}

impl TenantData {
    /// Stores a new order.
    pub fn insert(&mut self, order: Order) {
        self.next_seq += 1;
        self.by_id.insert(order.id, self.next_seq);
        self.orders.insert(self.next_seq, order);
    }

    /// The order with `id`.
    pub fn get(&self, id: &Uuid) -> Option<&Order> {
        self.by_id.get(id).and_then(|seq| self.orders.get(seq))
    }

    /// The order with `id`, to change.
    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut Order> {
        self.by_id.get(id).and_then(|seq| self.orders.get_mut(seq))
    }

    /// Removes the order with `id`; its ledger rows stay.
    pub fn remove(&mut self, id: &Uuid) -> Option<Order> {
        self.by_id
            .remove(id)
            .and_then(|seq| self.orders.remove(&seq))
    }

    /// Orders in creation order.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// Appends a ledger row.
    pub fn record(&mut self, adjustment: Adjustment) {
        self.ledger
            .entry(adjustment.order_id)
            .or_default()
            .push(adjustment);
    }

    /// Ledger rows of an order, oldest first.
    pub fn adjustments(&self, order_id: &Uuid) -> &[Adjustment] {
        self.ledger.get(order_id).map_or(&[], Vec::as_slice)
    }
}

/// All tenants' data.
#[derive(Debug)]
pub(crate) struct Store {
    tenants: Vec<Mutex<TenantData>>,
}

impl Store {
    /// An empty store for the seeded tenants.
    pub fn new() -> Self {
        Self {
            tenants: TENANTS.iter().map(|_| Mutex::default()).collect(),
        }
    }

    /// Locks one tenant's data. A panic in another handler leaves data that is
    /// still consistent (every write is a single insert or field update), so a
    /// poisoned lock is taken over rather than propagated.
    pub fn tenant(&self, tenant: TenantId) -> MutexGuard<'_, TenantData> {
        self.tenants[tenant.0]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serialises an id as its hyphenated string (uuid's serde support is not
/// compiled in).
fn as_string<S: serde::Serializer>(id: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// A fresh random id. Ids need to be unique, not secret, so the thread-local
/// fast generator is used instead of the operating system's.
pub(crate) fn new_id() -> Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

/// The current time as RFC 3339 with milliseconds.
pub(crate) fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(reference: &str) -> Order {
        let here = Location {
            address: "Am Sandtorkai 1".into(),
            lat: 53.54,
            lon: 9.99,
        };
        Order {
            id: new_id(),
            tenant: "acme",
            reference: Some(reference.into()),
            status: OrderStatus::Created,
            pickup: here.clone(),
            dropoff: here,
            stops: Vec::new(),
            weight_kg: 1.0,
            created_by: "usr-acme-admin".into(),
            driver_id: None,
            route: None,
            idempotency_key: None,
            created_at: timestamp(),
            updated_at: timestamp(),
        }
    }

    #[test]
    fn orders_list_in_creation_order_and_remove_cleanly() {
        let mut data = TenantData::default();
        let (a, b, c) = (order("a"), order("b"), order("c"));
        let b_id = b.id;
        for o in [a, b, c] {
            data.insert(o);
        }
        let refs: Vec<_> = data
            .orders()
            .map(|o| o.reference.clone().unwrap())
            .collect();
        assert_eq!(refs, ["a", "b", "c"]);
        assert!(data.remove(&b_id).is_some());
        assert!(data.get(&b_id).is_none());
        assert_eq!(data.orders().count(), 2);
    }

    #[test]
    fn tenants_resolve_by_name() {
        let acme = TenantId::from_name("acme").unwrap();
        assert_eq!(acme.name(), "acme");
        assert!(TenantId::from_name("initech").is_none());
        assert_eq!(TenantId::all().count(), TENANTS.len());
    }

    #[test]
    fn status_names_round_trip() {
        for name in ["created", "accepted", "routed", "delivered"] {
            assert_eq!(OrderStatus::parse(name).unwrap().as_str(), name);
        }
        assert!(OrderStatus::parse("lost").is_none());
    }

    #[test]
    fn new_ids_are_version_4() {
        assert_eq!(new_id().get_version_num(), 4);
        assert_ne!(new_id(), new_id());
    }
}
