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
    pub base_url: Option<reqwest::Url>,
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
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
    /// Pick rows at random instead of in turn.
    pub random: bool,
}

impl DataSet {
    /// The row for a user's iteration.
    pub fn row(&self, vu: u64, iteration: u64) -> &[Value] {
        let n = self.rows.len() as u64;
        let i = if self.random {
            fastrand::u64(0..n)
        } else {
            (vu.wrapping_mul(7919).wrapping_add(iteration)) % n
        };
        &self.rows[i as usize]
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
}

/// The metric name of one isolation probe.
pub fn probe_name(step: &str, method: &http::Method, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("{step} · {method}")
    } else {
        format!("{step} · {method} {suffix}")
    }
}
