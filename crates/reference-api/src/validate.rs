//! Request bodies checked by hand, so every 422 names its field.
//!
//! Bodies are parsed as JSON first (a syntax error is a 400), then walked
//! field by field: the answer says which field is wrong (`pickup.lat`,
//! `stops[2].address`) and why, which serde's derived errors do not.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::store::Location;

/// A JSON object body.
pub(crate) type Object = Map<String, Value>;

/// Heaviest order accepted, in kg (a full articulated lorry).
const MAX_WEIGHT_KG: f64 = 40_000.0;
/// Most intermediate stops an order may have.
const MAX_STOPS: usize = 20;
/// Longest address accepted.
const MAX_ADDRESS: usize = 200;
/// Longest order reference accepted.
const MAX_REFERENCE: usize = 64;
/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Parses a body that must be a JSON object; anything else is a 400.
pub(crate) fn json_object(body: &[u8]) -> Result<Object, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            "request body is empty: expected a JSON object",
        ));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(ApiError::malformed(format!(
            "expected a JSON object, found {}",
            kind(&other)
        ))),
        Err(e) => Err(ApiError::malformed(format!("malformed JSON: {e}"))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required, non-empty string field of at most `max` characters.
pub(crate) fn required_str<'a>(
    object: &'a Object,
    field: &'static str,
    max: usize,
) -> Result<&'a str, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(field, format!("{field} is required"))),
        Some(value) => string(value, field.to_string(), max),
    }
}

fn string(value: &Value, path: String, max: usize) -> Result<&str, ApiError> {
    let Value::String(s) = value else {
        return Err(ApiError::invalid(
            path.clone(),
            format!("{path} must be a string, found {}", kind(value)),
        ));
    };
    if s.trim().is_empty() {
        return Err(ApiError::invalid(
            path.clone(),
            format!("{path} must not be empty"),
        ));
    }
    if s.chars().count() > max {
        return Err(ApiError::invalid(
            path.clone(),
            format!("{path} must be at most {max} characters"),
        ));
    }
    Ok(s)
}

fn number(value: &Value, path: &str) -> Result<f64, ApiError> {
    value.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
        ApiError::invalid(
            path.to_string(),
            format!("{path} must be a number, found {}", kind(value)),
        )
    })
}

fn location(value: &Value, path: String) -> Result<Location, ApiError> {
    let Value::Object(object) = value else {
        return Err(ApiError::invalid(
            path.clone(),
            format!(
                "{path} must be an object with address, lat and lon, found {}",
                kind(value)
            ),
        ));
    };
    let field = |name: &str| {
        let sub = format!("{path}.{name}");
        match object.get(name) {
            None | Some(Value::Null) => {
                Err(ApiError::invalid(sub.clone(), format!("{sub} is required")))
            }
            Some(value) => Ok((value, sub)),
        }
    };
    let (address, sub) = field("address")?;
    let address = string(address, sub, MAX_ADDRESS)?.to_string();
    let (lat, sub) = field("lat")?;
    let lat = number(lat, &sub)?;
    if !(-90.0..=90.0).contains(&lat) {
        return Err(ApiError::invalid(
            sub.clone(),
            format!("{sub} must be between -90 and 90, found {lat}"),
        ));
    }
    let (lon, sub) = field("lon")?;
    let lon = number(lon, &sub)?;
    if !(-180.0..=180.0).contains(&lon) {
        return Err(ApiError::invalid(
            sub.clone(),
            format!("{sub} must be between -180 and 180, found {lon}"),
        ));
    }
    Ok(Location { address, lat, lon })
}

fn weight(value: &Value) -> Result<f64, ApiError> {
    let weight = number(value, "weight_kg")?;
    if weight <= 0.0 {
        return Err(ApiError::invalid(
            "weight_kg",
            format!("weight_kg must be greater than 0, found {weight}"),
        ));
    }
    if weight > MAX_WEIGHT_KG {
        return Err(ApiError::invalid(
            "weight_kg",
            format!("weight_kg must be at most {MAX_WEIGHT_KG}, found {weight}"),
        ));
    }
    Ok(weight)
}

fn stops(value: &Value) -> Result<Vec<Location>, ApiError> {
    let Value::Array(items) = value else {
        return Err(ApiError::invalid(
            "stops",
            format!("stops must be an array, found {}", kind(value)),
        ));
    };
    if items.len() > MAX_STOPS {
        return Err(ApiError::invalid(
            "stops",
            format!(
                "stops may hold at most {MAX_STOPS} stops, found {}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| location(item, format!("stops[{i}]")))
        .collect()
}

fn reference(value: &Value) -> Result<String, ApiError> {
    string(value, "reference".into(), MAX_REFERENCE).map(str::to_string)
}

/// The body of `POST /orders`, validated. Unknown fields are ignored, as most
/// JSON APIs do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewOrder {
    pub reference: Option<String>,
    pub pickup: Location,
    pub dropoff: Location,
    pub stops: Vec<Location>,
    pub weight_kg: f64,
}

impl NewOrder {
    /// Validates a creation body.
    pub fn from_json(object: &Object) -> Result<Self, ApiError> {
        let required = |field: &'static str| match object.get(field) {
            None | Some(Value::Null) => {
                Err(ApiError::invalid(field, format!("{field} is required")))
            }
            Some(value) => Ok(value),
        };
        let reference = match object.get("reference") {
            None | Some(Value::Null) => None,
            Some(value) => Some(reference(value)?),
        };
        let pickup = location(required("pickup")?, "pickup".into())?;
        let dropoff = location(required("dropoff")?, "dropoff".into())?;
        let stops = match object.get("stops") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => stops(value)?,
        };
        let weight_kg = weight(required("weight_kg")?)?;
        Ok(Self {
            reference,
            pickup,
            dropoff,
            stops,
            weight_kg,
        })
    }
}

/// The body of `PATCH /orders/{id}`, validated. Unknown fields are refused:
/// a patch that silently changes nothing hides a typo.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OrderPatch {
    /// `Some(None)` clears the reference.
    pub reference: Option<Option<String>>,
    pub pickup: Option<Location>,
    pub dropoff: Option<Location>,
    pub stops: Option<Vec<Location>>,
    pub weight_kg: Option<f64>,
}

impl OrderPatch {
    /// Validates a patch body.
    pub fn from_json(object: &Object) -> Result<Self, ApiError> {
        let mut patch = OrderPatch::default();
        for (field, value) in object {
            match field.as_str() {
                "reference" => {
                    patch.reference = Some(match value {
                        Value::Null => None,
                        value => Some(reference(value)?),
                    })
                }
                "pickup" => patch.pickup = Some(location(value, "pickup".into())?),
                "dropoff" => patch.dropoff = Some(location(value, "dropoff".into())?),
                "stops" => patch.stops = Some(stops(value)?),
                "weight_kg" => patch.weight_kg = Some(weight(value)?),
                "status" => {
                    return Err(ApiError::invalid(
                        "status",
                        "status cannot be patched: use /accept, /route and /deliver",
                    ));
                }
                "id" | "tenant" | "created_by" | "driver_id" | "route" | "idempotency_key"
                | "created_at" | "updated_at" => {
                    return Err(ApiError::invalid(
                        field.clone(),
                        format!("{field} cannot be changed"),
                    ));
                }
                _ => {
                    return Err(ApiError::invalid(
                        field.clone(),
                        format!(
                            "unknown field {field}: expected reference, pickup, dropoff, stops or weight_kg"
                        ),
                    ));
                }
            }
        }
        if patch == OrderPatch::default() {
            return Err(ApiError::invalid(
                "body",
                "nothing to change: expected reference, pickup, dropoff, stops or weight_kg",
            ));
        }
        Ok(patch)
    }

    /// Whether the patch changes what the route or the charge depends on.
    pub fn changes_plan(&self) -> bool {
        self.pickup.is_some()
            || self.dropoff.is_some()
            || self.stops.is_some()
            || self.weight_kg.is_some()
    }
}

/// The request's `Idempotency-Key`, if it has a usable one.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::invalid(
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid());
    }
    Ok(Some(key.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Object {
        match value {
            Value::Object(o) => o,
            _ => panic!("not an object"),
        }
    }

    fn valid_order() -> Value {
        json!({
            "reference": "PO-1",
            "pickup": {"address": "Am Sandtorkai 1", "lat": 53.5436, "lon": 9.9885},
            "dropoff": {"address": "Mönckebergstraße 7", "lat": 53.5503, "lon": 10.0006},
            "stops": [],
            "weight_kg": 12
        })
    }

    fn field_of(result: Result<NewOrder, ApiError>) -> String {
        result.unwrap_err().field.unwrap().into_owned()
    }

    #[test]
    fn a_valid_order_parses() {
        let order = NewOrder::from_json(&object(valid_order())).unwrap();
        assert_eq!(order.reference.as_deref(), Some("PO-1"));
        assert_eq!(order.weight_kg, 12.0);
        assert!(order.stops.is_empty());
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases = [
            ("/weight_kg", json!(0), "weight_kg"),
            ("/weight_kg", json!("12"), "weight_kg"),
            ("/weight_kg", json!(40_001), "weight_kg"),
            ("/pickup/lat", json!(91), "pickup.lat"),
            ("/dropoff/lon", json!(-181.5), "dropoff.lon"),
            ("/pickup/address", json!(" "), "pickup.address"),
            ("/pickup", json!("Hamburg"), "pickup"),
            ("/reference", json!(""), "reference"),
            (
                "/stops",
                json!([{"address": "x", "lat": 1, "lon": "e"}]),
                "stops[0].lon",
            ),
        ];
        for (pointer, value, field) in cases {
            let mut body = valid_order();
            *body
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("{pointer}")) = value;
            assert_eq!(
                field_of(NewOrder::from_json(&object(body))),
                field,
                "{pointer}"
            );
        }
    }

    #[test]
    fn missing_fields_are_named() {
        for field in ["pickup", "dropoff", "weight_kg"] {
            let mut body = object(valid_order());
            body.remove(field);
            assert_eq!(field_of(NewOrder::from_json(&body)), field);
        }
    }

    #[test]
    fn malformed_bodies_are_400() {
        for body in [&b""[..], b"{", b"[1]", b"\"x\"", b"  "] {
            assert_eq!(json_object(body).unwrap_err().status, 400, "{body:?}");
        }
    }

    #[test]
    fn patches_refuse_status_and_unknown_fields() {
        let err = OrderPatch::from_json(&object(json!({"status": "delivered"}))).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("status"));
        let err = OrderPatch::from_json(&object(json!({"weight": 3}))).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("weight"));
        assert!(OrderPatch::from_json(&object(json!({}))).is_err());
        let patch = OrderPatch::from_json(&object(json!({"reference": null}))).unwrap();
        assert_eq!(patch.reference, Some(None));
        assert!(!patch.changes_plan());
    }

    #[test]
    fn idempotency_keys_must_be_visible_ascii() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key(&headers).unwrap(), None);
        headers.insert("idempotency-key", "order-42".parse().unwrap());
        assert_eq!(
            idempotency_key(&headers).unwrap().as_deref(),
            Some("order-42")
        );
        headers.insert("idempotency-key", "two words".parse().unwrap());
        assert!(idempotency_key(&headers).is_err());
    }
}
