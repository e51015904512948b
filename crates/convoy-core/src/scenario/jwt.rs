//! Forged JSON Web Tokens for the auth probes: from a real token (the one an
//! identity logged in with), the same claims with one thing wrong: its
//! expiry passed, its signature made by another key, or its algorithm
//! `none`. Pure functions on text; the auth probe step (`steps/auth_probe.rs`)
//! decides what to send.
//!
//! Only the HMAC algorithms (`HS256`, `HS384`, `HS512`) can be signed here:
//! an expired token is signed with the `key` the scenario gives (a test
//! environment's secret), and a foreign-key token of an HMAC algorithm with
//! a fresh random key. A token of another algorithm (`RS256`, `ES256`, ...)
//! gets, as its foreign signature, random bytes of its signature's length:
//! a signature no key of the target's made.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};

/// A token split into its decoded header and claims and its signature.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    /// The header (`alg`, `typ`, ...).
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// The signature's bytes, decoded.
    pub signature: Vec<u8>,
    /// The first two parts as they were written (what was signed).
    signed: String,
}

/// Why a token cannot be forged from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not `header.claims.signature` in base64url with JSON objects.
    #[error("the token is not a JWT (three base64url parts, header and claims JSON objects)")]
    NotJwt,
    /// The algorithm is not one convoy can sign with a key.
    #[error("the token's algorithm is {0:?}; only HS256, HS384 and HS512 can be signed with `key`")]
    CannotSign(String),
}

impl Jwt {
    /// Reads `token` (without its scheme).
    pub fn parse(token: &str) -> Result<Jwt, JwtError> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::NotJwt);
        };
        let object = |part: &str| -> Result<Map<String, Value>, JwtError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| JwtError::NotJwt)?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(JwtError::NotJwt),
            }
        };
        let header = object(h)?;
        if !header.get("alg").is_some_and(Value::is_string) {
            return Err(JwtError::NotJwt);
        }
        Ok(Jwt {
            header,
            claims: object(c)?,
            signature: URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|_| JwtError::NotJwt)?,
            signed: format!("{h}.{c}"),
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// Whether `key` made this token's signature (for an HMAC algorithm).
    pub fn signed_by(&self, key: &[u8]) -> bool {
        hmac_sign(self.alg(), key, self.signed.as_bytes()).is_some_and(|s| s == self.signature)
    }

    /// The same claims, expired an hour ago (its `iat` and `nbf` moved back
    /// so the token's lifetime is kept), signed with `key`.
    pub fn expired(&self, key: &[u8]) -> Result<String, JwtError> {
        let now = unix_now();
        let exp = now.saturating_sub(3600);
        let num = |k: &str| self.claims.get(k).and_then(Value::as_u64);
        let lifetime = match (num("exp"), num("iat")) {
            (Some(e), Some(i)) if e > i => e - i,
            _ => 3600,
        };
        let mut claims = self.claims.clone();
        claims.insert("exp".into(), Value::from(exp));
        for k in ["iat", "nbf"] {
            if claims.contains_key(k) {
                claims.insert(k.into(), Value::from(exp.saturating_sub(lifetime)));
            }
        }
        let unsigned = format!("{}.{}", encode(&self.header), encode(&claims));
        let sig = hmac_sign(self.alg(), key, unsigned.as_bytes())
            .ok_or_else(|| JwtError::CannotSign(self.alg().to_string()))?;
        Ok(format!("{unsigned}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The same header and claims with a signature no key of the target's
    /// made: an HMAC under a fresh random key, or random bytes of the
    /// signature's length for other algorithms.
    pub fn foreign_key(&self) -> String {
        let key: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
        let sig = hmac_sign(self.alg(), &key, self.signed.as_bytes()).unwrap_or_else(|| {
            let n = if self.signature.is_empty() {
                32
            } else {
                self.signature.len()
            };
            (0..n).map(|_| fastrand::u8(..)).collect()
        });
        format!("{}.{}", self.signed, URL_SAFE_NO_PAD.encode(sig))
    }

    /// The same claims under `alg: none`, with an empty signature.
    pub fn alg_none(&self) -> String {
        let mut header = self.header.clone();
        header.insert("alg".into(), Value::from("none"));
        format!("{}.{}.", encode(&header), encode(&self.claims))
    }
}

/// A token that is no JWT at all, nor anything else a target issues.
pub fn garbled() -> String {
    let noise: String = (0..24).map(|_| fastrand::alphanumeric()).collect();
    format!("convoy-garbled.{noise}")
}

fn encode(m: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(m).expect("JSON objects serialise"))
}

/// The HMAC of `data` under `key` for `alg`, if it is one.
fn hmac_sign(alg: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .expect("HMAC takes keys of any length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        "HS256" => Some(mac::<Hmac<sha2::Sha256>>(key, data)),
        "HS384" => Some(mac::<Hmac<sha2::Sha384>>(key, data)),
        "HS512" => Some(mac::<Hmac<sha2::Sha512>>(key, data)),
        _ => None,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(key: &[u8], claims: Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let unsigned = format!("{h}.{c}");
        let sig = hmac_sign("HS256", key, unsigned.as_bytes()).unwrap();
        format!("{unsigned}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn real() -> String {
        let now = unix_now();
        token(
            b"secret",
            serde_json::json!({"sub": "u1", "tenant": "acme", "iat": now, "exp": now + 600}),
        )
    }

    #[test]
    fn an_expired_token_keeps_the_claims_and_is_signed_by_the_key() {
        let jwt = Jwt::parse(&real()).unwrap();
        assert!(jwt.signed_by(b"secret"));
        assert!(!jwt.signed_by(b"other"));
        let forged = Jwt::parse(&jwt.expired(b"secret").unwrap()).unwrap();
        assert!(forged.signed_by(b"secret"));
        let exp = forged.claims["exp"].as_u64().unwrap();
        assert!(exp < unix_now());
        assert_eq!(forged.claims["iat"].as_u64().unwrap(), exp - 600);
        assert_eq!(forged.claims["tenant"], "acme");
        assert_eq!(forged.header, jwt.header);
    }

    #[test]
    fn a_foreign_token_is_signed_by_no_key_the_target_has() {
        let jwt = Jwt::parse(&real()).unwrap();
        let forged = Jwt::parse(&jwt.foreign_key()).unwrap();
        assert_eq!(forged.claims, jwt.claims);
        assert_eq!(forged.alg(), "HS256");
        assert!(!forged.signed_by(b"secret"));
        assert_eq!(forged.signature.len(), 32);
    }

    #[test]
    fn alg_none_has_no_signature() {
        let jwt = Jwt::parse(&real()).unwrap();
        let forged = jwt.alg_none();
        assert!(forged.ends_with('.'));
        let parsed = Jwt::parse(&forged).unwrap();
        assert_eq!(parsed.alg(), "none");
        assert!(parsed.signature.is_empty());
        assert_eq!(parsed.claims, jwt.claims);
    }

    #[test]
    fn other_tokens_are_not_jwts_and_other_algorithms_cannot_be_signed() {
        for t in ["", "abc", "a.b", "a.b.c.d", "opaque-session-id", "e30.e30"] {
            assert_eq!(Jwt::parse(t), Err(JwtError::NotJwt), "{t:?}");
        }
        assert!(Jwt::parse(&garbled()).is_err());
        let rs = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"u"}"#),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        );
        let jwt = Jwt::parse(&rs).unwrap();
        assert_eq!(jwt.expired(b"k"), Err(JwtError::CannotSign("RS256".into())));
        let foreign = Jwt::parse(&jwt.foreign_key()).unwrap();
        assert_eq!(foreign.signature.len(), 256);
        assert_ne!(foreign.signature, jwt.signature);
    }
}
