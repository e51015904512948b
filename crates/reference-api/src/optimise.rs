//! Route optimisation for `POST /orders/{id}/route`: a small but real one.
//!
//! The route starts at the pickup and ends at the dropoff; the intermediate
//! stops are ordered by nearest neighbour from the pickup, then improved by
//! 2-opt (reverse a segment while that shortens the tour). Distances are
//! great-circle (haversine). Orders have at most a few dozen stops, so the
//! quadratic passes cost microseconds.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::store::Location;

/// Mean Earth radius (IUGG), in km.
const EARTH_RADIUS_KM: f64 = 6371.0088;
/// Average speed assumed for urban delivery driving.
const AVERAGE_SPEED_KMH: f64 = 40.0;
/// Loading time at the pickup.
const PICKUP_MIN: f64 = 10.0;
/// Unloading time at each drop (intermediate stops and the dropoff).
const DROP_MIN: f64 = 5.0;

/// An optimised route. Deserialised when read back from PostgreSQL, so its
/// names are `Cow`s rather than `&'static str`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Route {
    /// Pickup first, dropoff last, intermediate stops in optimised order.
    pub stops: Vec<RouteStop>,
    /// Length of the optimised route.
    pub distance_km: f64,
    /// Driving plus loading and unloading time.
    pub duration_min: f64,
    /// Length of the route with the stops in the order they were given.
    pub unoptimised_km: f64,
    /// How the stops were ordered.
    pub algorithm: Cow<'static, str>,
}

/// One stop of a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RouteStop {
    /// Position in the route, from 1.
    pub seq: usize,
    /// `pickup`, `stop` or `dropoff`.
    pub kind: Cow<'static, str>,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    /// Distance from the previous stop.
    pub leg_km: f64,
}

/// Great-circle distance between two points given in degrees.
pub(crate) fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Plans the route pickup → stops (optimised order) → dropoff.
pub(crate) fn plan_route(pickup: &Location, stops: &[Location], dropoff: &Location) -> Route {
    let places: Vec<&Location> = std::iter::once(pickup)
        .chain(stops)
        .chain([dropoff])
        .collect();
    let points: Vec<(f64, f64)> = places.iter().map(|l| (l.lat, l.lon)).collect();
    let given: Vec<usize> = (0..points.len()).collect();
    let mut order = nearest_neighbour(&points);
    two_opt(&points, &mut order);
    let last = points.len() - 1;
    let mut previous = None;
    let route_stops: Vec<RouteStop> = order
        .iter()
        .enumerate()
        .map(|(seq, &i)| {
            let leg = previous.map_or(0.0, |p| haversine_km(points[p], points[i]));
            previous = Some(i);
            RouteStop {
                seq: seq + 1,
                kind: Cow::Borrowed(match i {
                    0 => "pickup",
                    i if i == last => "dropoff",
                    _ => "stop",
                }),
                address: places[i].address.clone(),
                lat: places[i].lat,
                lon: places[i].lon,
                leg_km: round(leg, 3),
            }
        })
        .collect();
    let distance = tour_km(&points, &order);
    let drops = (points.len() - 1) as f64;
    Route {
        stops: route_stops,
        distance_km: round(distance, 3),
        duration_min: round(
            distance / AVERAGE_SPEED_KMH * 60.0 + PICKUP_MIN + drops * DROP_MIN,
            1,
        ),
        unoptimised_km: round(tour_km(&points, &given), 3),
        algorithm: Cow::Borrowed("nearest-neighbour+2-opt"),
    }
}

/// Visits every point from the first, always going to the closest unvisited
/// intermediate point; the last point stays last.
fn nearest_neighbour(points: &[(f64, f64)]) -> Vec<usize> {
    let last = points.len() - 1;
    let mut unvisited: Vec<usize> = (1..last).collect();
    let mut order = Vec::with_capacity(points.len());
    order.push(0);
    let mut here = 0;
    while !unvisited.is_empty() {
        let (pos, _) = unvisited
            .iter()
            .enumerate()
            .map(|(pos, &i)| (pos, haversine_km(points[here], points[i])))
            .fold(
                (0, f64::INFINITY),
                |best, cur| if cur.1 < best.1 { cur } else { best },
            );
        here = unvisited.swap_remove(pos);
        order.push(here);
    }
    if last > 0 {
        order.push(last);
    }
    order
}

/// Reverses segments of the tour while that shortens it; the endpoints stay.
fn two_opt(points: &[(f64, f64)], order: &mut [usize]) {
    let n = order.len();
    if n < 4 {
        return;
    }
    let d = |a: usize, b: usize| haversine_km(points[a], points[b]);
    // Each accepted move shortens the tour, so this terminates; the bound only
    // guards against floating-point ping-pong.
    for _ in 0..n * n {
        let mut improved = false;
        for i in 1..n - 2 {
            for k in i + 1..n - 1 {
                let before = d(order[i - 1], order[i]) + d(order[k], order[k + 1]);
                let after = d(order[i - 1], order[k]) + d(order[i], order[k + 1]);
                if after + 1e-9 < before {
                    order[i..=k].reverse();
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

fn tour_km(points: &[(f64, f64)], order: &[usize]) -> f64 {
    order
        .windows(2)
        .map(|w| haversine_km(points[w[0]], points[w[1]]))
        .sum()
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(address: &str, lat: f64, lon: f64) -> Location {
        Location {
            address: address.into(),
            lat,
            lon,
        }
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // Hamburg Hbf to Berlin Hbf is about 255 km as the crow flies.
        let km = haversine_km((53.5530, 10.0069), (52.5251, 13.3694));
        assert!((250.0..260.0).contains(&km), "{km}");
        assert_eq!(haversine_km((1.0, 2.0), (1.0, 2.0)), 0.0);
    }

    #[test]
    fn stops_given_out_of_order_are_reordered() {
        // Points on a line of longitude; given as 0, 3, 1, 2, end.
        let pickup = at("p", 53.0, 10.0);
        let stops = [
            at("c", 53.3, 10.0),
            at("a", 53.1, 10.0),
            at("b", 53.2, 10.0),
        ];
        let dropoff = at("d", 53.4, 10.0);
        let route = plan_route(&pickup, &stops, &dropoff);
        let names: Vec<&str> = route.stops.iter().map(|s| s.address.as_str()).collect();
        assert_eq!(names, ["p", "a", "b", "c", "d"]);
        assert!(route.distance_km < route.unoptimised_km);
        assert_eq!(route.stops[0].kind, "pickup");
        assert_eq!(route.stops[4].kind, "dropoff");
        assert_eq!(route.stops[0].leg_km, 0.0);
    }

    #[test]
    fn two_opt_fixes_a_crossing_nearest_neighbour_leaves() {
        let points = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.0, 2.0)];
        let mut crossing = vec![0, 3, 2, 1, 4];
        let before = tour_km(&points, &crossing);
        two_opt(&points, &mut crossing);
        assert!(tour_km(&points, &crossing) < before);
        assert_eq!((crossing[0], crossing[4]), (0, 4));
    }

    #[test]
    fn a_direct_order_is_two_stops() {
        let route = plan_route(&at("p", 53.54, 9.98), &[], &at("d", 53.55, 10.0));
        assert_eq!(route.stops.len(), 2);
        assert_eq!(route.distance_km, route.unoptimised_km);
        assert!(route.duration_min >= PICKUP_MIN + DROP_MIN);
    }
}
