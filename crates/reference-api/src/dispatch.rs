//! "AI" dispatch and driver coaching, as the freight platform we imitate
//! offers them (`POST /api/dispatch/assign`, `GET /api/drivers/{id}/coaching`).
//!
//! Both are deterministic heuristics over seeded driver profiles plus live
//! order data, so a scenario can assert on the answer: the same load and the
//! same state always give the same driver and the same tips. These routes
//! answer in camelCase, like the platform they imitate. A recommendation for
//! a load that is an order of the tenant is published as `dispatch.assigned`
//! on the tenant's event stream.

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde_json::{Value, json};

use super::SEED_USERS;
use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::{EventKind, OrderFacts};
use super::optimise::haversine_km;
use super::orders::order_id;
use super::server::AppState;
use super::store::{OrderStatus, TenantId};
use super::validate;

/// What dispatch and coaching know about a seeded driver.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DriverProfile {
    id: &'static str,
    /// Where the driver's shift starts.
    depot: (f64, f64),
    capacity_kg: f64,
    /// Customer rating, 1 to 5.
    rating: f64,
    /// Share of deliveries on time over the last 30 days.
    on_time_rate: f64,
    harsh_braking_per_100km: f64,
    speeding_per_100km: f64,
    idle_min_per_shift: f64,
    fuel_l_per_100km: f64,
    hours_of_service_violations: u32,
}

const PROFILES: &[DriverProfile] = &[
    DriverProfile {
        id: "drv-acme-1",
        depot: (53.5436, 9.9885),
        capacity_kg: 1_200.0,
        rating: 4.8,
        on_time_rate: 0.97,
        harsh_braking_per_100km: 0.8,
        speeding_per_100km: 0.4,
        idle_min_per_shift: 22.0,
        fuel_l_per_100km: 9.1,
        hours_of_service_violations: 0,
    },
    DriverProfile {
        id: "drv-acme-2",
        depot: (53.6304, 10.0065),
        capacity_kg: 26_000.0,
        rating: 4.3,
        on_time_rate: 0.88,
        harsh_braking_per_100km: 3.1,
        speeding_per_100km: 2.2,
        idle_min_per_shift: 48.0,
        fuel_l_per_100km: 31.5,
        hours_of_service_violations: 2,
    },
    DriverProfile {
        id: "drv-globex-1",
        depot: (51.9244, 4.4777),
        capacity_kg: 3_500.0,
        rating: 4.6,
        on_time_rate: 0.93,
        harsh_braking_per_100km: 1.6,
        speeding_per_100km: 0.9,
        idle_min_per_shift: 35.0,
        fuel_l_per_100km: 12.4,
        hours_of_service_violations: 0,
    },
    DriverProfile {
        id: "drv-globex-2",
        depot: (51.8850, 4.2867),
        capacity_kg: 40_000.0,
        rating: 4.9,
        on_time_rate: 0.99,
        harsh_braking_per_100km: 0.5,
        speeding_per_100km: 0.2,
        idle_min_per_shift: 15.0,
        fuel_l_per_100km: 29.8,
        hours_of_service_violations: 0,
    },
];

fn profile(id: &str) -> Option<&'static DriverProfile> {
    PROFILES.iter().find(|p| p.id == id)
}

/// The drivers of a tenant, in a fixed order.
fn drivers_of(tenant: TenantId) -> impl Iterator<Item = &'static DriverProfile> {
    SEED_USERS
        .iter()
        .filter(move |u| u.tenant == tenant.name() && u.role == Role::Driver)
        .filter_map(|u| profile(u.id))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A driver's score for a load, with what it was made of.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    driver: &'static DriverProfile,
    score: f64,
    distance_km: Option<f64>,
    active_loads: usize,
}

/// `POST /api/dispatch/assign {"loadId"}` (admin, dispatcher): recommends a
/// driver of the caller's tenant. A `loadId` that is an order id (a UUID)
/// must name an order of the caller's tenant, matched on distance to its
/// pickup and on its weight (a delivered one on workload and rating alone);
/// any other order id is 404, as for every route, so another tenant's order
/// is neither used nor told apart from one that does not exist. A load id
/// that is not an order id (a load of another system) is matched on workload
/// and rating alone.
pub(crate) async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(
        &[Role::Admin, Role::Dispatcher],
        "request dispatch recommendations",
    )?;
    let object = validate::json_object(&body)?;
    let load_id = validate::required_str(&object, "loadId", 128)?;
    let drivers: Vec<_> = drivers_of(caller.tenant).collect();
    let mut order_status = None;
    let load = match order_id(load_id) {
        Ok(id) => {
            let order = state
                .storage
                .order(caller.tenant, id)
                .await?
                .ok_or_else(|| ApiError::not_found("order"))?;
            order_status = Some((id, order.status));
            (order.status != OrderStatus::Delivered)
                .then_some(((order.pickup.lat, order.pickup.lon), order.weight_kg))
        }
        Err(_) => None,
    };
    let ids: Vec<&str> = drivers.iter().map(|d| d.id).collect();
    let active = state
        .storage
        .driver_stats(caller.tenant, &ids)
        .await?
        .into_iter()
        .map(|stats| stats.active);
    let mut candidates: Vec<Candidate> = drivers
        .iter()
        .zip(active)
        .filter(|(d, _)| load.is_none_or(|(_, weight)| d.capacity_kg >= weight))
        .map(|(&driver, active_loads)| {
            let distance_km = load.map(|(pickup, _)| haversine_km(driver.depot, pickup));
            // Closeness counts most when the pickup is known; otherwise the
            // weights fall to workload and quality.
            let proximity = distance_km.map(|km| 1.0 / (1.0 + km / 10.0));
            let workload = 1.0 / (1.0 + active_loads as f64);
            let quality = (driver.rating / 5.0) * driver.on_time_rate;
            let score = match proximity {
                Some(p) => 0.45 * p + 0.30 * workload + 0.25 * quality,
                None => 0.55 * workload + 0.45 * quality,
            };
            Candidate {
                driver,
                score: round3(score),
                distance_km,
                active_loads,
            }
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.driver.id.cmp(b.driver.id))
    });
    let Some(best) = candidates.first().copied() else {
        let weight = load.map_or(0.0, |(_, w)| w);
        return Err(ApiError::conflict(
            "no_capable_driver",
            format!("no driver of this tenant can carry {weight} kg"),
        ));
    };
    let reason = match (best.distance_km, load) {
        (Some(km), Some((_, weight))) => format!(
            "closest capable driver: {:.1} km from pickup, capacity {} kg for {weight} kg, {} active loads, rating {}",
            km, best.driver.capacity_kg, best.active_loads, best.driver.rating
        ),
        _ => format!(
            "load not found in this tenant, so matched on workload and quality: {} active loads, rating {}, {:.0}% on time",
            best.active_loads,
            best.driver.rating,
            best.driver.on_time_rate * 100.0
        ),
    };
    if let Some((id, status)) = order_status {
        state.events.publish(
            caller.tenant,
            EventKind::DispatchAssigned,
            OrderFacts {
                id,
                status,
                driver_id: Some(best.driver.id),
            },
        );
    }
    let alternatives: Vec<Value> = candidates[1..]
        .iter()
        .map(|c| json!({ "driverId": c.driver.id, "score": c.score }))
        .collect();
    Ok(Json(json!({
        "loadId": load_id,
        "driverId": best.driver.id,
        "reason": reason,
        "score": best.score,
        "distanceKm": best.distance_km.map(round3),
        "alternatives": alternatives,
    })))
}

/// One coaching tip.
fn tip(category: &str, severity: &str, message: String) -> Value {
    json!({ "category": category, "severity": severity, "message": message })
}

/// Tips from a driver's metrics, most severe first.
fn coaching_tips(p: &DriverProfile) -> Vec<Value> {
    let mut tips = Vec::new();
    if p.hours_of_service_violations > 0 {
        tips.push(tip(
            "compliance",
            "high",
            format!(
                "{} hours-of-service violations in 30 days: plan breaks before the 4.5 h driving limit",
                p.hours_of_service_violations
            ),
        ));
    }
    if p.harsh_braking_per_100km > 2.0 {
        tips.push(tip(
            "safety",
            "high",
            format!(
                "{:.1} harsh-braking events per 100 km (fleet target < 2.0): keep a 3-second following distance",
                p.harsh_braking_per_100km
            ),
        ));
    }
    if p.speeding_per_100km > 1.0 {
        tips.push(tip(
            "safety",
            "medium",
            format!(
                "{:.1} speeding events per 100 km: use cruise control on motorways",
                p.speeding_per_100km
            ),
        ));
    }
    if p.on_time_rate < 0.95 {
        tips.push(tip(
            "punctuality",
            "medium",
            format!(
                "{:.0}% of deliveries on time (target 95%): start routes with the optimised stop order",
                p.on_time_rate * 100.0
            ),
        ));
    }
    if p.idle_min_per_shift > 30.0 {
        tips.push(tip(
            "efficiency",
            "low",
            format!(
                "{:.0} idle minutes per shift: switch the engine off during waits over 2 minutes",
                p.idle_min_per_shift
            ),
        ));
    }
    if tips.is_empty() {
        tips.push(tip(
            "recognition",
            "info",
            "all metrics within fleet targets: keep it up".to_string(),
        ));
    }
    tips
}

/// `GET /api/drivers/{id}/coaching` (admin, dispatcher, the driver): coaching
/// tips for a driver of the caller's tenant.
pub(crate) async fn coaching(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = SEED_USERS
        .iter()
        .find(|u| u.id == id && u.role == Role::Driver && u.tenant == caller.tenant.name())
        .ok_or_else(|| ApiError::not_found("driver"))?;
    if caller.role == Role::Driver && caller.user_id != user.id {
        return Err(ApiError::forbidden(
            "drivers may only read their own coaching",
        ));
    }
    let profile = profile(user.id).ok_or_else(|| ApiError::not_found("driver"))?;
    let delivered = state
        .storage
        .driver_stats(caller.tenant, &[user.id])
        .await?
        .first()
        .map_or(0, |stats| stats.delivered);
    let safety_score = (100.0
        - 8.0 * profile.harsh_braking_per_100km
        - 6.0 * profile.speeding_per_100km
        - 10.0 * f64::from(profile.hours_of_service_violations))
    .clamp(0.0, 100.0)
    .round();
    Ok(Json(json!({
        "driverId": user.id,
        "name": user.name,
        "tenant": user.tenant,
        "period": "last_30_days",
        "safetyScore": safety_score,
        "deliveriesCompleted": delivered,
        "metrics": {
            "rating": profile.rating,
            "onTimeRate": profile.on_time_rate,
            "harshBrakingPer100km": profile.harsh_braking_per_100km,
            "speedingPer100km": profile.speeding_per_100km,
            "idleMinutesPerShift": profile.idle_min_per_shift,
            "fuelLitresPer100km": profile.fuel_l_per_100km,
            "hoursOfServiceViolations": profile.hours_of_service_violations,
        },
        "tips": coaching_tips(profile),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_driver_has_a_profile() {
        for user in SEED_USERS.iter().filter(|u| u.role == Role::Driver) {
            assert!(profile(user.id).is_some(), "{}", user.id);
        }
    }

    #[test]
    fn drivers_belong_to_their_tenant() {
        let acme = TenantId::from_name("acme").unwrap();
        let ids: Vec<_> = drivers_of(acme).map(|d| d.id).collect();
        assert_eq!(ids, ["drv-acme-1", "drv-acme-2"]);
    }

    #[test]
    fn weaker_drivers_get_more_tips() {
        let careful = coaching_tips(profile("drv-globex-2").unwrap());
        let rushed = coaching_tips(profile("drv-acme-2").unwrap());
        assert_eq!(careful.len(), 1);
        assert_eq!(careful[0]["category"], "recognition");
        assert!(rushed.len() >= 4);
        assert_eq!(rushed[0]["severity"], "high");
    }
}
