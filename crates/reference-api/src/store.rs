//! The target's in-memory state: per-tenant orders, idempotency records and
//! ledger rows.
//!
//! Each tenant has its own mutex, so tenants never contend and a handler can
//! make a check and the write that depends on it in one critical section (how
//! idempotent creation avoids a check-then-insert race). Handlers hold a lock
//! only for in-memory work, never across an `.await`.

use std::borrow::Cow;
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

    /// The tenant's place in [`TENANTS`], for per-tenant arrays.
    pub fn index(self) -> usize {
        self.0
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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
    pub currency: Cow<'static, str>,
    pub reason: Cow<'static, str>,
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

/// What dispatch and coaching need to know about a driver, kept up to date
/// so that they need not scan every order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DriverStats {
    /// Orders accepted or routed, not yet delivered.
    pub active: usize,
    /// Orders delivered since the target started.
    pub delivered: usize,
}

/// Everything one tenant owns.
#[derive(Debug)]
pub(crate) struct TenantData {
    /// Most orders kept; the oldest are forgotten beyond it.
    capacity: usize,
    next_seq: u64,
    /// Orders in creation order, keyed by sequence number.
    orders: BTreeMap<u64, Order>,
    by_id: HashMap<Uuid, u64>,
    /// Idempotency records, scoped to the tenant; each lives as long as its
    /// order.
    pub idempotency: HashMap<String, IdempotentAnswer>,
    ledger: HashMap<Uuid, Vec<Adjustment>>,
    drivers: HashMap<String, DriverStats>,
}

impl TenantData {
    /// Empty, keeping at most `capacity` orders (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next_seq: 0,
            orders: BTreeMap::new(),
            by_id: HashMap::new(),
            idempotency: HashMap::new(),
            ledger: HashMap::new(),
            drivers: HashMap::new(),
        }
    }

    /// Stores a new order, forgetting the oldest ones beyond the capacity so
    /// that a long soak test runs in bounded memory.
    pub fn insert(&mut self, order: Order) {
        self.next_seq += 1;
        self.by_id.insert(order.id, self.next_seq);
        self.orders.insert(self.next_seq, order);
        while self.orders.len() > self.capacity {
            let Some((_, oldest)) = self.orders.pop_first() else {
                break;
            };
            self.forget(&oldest);
            self.ledger.remove(&oldest.id);
        }
    }

    /// The order with `id`.
    pub fn get(&self, id: &Uuid) -> Option<&Order> {
        self.by_id.get(id).and_then(|seq| self.orders.get(seq))
    }

    /// The order with `id`, to change.
    pub fn get_mut(&mut self, id: &Uuid) -> Option<&mut Order> {
        self.by_id.get(id).and_then(|seq| self.orders.get_mut(seq))
    }

    /// Removes the order with `id` and frees its idempotency key.
    pub fn remove(&mut self, id: &Uuid) -> Option<Order> {
        let seq = self.by_id.get(id)?;
        let order = self.orders.remove(seq)?;
        self.forget(&order);
        Some(order)
    }

    /// Drops what refers to an order that is gone.
    fn forget(&mut self, order: &Order) {
        self.by_id.remove(&order.id);
        if let Some(key) = &order.idempotency_key
            && self
                .idempotency
                .get(key)
                .is_some_and(|first| first.order_id == order.id)
        {
            self.idempotency.remove(key);
        }
        if matches!(order.status, OrderStatus::Accepted | OrderStatus::Routed)
            && let Some(driver) = &order.driver_id
            && let Some(stats) = self.drivers.get_mut(driver)
        {
            stats.active = stats.active.saturating_sub(1);
        }
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

    /// A driver accepted an order.
    pub fn load_started(&mut self, driver: &str) {
        self.drivers.entry(driver.to_string()).or_default().active += 1;
    }

    /// A driver delivered an order.
    pub fn load_delivered(&mut self, driver: &str) {
        let stats = self.drivers.entry(driver.to_string()).or_default();
        stats.active = stats.active.saturating_sub(1);
        stats.delivered += 1;
    }

    /// Keeps the driver statistics in step with an order's change of status:
    /// accepting starts a load, delivering completes it.
    pub fn follow_transition(
        &mut self,
        before: OrderStatus,
        after: OrderStatus,
        driver: Option<&str>,
    ) {
        let Some(driver) = driver else { return };
        match (before, after) {
            (OrderStatus::Created, OrderStatus::Accepted) => self.load_started(driver),
            (OrderStatus::Routed, OrderStatus::Delivered) => self.load_delivered(driver),
            _ => {}
        }
    }

    /// A driver's current workload and record.
    pub fn driver_stats(&self, driver: &str) -> DriverStats {
        self.drivers.get(driver).copied().unwrap_or_default()
    }
}

/// All tenants' data.
#[derive(Debug)]
pub(crate) struct Store {
    tenants: Vec<Mutex<TenantData>>,
    capacity: usize,
}

impl Store {
    /// An empty store for the seeded tenants, keeping at most
    /// `orders_per_tenant` orders each.
    pub fn new(orders_per_tenant: usize) -> Self {
        Self {
            tenants: TENANTS
                .iter()
                .map(|_| Mutex::new(TenantData::with_capacity(orders_per_tenant)))
                .collect(),
            capacity: orders_per_tenant.max(1),
        }
    }

    /// Most orders kept per tenant.
    pub fn capacity(&self) -> usize {
        self.capacity
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
        let mut data = TenantData::with_capacity(10);
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
    fn the_oldest_orders_are_forgotten_beyond_capacity() {
        let mut data = TenantData::with_capacity(2);
        let mut first = order("a");
        first.idempotency_key = Some("key-a".into());
        first.status = OrderStatus::Accepted;
        first.driver_id = Some("drv-1".into());
        let first_id = first.id;
        data.idempotency.insert(
            "key-a".into(),
            IdempotentAnswer {
                fingerprint: [0; 32],
                status: StatusCode::CREATED,
                order_id: first_id,
                body: Bytes::new(),
            },
        );
        data.load_started("drv-1");
        data.insert(first);
        data.insert(order("b"));
        assert!(data.get(&first_id).is_some());
        data.insert(order("c"));
        assert!(data.get(&first_id).is_none());
        assert_eq!(data.orders().count(), 2);
        assert!(data.idempotency.is_empty(), "the key went with its order");
        assert_eq!(data.driver_stats("drv-1").active, 0);
    }

    #[test]
    fn driver_stats_follow_the_lifecycle() {
        let mut data = TenantData::with_capacity(10);
        data.load_started("drv-1");
        data.load_started("drv-1");
        data.load_delivered("drv-1");
        assert_eq!(
            data.driver_stats("drv-1"),
            DriverStats {
                active: 1,
                delivered: 1
            }
        );
        assert_eq!(data.driver_stats("drv-2"), DriverStats::default());
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
