//! The event bus: each tenant's order and dispatch events, which
//! `stream.rs` serves as server-sent events (`GET /events`) and WebSocket
//! frames (`GET /ws`).
//!
//! Handlers publish once their storage call has succeeded, so an event
//! always follows a committed write, with one code path for both storages.
//! The bus lives in the process: several targets sharing one database do not
//! see each other's events (no `LISTEN/NOTIFY`).
//!
//! Each tenant has one bounded `tokio::sync::broadcast` channel, so a slow
//! subscriber neither blocks a writer nor grows memory: it falls behind,
//! loses the oldest events and is told how many ([`Delivery::Lagged`]).
//! Publishing to a tenant nobody listens to costs one atomic load (two
//! under `event-leak`); the event is not even built. Sequence numbers are per tenant,
//! taken under the same lock as the send, so a subscriber sees them rising.
//!
//! The event faults live here: `event-leak` is drawn once per event when it
//! is published (the event then goes to another tenant's channel too);
//! `event-drop` and `event-delay` are drawn per event and subscriber in
//! [`Subscription::next`]. With [`crate::TargetConfig::event_seed`] every
//! draw comes from seeded generators (one for leaks, one per subscriber,
//! seeded by its tenant and the order it subscribed in), so a test that
//! publishes and subscribes in a fixed order sees the same events each run.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use uuid::Uuid;

use super::fault::Latency;
use super::inject::FaultPlan;
use super::store::{OrderStatus, TenantId};

/// What happened, as named in the `type` field and the SSE `event:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// `POST /orders` stored a new order.
    OrderCreated,
    /// The lifecycle moved an order on (accept, route, deliver).
    OrderStatus,
    /// `POST /api/dispatch/assign` recommended a driver for an order.
    DispatchAssigned,
}

impl EventKind {
    /// Every kind, in the order of their bits.
    pub const ALL: [EventKind; 3] = [
        EventKind::OrderCreated,
        EventKind::OrderStatus,
        EventKind::DispatchAssigned,
    ];

    /// The name subscribers see.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::OrderCreated => "order.created",
            EventKind::OrderStatus => "order.status",
            EventKind::DispatchAssigned => "dispatch.assigned",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The kinds a subscriber asked for (`?types=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KindSet(u8);

impl KindSet {
    /// Every kind: no `?types=`.
    pub const ALL: KindSet = KindSet(0b111);

    /// Parses a comma-separated list of kind names; an unknown name is named
    /// in the error with the known ones.
    pub fn parse(list: &str) -> Result<KindSet, String> {
        let mut set = 0;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let kind = EventKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                    format!(
                        "unknown event type {name:?}: types is a comma-separated list of {}",
                        known.join(", ")
                    )
                })?;
            set |= kind.bit();
        }
        if set == 0 {
            return Err("types names no event type".to_string());
        }
        Ok(KindSet(set))
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// One published event, shared by every subscriber that receives it.
#[derive(Debug)]
pub(crate) struct Event {
    pub kind: EventKind,
    /// Rises by one per event of the owning tenant.
    pub seq: u64,
    /// When it was published, right after its write committed.
    pub published: Instant,
    /// The event as one line of JSON, `type` included; shared, not copied,
    /// by the subscribers' frames.
    pub json: Utf8Bytes,
}

/// What an event says about an order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderFacts<'a> {
    pub id: Uuid,
    pub status: OrderStatus,
    pub driver_id: Option<&'a str>,
}

/// One tenant's channel.
#[derive(Debug)]
struct Channel {
    sender: broadcast::Sender<Arc<Event>>,
    /// The last sequence number given out; its lock orders the sends.
    last_seq: Mutex<u64>,
    /// Subscriptions opened so far, to seed each one's draws.
    subscribed: AtomicU64,
    /// Subscriptions open now. The broadcast channel counts its receivers
    /// too, but behind a mutex: this is what every write checks.
    listening: Arc<AtomicUsize>,
}

/// Every tenant's events, and the event faults.
#[derive(Debug)]
pub(crate) struct EventBus {
    channels: Vec<Channel>,
    delay: Vec<Latency>,
    drop: f64,
    leak: f64,
    seed: Option<u64>,
    /// Draws whether an event leaks, and to which tenant.
    leak_rng: Mutex<fastrand::Rng>,
}

impl EventBus {
    /// A bus whose channels hold `capacity` events each (at least 1).
    pub fn new(capacity: usize, faults: &FaultPlan, seed: Option<u64>) -> EventBus {
        let channels = TenantId::all()
            .map(|_| Channel {
                sender: broadcast::channel(capacity.max(1)).0,
                last_seq: Mutex::new(0),
                subscribed: AtomicU64::new(0),
                listening: Arc::new(AtomicUsize::new(0)),
            })
            .collect();
        EventBus {
            channels,
            delay: faults.event_delay.clone(),
            drop: faults.event_drop,
            leak: faults.event_leak,
            seed,
            leak_rng: Mutex::new(seeded(seed, u64::MAX, 0)),
        }
    }

    fn channel(&self, tenant: TenantId) -> &Channel {
        &self.channels[tenant.index()]
    }

    /// Whether anybody could receive an event of `tenant`: its own
    /// subscribers, or, under `event-leak`, anybody's.
    fn heard(&self, tenant: TenantId) -> bool {
        let listening = |c: &Channel| c.listening.load(Ordering::Relaxed) > 0;
        if self.leak > 0.0 {
            self.channels.iter().any(listening)
        } else {
            listening(self.channel(tenant))
        }
    }

    /// Publishes an event about an order of `tenant`; call it after the
    /// write is committed. Nearly free when nobody listens.
    pub fn publish(&self, tenant: TenantId, kind: EventKind, order: OrderFacts<'_>) {
        if !self.heard(tenant) {
            return;
        }
        let channel = self.channel(tenant);
        let event = {
            let mut last = lock(&channel.last_seq);
            *last += 1;
            let event = Arc::new(Event {
                kind,
                seq: *last,
                published: Instant::now(),
                json: event_json(tenant, kind, *last, order).into(),
            });
            // An error means no receiver: nothing to do.
            let _ = channel.sender.send(event.clone());
            event
        };
        if self.leak > 0.0 {
            let other = {
                let mut rng = lock(&self.leak_rng);
                (rng.f64() < self.leak).then(|| {
                    let others: Vec<TenantId> = TenantId::all().filter(|t| *t != tenant).collect();
                    others[rng.usize(..others.len())]
                })
            };
            if let Some(other) = other {
                let _ = self.channel(other).sender.send(event);
            }
        }
    }

    /// Subscribes to `tenant`'s events of `kinds`, from now on.
    pub fn subscribe(&self, tenant: TenantId, kinds: KindSet) -> Subscription {
        let channel = self.channel(tenant);
        let ordinal = channel.subscribed.fetch_add(1, Ordering::Relaxed);
        channel.listening.fetch_add(1, Ordering::Relaxed);
        Subscription {
            listening: channel.listening.clone(),
            receiver: channel.sender.subscribe(),
            kinds,
            rng: seeded(self.seed, tenant.index() as u64, ordinal),
            delay: self.delay.clone(),
            drop: self.drop,
            pending: None,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A generator for one stream of draws: from `seed` mixed with the stream's
/// two coordinates, or from entropy without a seed.
fn seeded(seed: Option<u64>, a: u64, b: u64) -> fastrand::Rng {
    match seed {
        None => fastrand::Rng::new(),
        Some(seed) => fastrand::Rng::with_seed(splitmix(
            splitmix(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ b,
        )),
    }
}

/// SplitMix64's finaliser: nearby inputs give unrelated seeds.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The event's JSON; subscribers rely on these field names.
fn event_json(tenant: TenantId, kind: EventKind, seq: u64, order: OrderFacts<'_>) -> String {
    let at = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
    let mut value = json!({
        "type": kind.name(),
        "tenant": tenant.name(),
        "order_id": order.id.to_string(),
        "status": order.status.as_str(),
        "at": at,
        "seq": seq,
    });
    if let Some(driver) = order.driver_id {
        value["driver_id"] = Value::from(driver);
    }
    value.to_string()
}

/// The JSON of the notice a lagging subscriber gets.
pub(crate) fn lagged_json(skipped: u64) -> String {
    json!({ "type": "lagged", "skipped": skipped }).to_string()
}

/// What a subscription yields next.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// An event to send.
    Event(Arc<Event>),
    /// The subscriber fell this many events behind; they are gone.
    Lagged(u64),
    /// The bus is gone (the target is stopping).
    Closed,
}

/// One subscriber's view of its tenant's channel, with the per-subscriber
/// faults applied.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The channel's count of open subscriptions, decremented on drop.
    listening: Arc<AtomicUsize>,
    receiver: broadcast::Receiver<Arc<Event>>,
    kinds: KindSet,
    rng: fastrand::Rng,
    delay: Vec<Latency>,
    drop: f64,
    /// An event held back by `event-delay`, and when it is due. Kept here so
    /// that [`Subscription::next`] can be cancelled (a `select!` branch)
    /// without losing it.
    pending: Option<(Arc<Event>, Instant)>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.listening.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Subscription {
    /// The next event for this subscriber. Cancel-safe.
    pub async fn next(&mut self) -> Delivery {
        loop {
            if let Some((_, due)) = &self.pending {
                tokio::time::sleep_until(*due).await;
                if let Some((event, _)) = self.pending.take() {
                    return Delivery::Event(event);
                }
            }
            let event = match self.receiver.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(skipped)) => return Delivery::Lagged(skipped),
                Err(RecvError::Closed) => return Delivery::Closed,
            };
            if !self.kinds.contains(event.kind) {
                continue;
            }
            if self.drop > 0.0 && self.rng.f64() < self.drop {
                continue;
            }
            if self.delay.is_empty() {
                return Delivery::Event(event);
            }
            let delay: Duration = self
                .delay
                .iter()
                .map(|d| d.sample_with(&mut self.rng))
                .sum();
            // Never earlier than due; a drawn delay shorter than the wait
            // for the previous event is not allowed to overtake it.
            let due = event.published + delay;
            self.pending = Some((event, due));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::fault::Fault;

    fn bus(faults: &[&str], capacity: usize, seed: Option<u64>) -> EventBus {
        let faults: Vec<Fault> = faults.iter().map(|f| Fault::from_str(f).unwrap()).collect();
        EventBus::new(capacity, &FaultPlan::new(&faults), seed)
    }

    fn acme() -> TenantId {
        TenantId::from_name("acme").unwrap()
    }

    fn globex() -> TenantId {
        TenantId::from_name("globex").unwrap()
    }

    fn facts(status: OrderStatus) -> OrderFacts<'static> {
        OrderFacts {
            id: Uuid::nil(),
            status,
            driver_id: None,
        }
    }

    async fn next_event(sub: &mut Subscription) -> Arc<Event> {
        match sub.next().await {
            Delivery::Event(event) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// The events waiting for `sub` right now, by sequence number.
    async fn drain(sub: &mut Subscription) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Ok(Delivery::Event(event)) =
            tokio::time::timeout(Duration::from_millis(20), sub.next()).await
        {
            seqs.push(event.seq);
        }
        seqs
    }

    #[tokio::test]
    async fn events_carry_the_documented_fields_in_sequence() {
        let bus = bus(&[], 16, None);
        let mut sub = bus.subscribe(acme(), KindSet::ALL);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        bus.publish(
            acme(),
            EventKind::OrderStatus,
            OrderFacts {
                driver_id: Some("drv-acme-1"),
                ..facts(OrderStatus::Accepted)
            },
        );
        let first = next_event(&mut sub).await;
        let second = next_event(&mut sub).await;
        let json: Value = serde_json::from_str(first.json.as_str()).unwrap();
        assert_eq!(json["type"], "order.created");
        assert_eq!(json["tenant"], "acme");
        assert_eq!(json["order_id"], Uuid::nil().to_string());
        assert_eq!(json["status"], "created");
        assert_eq!(json["seq"], 1);
        assert!(json.get("driver_id").is_none());
        let at = json["at"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(at).is_ok(), "{at}");
        assert_eq!(at.len(), "2026-01-01T00:00:00.000000Z".len(), "{at}");
        let json: Value = serde_json::from_str(second.json.as_str()).unwrap();
        assert_eq!(json["seq"], 2);
        assert_eq!(json["driver_id"], "drv-acme-1");
        assert!(!first.json.as_str().contains('\n'));
    }

    #[tokio::test]
    async fn a_tenant_hears_only_its_own_events() {
        let bus = bus(&[], 16, None);
        let mut globex_sub = bus.subscribe(globex(), KindSet::ALL);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        assert!(drain(&mut globex_sub).await.is_empty());
    }

    #[tokio::test]
    async fn nobody_listening_builds_nothing() {
        let bus = bus(&[], 16, None);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        assert_eq!(*lock(&bus.channel(acme()).last_seq), 0);
        let sub = bus.subscribe(acme(), KindSet::ALL);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        assert_eq!(*lock(&bus.channel(acme()).last_seq), 1);
        drop(sub);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        assert_eq!(*lock(&bus.channel(acme()).last_seq), 1, "the last one left");
    }

    #[tokio::test]
    async fn types_filter_what_a_subscriber_gets() {
        let bus = bus(&[], 16, None);
        let kinds = KindSet::parse("order.status, dispatch.assigned").unwrap();
        assert!(!kinds.contains(EventKind::OrderCreated));
        let mut sub = bus.subscribe(acme(), kinds);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        bus.publish(acme(), EventKind::OrderStatus, facts(OrderStatus::Accepted));
        assert_eq!(next_event(&mut sub).await.kind, EventKind::OrderStatus);
        assert!(
            KindSet::parse("order.deleted")
                .unwrap_err()
                .contains("order.created")
        );
        assert!(KindSet::parse(" , ").is_err());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_many_it_missed_and_goes_on() {
        let bus = bus(&[], 4, None);
        let mut sub = bus.subscribe(acme(), KindSet::ALL);
        for _ in 0..10 {
            bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        }
        assert!(matches!(sub.next().await, Delivery::Lagged(6)));
        assert_eq!(drain(&mut sub).await, [7, 8, 9, 10]);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        assert_eq!(next_event(&mut sub).await.seq, 11);
    }

    #[tokio::test]
    async fn drops_are_per_subscriber_and_repeat_under_a_seed() {
        let run = |seed| async move {
            let bus = bus(&["event-drop=0.3"], 512, Some(seed));
            let mut first = bus.subscribe(acme(), KindSet::ALL);
            let mut second = bus.subscribe(acme(), KindSet::ALL);
            for _ in 0..300 {
                bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
            }
            (drain(&mut first).await, drain(&mut second).await)
        };
        let (first, second) = run(7).await;
        // 300 draws at 0.3: a seeded outcome, and far from both extremes.
        for got in [&first, &second] {
            assert!((150..=250).contains(&got.len()), "{}", got.len());
            assert!(got.windows(2).all(|w| w[0] < w[1]));
        }
        assert_ne!(first, second, "each subscriber draws its own drops");
        assert_eq!(run(7).await, (first, second));
    }

    #[tokio::test]
    async fn leaks_reach_the_other_tenant_and_repeat_under_a_seed() {
        let run = |seed| async move {
            let bus = bus(&["event-leak=0.2"], 512, Some(seed));
            let mut acme_sub = bus.subscribe(acme(), KindSet::ALL);
            let mut globex_sub = bus.subscribe(globex(), KindSet::ALL);
            for _ in 0..200 {
                bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
            }
            (
                drain(&mut acme_sub).await.len(),
                drain(&mut globex_sub).await,
            )
        };
        let (own, leaked) = run(11).await;
        assert_eq!(
            own, 200,
            "a leak is a copy: the owner still gets everything"
        );
        assert!((15..=70).contains(&leaked.len()), "{}", leaked.len());
        assert_eq!(run(11).await, (own, leaked));
    }

    #[tokio::test]
    async fn delays_hold_each_event_from_its_publication() {
        let bus = bus(&["event-delay=50ms"], 16, None);
        let mut sub = bus.subscribe(acme(), KindSet::ALL);
        let published = Instant::now();
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        next_event(&mut sub).await;
        assert!(Instant::now() - published >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_cancelled_wait_keeps_the_delayed_event() {
        let bus = bus(&["event-delay=50ms"], 16, None);
        let mut sub = bus.subscribe(acme(), KindSet::ALL);
        bus.publish(acme(), EventKind::OrderCreated, facts(OrderStatus::Created));
        assert!(
            tokio::time::timeout(Duration::from_millis(10), sub.next())
                .await
                .is_err()
        );
        assert_eq!(next_event(&mut sub).await.seq, 1);
    }
}
