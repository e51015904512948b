//! Who may call the target: seeded users, login, HS256 tokens, the caller.
//!
//! Tokens are hand-rolled HS256 JWTs (header, claims and an HMAC-SHA256 over
//! both, base64url without padding), so a scenario can decode them like a real
//! platform's. Verification rejects any algorithm but HS256 (no `none`),
//! compares the signature in constant time and checks `exp`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use super::error::ApiError;
use super::server::AppState;
use super::store::TenantId;
use super::validate;

/// The password of every seeded user.
pub const SEED_PASSWORD: &str = "convoy-demo";

/// What a user may do; carried in the token's `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the tenant, including editing and deleting orders.
    Admin,
    /// Creates orders, plans routes, asks for dispatch recommendations.
    Dispatcher,
    /// Accepts, routes and delivers orders.
    Driver,
}

impl Role {
    /// The role's name as used in tokens and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Driver => "driver",
        }
    }
}

/// A user the target is seeded with; all share [`SEED_PASSWORD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedUser {
    /// Login email.
    pub email: &'static str,
    /// Login password.
    pub password: &'static str,
    /// Tenant the user belongs to.
    pub tenant: &'static str,
    /// The user's role.
    pub role: Role,
    /// User id: the token's `sub`, and a driver's id in dispatch routes.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
}

const fn seed(
    email: &'static str,
    tenant: &'static str,
    role: Role,
    id: &'static str,
    name: &'static str,
) -> SeedUser {
    SeedUser {
        email,
        password: SEED_PASSWORD,
        tenant,
        role,
        id,
        name,
    }
}

/// Every seeded user: per tenant an admin, a dispatcher and two drivers.
pub const SEED_USERS: &[SeedUser] = &[
    seed(
        "admin@acme.test",
        "acme",
        Role::Admin,
        "usr-acme-admin",
        "Ada Admin",
    ),
    seed(
        "dispatcher@acme.test",
        "acme",
        Role::Dispatcher,
        "usr-acme-dispatcher",
        "Dieter Dispatch",
    ),
    seed(
        "driver@acme.test",
        "acme",
        Role::Driver,
        "drv-acme-1",
        "Dana Driver",
    ),
    seed(
        "driver2@acme.test",
        "acme",
        Role::Driver,
        "drv-acme-2",
        "Deniz Driver",
    ),
    seed(
        "admin@globex.test",
        "globex",
        Role::Admin,
        "usr-globex-admin",
        "Greta Admin",
    ),
    seed(
        "dispatcher@globex.test",
        "globex",
        Role::Dispatcher,
        "usr-globex-dispatcher",
        "Gijs Dispatch",
    ),
    seed(
        "driver@globex.test",
        "globex",
        Role::Driver,
        "drv-globex-1",
        "Gina Driver",
    ),
    seed(
        "driver2@globex.test",
        "globex",
        Role::Driver,
        "drv-globex-2",
        "Govert Driver",
    ),
];

/// The claims of an issued token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's tenant.
    pub tenant: String,
    /// The user's role.
    pub role: Role,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: u64,
    /// Expiry, in seconds since the Unix epoch; the token is valid while
    /// `now < exp`.
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, or parts that are not the expected JSON.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm other than HS256.
    #[error("unsupported token algorithm {0:?}: expected HS256")]
    UnsupportedAlgorithm(String),
    /// The signature does not match the secret.
    #[error("token signature does not match")]
    BadSignature,
    /// The token's `exp` has passed.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's expiry.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
}

type HmacSha256 = Hmac<Sha256>;

const JWT_HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// Signs `claims` into an HS256 JWT.
pub fn sign_token(secret: &[u8], claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialise to JSON");
    let mut token = URL_SAFE_NO_PAD.encode(JWT_HEADER);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let mut mac = mac(secret);
    mac.update(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
    token
}

/// What verification lets through that it should not: the `auth-accept-*`
/// faults. The default checks everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lax {
    /// Tokens whose `exp` has passed are accepted.
    pub expired: bool,
    /// Tokens under `alg: none` are accepted without a signature.
    pub alg_none: bool,
    /// HS256 signatures are not checked.
    pub foreign_key: bool,
}

/// Verifies an HS256 JWT signed with `secret` and returns its claims if it
/// is still valid at `now_unix` (seconds since the Unix epoch).
pub fn verify_token(secret: &[u8], token: &str, now_unix: u64) -> Result<Claims, TokenError> {
    verify_token_lax(secret, token, now_unix, Lax::default())
}

/// As [`verify_token`], letting through what `lax` says.
pub fn verify_token_lax(
    secret: &[u8],
    token: &str,
    now_unix: u64,
    lax: Lax,
) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|_| TokenError::Malformed("header is not a JWT header"))?;
    let unsigned = lax.alg_none && header.alg.eq_ignore_ascii_case("none");
    if header.alg != "HS256" && !unsigned {
        return Err(TokenError::UnsupportedAlgorithm(header.alg));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    if !unsigned && !lax.foreign_key {
        let signed_len = token.len() - signature_len(token);
        let mut mac = mac(secret);
        mac.update(&token.as_bytes()[..signed_len]);
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed("claims are not base64url"))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| TokenError::Malformed("claims lack sub, tenant, role or exp"))?;
    if now_unix >= claims.exp && !lax.expired {
        return Err(TokenError::Expired {
            exp: claims.exp,
            now: now_unix,
        });
    }
    Ok(claims)
}

/// Length of the signature part plus its leading dot.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The authenticated user of a request, from its bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub user_id: String,
    pub tenant: TenantId,
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], action: &'static str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role {} may not {action}",
                self.role.as_str()
            )))
        }
    }
}

impl Caller {
    /// The caller a bearer token names, checked against the target's secret
    /// (and its auth faults).
    pub fn from_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
        let claims = verify_token_lax(
            state.jwt_secret.as_bytes(),
            token,
            unix_now(),
            state.faults.auth_lax,
        )
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        let tenant = TenantId::from_name(&claims.tenant)
            .ok_or_else(|| ApiError::unauthorized("token names an unknown tenant"))?;
        Ok(Caller {
            user_id: claims.sub,
            tenant,
            role: claims.role,
        })
    }

    /// The caller of a request with an `Authorization: Bearer` header.
    pub fn from_header(state: &AppState, header: &HeaderValue) -> Result<Caller, ApiError> {
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| ApiError::unauthorized("Authorization header is not a Bearer token"))?;
        Caller::from_token(state, token)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
        Caller::from_header(state, header)
    }
}

/// `POST /api/auth/login`: trades a seeded email and password for a token.
pub(crate) async fn login(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let object = validate::json_object(&body)?;
    let email = validate::required_str(&object, "email", 254)?;
    let password = validate::required_str(&object, "password", 256)?;
    let user = SEED_USERS
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(email) && u.password == password)
        .ok_or_else(|| ApiError::unauthorized("invalid email or password"))?;
    let now = unix_now();
    let ttl = state.token_ttl.as_secs();
    let claims = Claims {
        sub: user.id.to_string(),
        tenant: user.tenant.to_string(),
        role: user.role,
        iat: now,
        exp: now.saturating_add(ttl),
    };
    let token = sign_token(state.jwt_secret.as_bytes(), &claims);
    Ok(Json(json!({
        "token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "user": {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "tenant": user.tenant,
            "role": user.role,
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "drv-acme-1".into(),
            tenant: "acme".into(),
            role: Role::Driver,
            iat: 1_000,
            exp,
        }
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let token = sign_token(b"secret", &claims(2_000));
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(verify_token(b"secret", &token, 1_500), Ok(claims(2_000)));
    }

    #[test]
    fn header_is_the_standard_hs256_header() {
        let token = sign_token(b"secret", &claims(2_000));
        let header = token.split('.').next().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(header).unwrap(), JWT_HEADER);
    }

    #[test]
    fn wrong_secret_is_a_bad_signature() {
        let token = sign_token(b"secret", &claims(2_000));
        assert_eq!(
            verify_token(b"other", &token, 1_500),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_claims_are_a_bad_signature() {
        let token = sign_token(b"secret", &claims(2_000));
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                role: Role::Admin,
                ..claims(2_000)
            })
            .unwrap(),
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged;
        assert_eq!(
            verify_token(b"secret", &parts.join("."), 1_500),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let token = sign_token(b"secret", &claims(2_000));
        assert_eq!(
            verify_token(b"secret", &token, 2_000),
            Err(TokenError::Expired {
                exp: 2_000,
                now: 2_000
            })
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(2_000)).unwrap());
        let token = format!("{header}.{payload}.");
        assert_eq!(
            verify_token(b"secret", &token, 1_500),
            Err(TokenError::UnsupportedAlgorithm("none".into()))
        );
    }

    #[test]
    fn each_auth_fault_lets_through_only_its_own_flaw() {
        let expired = sign_token(b"secret", &claims(2_000));
        let foreign = sign_token(b"other", &claims(2_000));
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(2_000)).unwrap());
        let none = format!("{header}.{payload}.");
        let verify = |token: &str, now: u64, lax: Lax| verify_token_lax(b"secret", token, now, lax);
        let only = |f: fn(&mut Lax)| {
            let mut l = Lax::default();
            f(&mut l);
            l
        };
        let expired_ok = only(|l| l.expired = true);
        let none_ok = only(|l| l.alg_none = true);
        let foreign_ok = only(|l| l.foreign_key = true);
        assert!(verify(&expired, 3_000, expired_ok).is_ok());
        assert!(verify(&expired, 3_000, none_ok).is_err());
        assert!(verify(&expired, 3_000, foreign_ok).is_err());
        assert!(verify(&none, 1_500, none_ok).is_ok());
        assert!(verify(&none, 1_500, foreign_ok).is_err());
        assert!(verify(&none, 1_500, expired_ok).is_err());
        assert!(verify(&foreign, 1_500, foreign_ok).is_ok());
        assert!(verify(&foreign, 1_500, none_ok).is_err());
        assert!(verify(&foreign, 1_500, expired_ok).is_err());
        // A lax check still refuses what it was not told to let through.
        assert!(verify(&foreign, 3_000, foreign_ok).is_err());
        assert!(
            verify(
                "garbage",
                0,
                Lax {
                    expired: true,
                    alg_none: true,
                    foreign_key: true
                }
            )
            .is_err()
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for token in ["", "abc", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(
                matches!(
                    verify_token(b"secret", token, 0),
                    Err(TokenError::Malformed(_))
                ),
                "{token:?}"
            );
        }
    }

    #[test]
    fn seeded_users_have_unique_ids_and_emails() {
        for (i, a) in SEED_USERS.iter().enumerate() {
            for b in &SEED_USERS[i + 1..] {
                assert_ne!(a.id, b.id);
                assert_ne!(a.email, b.email);
            }
        }
    }
}
