//! The shared vocabulary of compiled scenarios, at the bottom of the
//! module: the parts that step kinds, the compiler and the runner all
//! speak of. Data rows ([`DataSet`]), identities and how they log in
//! ([`Identity`], [`AuthConfig`]), request bodies and JSON templates, and
//! the checks and captures made of an answer. Every template here is
//! already parsed and every name resolved, so running a step only renders
//! and sends. Step kinds' own forms live with their kinds (`steps/`);
//! the whole compiled scenario is `journey::Scenario`, above them.

use std::time::Duration;

use serde_json::Value;

use super::data::{Row, Rows};
use super::template::Template;

/// Rows of a CSV or JSON data file.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column: the whole file, or after
    /// [`DataSet::shard`] only the shard's own slice of it. Shared, not
    /// copied, by the clones of a scenario.
    pub rows: std::sync::Arc<Rows>,
    /// Pick rows at random instead of in turn.
    pub random: bool,
    /// How the users of this process are numbered in the whole run: user
    /// `k` of shard `I/N` is user `k * N + I` (see
    /// `EngineOptions::vu_stride`). 1 when not sharded.
    pub user_stride: u64,
}

/// A shard would have no data row to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "shard {shard} has no data row: the data file has {rows} row(s), fewer than the {count} shards \
     (each shard uses its own rows, so that no row is used by two shards); \
     add rows or run at most {rows} shard(s)",
    count = shard.count
)]
pub struct NoRowForShard {
    /// The shard left without a row.
    pub shard: crate::plan::Shard,
    /// Rows in the whole file.
    pub rows: usize,
}

impl DataSet {
    /// The row for a user's iteration. `vu` is the user's number in the
    /// whole run; a shard's `k`-th user picks from the shard's rows exactly
    /// as user `k` of an unsharded run picks from the whole file.
    ///
    /// Sequential: each user starts at its own row (users spread by a prime
    /// stride) and takes the next row each iteration, wrapping around.
    /// Random: a row drawn uniformly each iteration.
    pub fn row(&self, vu: u64, iteration: u64) -> Row<'_> {
        let n = self.rows.len() as u64;
        let user = vu / self.user_stride.max(1);
        let i = if self.random {
            fastrand::u64(0..n)
        } else {
            (user.wrapping_mul(7919).wrapping_add(iteration)) % n
        };
        self.rows.get(i as usize)
    }

    /// Keeps only `shard`'s rows: the contiguous slice
    /// [`Shard::range`](crate::plan::Shard::range) of the file, so that the
    /// shards of one run use disjoint rows that together cover the file, in
    /// either mode. Refused when the file has fewer rows than shards (a
    /// shard would have none; sharing one would break the disjointness).
    pub fn shard(&mut self, shard: &crate::plan::Shard) -> Result<(), NoRowForShard> {
        let total = self.rows.len();
        let range = shard.range(total as u64);
        if range.is_empty() {
            return Err(NoRowForShard {
                shard: *shard,
                rows: total,
            });
        }
        self.rows = std::sync::Arc::new(self.rows.slice(range.start as usize..range.end as usize));
        self.user_stride = u64::from(shard.count);
        Ok(())
    }
}

/// How identities obtain their credentials and send them (`[auth]`).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The kind as written: `login`, `cookie`, `token`, `basic`, `oauth2`.
    pub kind: &'static str,
    /// The request that obtains a token, for kinds that log in.
    pub login: Option<LoginConfig>,
    /// How the token goes with each request.
    pub send: TokenPlacement,
    /// Log in again after this long at the latest.
    pub renew_after: Duration,
}

/// The request that obtains a token (a login, an OAuth2 token request).
/// Its path and body are each identity's ([`Credential::Login`]).
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// Method.
    pub method: http::Method,
    /// Content type of the body.
    pub content_type: http::HeaderValue,
    /// Where the answer carries the token.
    pub token: TokenSource,
    /// JSON pointer to the token's lifetime in seconds (`/expires_in`).
    pub expires_in: Option<String>,
}

/// Where a login answer carries its token.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenSource {
    /// A JSON pointer into the body.
    Json(String),
    /// A response header.
    Header(http::HeaderName),
    /// A cookie set by `Set-Cookie`.
    Cookie(String),
}

/// How a token goes with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenPlacement {
    /// In a header, after a scheme (`Bearer`; empty for none).
    Header {
        /// The header.
        name: http::HeaderName,
        /// The prefix, `Bearer`, `Basic`, or empty.
        scheme: String,
    },
    /// As a cookie of this name.
    Cookie(String),
    /// As a query parameter of this name.
    Query(String),
}

/// What a credential adds to a request, prebuilt.
#[derive(Debug, Clone)]
pub enum AuthValue {
    /// A header (marked sensitive).
    Header(http::HeaderName, http::HeaderValue),
    /// A query parameter, `name=value` percent-encoded.
    Query(String),
}

/// Someone steps act as: a user of the API with its own credential,
/// template variables and headers.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its name in the scenario.
    pub name: String,
    /// How it authenticates.
    pub credential: Credential,
    /// Its fields, by index into the scenario's identity field names
    /// (`None` where it has no such field).
    pub vars: Vec<Option<serde_json::Value>>,
    /// Headers sent on every request made as it, prebuilt.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// An identity's credential.
#[derive(Debug, Clone)]
pub enum Credential {
    /// None: the identity's headers, if any, are all it sends.
    None,
    /// The same value on every request (a token or API key, HTTP Basic).
    Fixed(AuthValue),
    /// A login request (its origin-form path and body) that answers a
    /// token.
    Login {
        /// Path (and query), relative to the base URL.
        path: String,
        /// Body.
        body: bytes::Bytes,
    },
}

/// A header whose value is fixed or rendered per request.
#[derive(Debug, Clone)]
pub enum HeaderTemplate {
    /// Prebuilt.
    Fixed(http::HeaderValue),
    /// Rendered per request.
    Template(Template),
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    None,
    /// JSON built from a template tree.
    Json(JsonTemplate),
    /// Raw text.
    Raw(Template),
}

/// A JSON value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    /// A fixed value (no template inside).
    Fixed(Value),
    /// A string template.
    Text(Template),
    /// An array.
    Array(Vec<JsonTemplate>),
    /// An object.
    Object(Vec<(String, JsonTemplate)>),
}

/// A check: a subject of the response and what must hold of it.
#[derive(Debug, Clone)]
pub struct Check {
    /// How the check reads in reports: `json /status == "created"`.
    pub label: String,
    /// What is looked at.
    pub subject: Subject,
    /// What must hold.
    pub predicate: Predicate,
    /// The predicate must not hold (`not_equals`, `not_contains`,
    /// `not_matches`, `exists = false`).
    pub negated: bool,
}

/// The part of a response a check looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A JSON pointer into the body.
    Json(String),
    /// The values a JSON pointer with `*` segments selects.
    Elements(Elements),
    /// A header (its first value).
    Header(http::HeaderName),
    /// The body as text.
    Body,
    /// The request's latency.
    Latency,
}

/// A JSON pointer with wildcard (`*`) segments, and how its values are
/// judged together.
#[derive(Debug, Clone, PartialEq)]
pub struct Elements {
    /// The pointer as written, `*` included: what the JSON reader keeps.
    pub pointer: String,
    /// Its reference tokens, unescaped; `None` for a `*`.
    pub tokens: Vec<Option<String>>,
    /// Whether some or every element must pass.
    pub quantifier: Quantifier,
}

/// How the elements a wildcard selects are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// Neither `any` nor `all`: some element passes a predicate, and no
    /// element passes the predicate a negation negates.
    Implicit,
    /// `any = true`: some element passes.
    Any,
    /// `all = true`: there is an element, and every element passes.
    All,
}

/// What must hold of a subject.
#[derive(Debug, Clone)]
pub enum Predicate {
    /// Equal to this value.
    Equals(JsonTemplate),
    /// Present.
    Exists,
    /// Matches this regular expression.
    Matches(regex::Regex),
    /// Contains this text (or, in an array, an element equal to it).
    Contains(Template),
    /// An array, string or object of this length.
    Length(usize),
    /// A number (or numeric string) compared with a bound.
    Compare(Comparison),
    /// A latency below this.
    Below(Duration),
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    /// `less_than`.
    Less(Num),
    /// `at_most`.
    AtMost(Num),
    /// `greater_than`.
    Greater(Num),
    /// `at_least`.
    AtLeast(Num),
    /// `between = [LOW, HIGH]`, both included.
    Between(Num, Num),
}

/// A number as a check compares it: whole numbers exactly (ids and
/// amounts in cents beyond 2^53 included), others as `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// A whole number.
    Int(i128),
    /// A finite fraction.
    Float(f64),
}

/// A value captured from a response into a variable slot.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The slot.
    pub slot: usize,
    /// Whether the variable is named like a secret (`session`, `token`):
    /// its values join the run's secrets when captured.
    pub sensitive: bool,
    /// Where the value comes from.
    pub source: CaptureSource,
}

/// Where a captured value comes from.
#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// A JSON pointer into the body.
    Json(String),
    /// A header's value.
    Header(http::HeaderName),
    /// The first group (or the whole match) of a regex over the body.
    Regex(regex::Regex),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Shard;
    use std::collections::BTreeSet;

    fn data(rows: usize, random: bool) -> DataSet {
        DataSet {
            columns: vec!["id".into()],
            rows: std::sync::Arc::new(Rows::from_values((0..rows).map(|i| vec![Value::from(i)]))),
            random,
            user_stride: 1,
        }
    }

    /// The file rows (by their `id`) that `users` users of every shard of
    /// `n` use in `iterations` iterations, shard by shard.
    fn rows_used(
        rows: usize,
        random: bool,
        n: u32,
        users: u64,
        iterations: u64,
    ) -> Vec<BTreeSet<u64>> {
        (0..n)
            .map(|i| {
                let shard: Shard = format!("{i}/{n}").parse().unwrap();
                let mut d = data(rows, random);
                d.shard(&shard).unwrap();
                let mut used = BTreeSet::new();
                // Global numbering, as the engine gives it: k * N + I.
                for vu in (0..users).filter(|vu| vu % u64::from(n) == u64::from(i)) {
                    for it in 0..iterations {
                        used.insert(d.row(vu, it).get(0).unwrap().to_value().as_u64().unwrap());
                    }
                }
                used
            })
            .collect()
    }

    #[test]
    fn shards_use_disjoint_rows_in_both_modes() {
        // The audit's case: 12 rows, 6 users x 2 iterations, 3 shards.
        for random in [false, true] {
            let used = rows_used(12, random, 3, 6, 2);
            for (i, a) in used.iter().enumerate() {
                // Shard i's rows are its own block of 4.
                let block: BTreeSet<u64> = (4 * i as u64..4 * i as u64 + 4).collect();
                assert!(a.is_subset(&block), "random={random} shard {i}: {a:?}");
                for b in &used[i + 1..] {
                    assert!(a.is_disjoint(b), "random={random}: {a:?} and {b:?}");
                }
            }
        }
        // Enough iterations walk every row of every block: together the
        // shards use the whole file, each row once.
        let used = rows_used(12, false, 3, 6, 4);
        let union: BTreeSet<u64> = used.iter().flatten().copied().collect();
        assert_eq!(union, (0..12).collect());
        assert_eq!(used.iter().map(BTreeSet::len).sum::<usize>(), 12);
    }

    #[test]
    fn a_shard_walks_its_rows_as_an_unsharded_run_walks_the_file() {
        let whole = data(5, false);
        let mut shard = data(10, false);
        shard.shard(&"1/2".parse().unwrap()).unwrap();
        for k in 0..4 {
            for it in 0..7 {
                // Shard 1/2's user k is user 2k+1 of the run; its rows are 5..10.
                let expected = whole
                    .row(k, it)
                    .get(0)
                    .unwrap()
                    .to_value()
                    .as_u64()
                    .unwrap()
                    + 5;
                assert_eq!(
                    shard
                        .row(2 * k + 1, it)
                        .get(0)
                        .unwrap()
                        .to_value()
                        .as_u64()
                        .unwrap(),
                    expected
                );
            }
        }
    }

    #[test]
    fn uneven_rows_split_into_blocks_that_cover_the_file() {
        let sizes: Vec<usize> = (0..4)
            .map(|i| {
                let mut d = data(10, false);
                d.shard(&format!("{i}/4").parse().unwrap()).unwrap();
                d.rows.len()
            })
            .collect();
        assert_eq!(sizes, [3, 3, 2, 2]);
    }

    #[test]
    fn fewer_rows_than_shards_is_refused() {
        let mut d = data(2, false);
        d.shard(&"1/3".parse().unwrap()).unwrap();
        let err = data(2, true)
            .shard(&"2/3".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("shard 2/3 has no data row"), "{err}");
        assert!(err.contains("2 row(s), fewer than the 3 shards"), "{err}");
    }
}
