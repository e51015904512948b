//! The compiled form of a scenario: what the runner executes. Built by
//! [`super::parse`] from a file; every template is parsed and every name
//! resolved here, so running a step only renders and sends.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::template::Template;

/// A journey: steps run in order by each virtual user, once per iteration.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The journey's name (its metric name).
    pub name: String,
    /// What it checks, for people.
    pub description: String,
    /// Relative weight when several journeys are mixed.
    pub weight: u32,
    /// Where requests go unless `--target` overrides it.
    pub base_url: Option<url::Url>,
    /// Gates the scenario asks for (checked by the gate parser).
    pub gates: Vec<String>,
    /// Names of the per-user variable slots.
    pub slots: Vec<String>,
    /// Starting values of the slots (`[vars]`), `None` for captures.
    pub initial: Vec<Option<Value>>,
    /// Rows of the data file, if any.
    pub data: Option<DataSet>,
    /// How identities log in.
    pub auth: Option<AuthConfig>,
    /// Who the steps act as.
    pub identities: Vec<Identity>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Values never to show: passwords, tokens, secret variables.
    pub secrets: Vec<String>,
    /// The file it came from (`builtin:NAME` for built-ins).
    pub source: PathBuf,
}

/// Rows of a CSV or JSON data file.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one value per column: the whole file, or after
    /// [`DataSet::shard`] only the shard's own slice of it.
    pub rows: Vec<Vec<Value>>,
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
    pub fn row(&self, vu: u64, iteration: u64) -> &[Value] {
        let n = self.rows.len() as u64;
        let user = vu / self.user_stride.max(1);
        let i = if self.random {
            fastrand::u64(0..n)
        } else {
            (user.wrapping_mul(7919).wrapping_add(iteration)) % n
        };
        &self.rows[i as usize]
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
        self.rows.truncate(range.end as usize);
        self.rows.drain(..range.start as usize);
        self.user_stride = u64::from(shard.count);
        Ok(())
    }
}

/// How identities obtain their tokens.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Login method.
    pub method: http::Method,
    /// Login path, relative to the base URL.
    pub path: String,
    /// JSON pointer to the token in the login response.
    pub token_pointer: String,
    /// Header carrying the token.
    pub header: http::HeaderName,
    /// Prefix before the token (`Bearer`), empty for none.
    pub scheme: String,
    /// Log in again after this long.
    pub renew_after: Duration,
}

/// Someone steps act as.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its name in the scenario.
    pub name: String,
    /// How it authenticates.
    pub credential: Credential,
}

/// An identity's credential.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A fixed token (from the environment, typically).
    Token(String),
    /// A login request with this JSON body.
    Login(bytes::Bytes),
}

/// One step of a journey.
#[derive(Debug, Clone)]
pub struct Step {
    /// Metric name.
    pub name: String,
    /// Index into [`Scenario::identities`].
    pub identity: Option<usize>,
    /// What the step does.
    pub action: Action,
    /// Pause after the step: a fixed time, or uniform in a range.
    pub think: Option<(Duration, Duration)>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// One request with checks and captures.
    Request(Request),
    /// The same request sent several times; every answer must agree.
    Replay(Request, Replay),
    /// Another tenant's identity tries the resource's routes.
    Isolation(Isolation),
    /// A journey written in Rust, registered by name.
    Custom(String),
    /// A read-only query against PostgreSQL with checks on its rows.
    Sql(super::sql::SqlStep),
    /// The row-level security coverage probe of a PostgreSQL database.
    Rls(super::sql::RlsStep),
}

/// A request template with its checks and captures.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: http::Method,
    /// Path (or absolute URL) template.
    pub path: Template,
    /// Query parameters.
    pub query: Vec<(String, Template)>,
    /// Headers.
    pub headers: Vec<(http::HeaderName, Template)>,
    /// Body.
    pub body: Body,
    /// Variables set before the request is rendered (`let`).
    pub lets: Vec<(usize, Template)>,
    /// Accepted statuses; empty means any 2xx or 3xx.
    pub status: Vec<u16>,
    /// Checks on the response.
    pub checks: Vec<Check>,
    /// Values captured from the response.
    pub captures: Vec<Capture>,
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
}

/// The part of a response a check looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A JSON pointer into the body.
    Json(String),
    /// A header.
    Header(http::HeaderName),
    /// The body as text.
    Body,
    /// The request's latency.
    Latency,
}

/// What must hold of a subject.
#[derive(Debug, Clone)]
pub enum Predicate {
    /// Equal to this value.
    Equals(JsonTemplate),
    /// Present (or absent, with `false`).
    Exists(bool),
    /// Matches this regular expression.
    Matches(regex_lite::Regex),
    /// Contains this text.
    Contains(Template),
    /// An array or string of this length.
    Length(usize),
    /// A latency below this.
    Below(Duration),
}

/// A value captured from a response into a variable slot.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The slot.
    pub slot: usize,
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
    Regex(regex_lite::Regex),
}

/// An idempotent replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// How many times the same request is sent (at least 2).
    pub times: u32,
    /// All at once (each on its own connection) or one after another.
    pub concurrent: bool,
    /// JSON pointer to the resource id that every answer must share.
    pub id_pointer: String,
    /// Statuses a replay may answer with.
    pub statuses: Vec<u16>,
    /// A follow-up request whose checks prove a single entry.
    pub verify: Option<Box<Request>>,
}

/// A tenant-isolation probe.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The other tenant's identity.
    pub identity: usize,
    /// The resource's path.
    pub resource: Template,
    /// Routes tried: method and a suffix to the resource path.
    pub probes: Vec<(http::Method, String)>,
    /// Statuses that count as refused.
    pub expect: Vec<u16>,
    /// Values that must not appear in any answer.
    pub markers: Vec<Template>,
    /// Body sent with PATCH, PUT and POST probes.
    pub body: Option<JsonTemplate>,
}

impl Scenario {
    /// Names of every step metric this scenario records, in order, with the
    /// request steps of replays and probes expanded.
    pub fn step_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            match &s.action {
                Action::Request(_) | Action::Custom(_) | Action::Sql(_) | Action::Rls(_) => {
                    out.push(s.name.clone())
                }
                Action::Replay(_, r) => {
                    out.push(s.name.clone());
                    if r.verify.is_some() {
                        out.push(format!("{} · verify", s.name));
                    }
                }
                Action::Isolation(iso) => {
                    for (m, suffix) in &iso.probes {
                        out.push(probe_name(&s.name, m, suffix));
                    }
                }
            }
        }
        out
    }

    /// Cuts this scenario's data rows to `shard`'s slice (see
    /// [`DataSet::shard`]); a scenario without data is left as it is. The
    /// error names the scenario and its file.
    pub fn shard_data(&mut self, shard: &crate::plan::Shard) -> Result<(), String> {
        match &mut self.data {
            Some(d) => d
                .shard(shard)
                .map_err(|e| format!("scenario {} ({}): {e}", self.name, self.source.display())),
            None => Ok(()),
        }
    }
}

/// The metric name of one isolation probe.
pub fn probe_name(step: &str, method: &http::Method, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("{step} · {method}")
    } else {
        format!("{step} · {method} {suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Shard;
    use std::collections::BTreeSet;

    fn data(rows: usize, random: bool) -> DataSet {
        DataSet {
            columns: vec!["id".into()],
            rows: (0..rows).map(|i| vec![Value::from(i)]).collect(),
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
                        used.insert(d.row(vu, it)[0].as_u64().unwrap());
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
                let expected = whole.row(k, it)[0].as_u64().unwrap() + 5;
                assert_eq!(shard.row(2 * k + 1, it)[0].as_u64().unwrap(), expected);
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
