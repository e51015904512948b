//! The step kinds, listed once.
//!
//! Each kind is a module here holding its compiled form, its compilation
//! from the scenario file (`kind::Compile`) and its execution
//! (`kind::Kind`). The `kinds!` list below is the one place kinds are
//! named: it generates the [`Action`] enum (what a step does), the
//! `[[step]]` table as written (`RawStep`, whose keys are the request's and
//! one table per kind), the ids a step records (`StepIds`), and every
//! dispatch over them, all of them `match`es: no `dyn`, no allocation added
//! per step. Adding a kind is a new file here, its `mod` line (declared
//! outside the macro so that rustfmt reaches the file) and one line in the
//! list.
//!
//! Kinds depend on the vocabulary (`model`, `template`, ...), on the
//! compile and run contexts (`compile`, `step_run`, `kind`) and on `auth`;
//! `replay`, `isolation` and `auth_probe` build on `request` (their requests
//! are rendered by its `prepare`, the common path of requests made as an
//! identity), `rls` on `sql`; `subscribe` renders its request with
//! `request`'s `prepare` and opens a stream (`scenario/stream`), on which
//! `await`, `send` and `stream_isolation` act (they find it by the index
//! the parse front-end gave it, `Compiler::streams`). The parse front-end and the
//! runner dispatch to kinds through [`Action`]; nothing here imports them.

pub mod auth_probe;
pub mod await_event;
pub mod custom;
pub mod isolation;
pub mod replay;
pub mod request;
pub mod rls;
pub mod send;
pub mod sql;
pub mod stream_isolation;
pub mod subscribe;

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::compile::{Compiler, RawChecks, RequestKeys, StepTable, refuse_unused};
use super::diagnostic::Diagnostic;
use super::kind::{Compile, Kind, Registrar};
use super::source::SpannedValue;
use super::step_run::StepRun;

/// Generates the step kinds' modules, enum, raw table and dispatch from
/// their list: the default kind (a step without a kind table), then each
/// kind (`Variant(module::Type)`) with the key of its table. A step has one
/// kind: two kind tables are refused, and so is any key its kind does not
/// read (`Compile::STEP_KEYS`), where it is written.
macro_rules! kinds {
    (
        $(#[$dmeta:meta])*
        default $dvariant:ident($dmod:ident :: $dtype:ident);
        $(
            $(#[$meta:meta])*
            $variant:ident($mod:ident :: $type:ident) = $key:ident;
        )*
    ) => {

        kinds!(@generate
            $(#[$dmeta])* $dvariant($dmod::$dtype);
            $( $(#[$meta])* $variant($mod::$type) = $key; )*
        );
    };
    (@generate
        $(#[$dmeta:meta])*
        $dvariant:ident($dty:ty);
        $(
            $(#[$meta:meta])*
            $variant:ident($ty:ty) = $key:ident;
        )*
    ) => {
        /// What a step does: a value of one kind.
        #[derive(Debug, Clone)]
        pub enum Action {
            $(#[$dmeta])*
            $dvariant($dty),
            $(
                $(#[$meta])*
                $variant($ty),
            )*
        }

        /// The ids of the metrics and checks a step records, of its kind.
        pub(crate) enum StepIds {
            $dvariant(<$dty as Kind>::Ids),
            $( $variant(<$ty as Kind>::Ids), )*
        }

        /// A `[[step]]` table, as written: the step's own keys, its
        /// request's, and each kind's table.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawStep {
            /// The step's (metric) name.
            pub name: Option<Spanned<String>>,
            /// `as`: the identity it acts as.
            #[serde(rename = "as")]
            pub identity: Option<Spanned<String>>,
            method: Option<Spanned<String>>,
            path: Option<Spanned<String>>,
            #[serde(default)]
            query: BTreeMap<String, Spanned<String>>,
            #[serde(default)]
            headers: BTreeMap<Spanned<String>, Spanned<String>>,
            #[serde(rename = "let", default)]
            lets: BTreeMap<Spanned<String>, Spanned<String>>,
            json: Option<Spanned<SpannedValue>>,
            body: Option<Spanned<String>>,
            status: Option<Spanned<toml::Value>>,
            #[serde(default)]
            checks: RawChecks,
            #[serde(default)]
            capture: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
            /// The pause after it.
            pub think: Option<Spanned<String>>,
            $( $key: Option<Spanned<<$ty as Compile<RawStep>>::Table>>, )*
        }

        impl StepTable for RawStep {
            fn keys(&self) -> RequestKeys<'_> {
                RequestKeys {
                    method: self.method.as_ref(),
                    path: self.path.as_ref(),
                    query: &self.query,
                    headers: &self.headers,
                    lets: &self.lets,
                    json: self.json.as_ref(),
                    body: self.body.as_ref(),
                    status: self.status.as_ref(),
                    checks: &self.checks,
                    capture: &self.capture,
                }
            }

            fn present(&self) -> Vec<(&'static str, Range<usize>)> {
                let mut out = Vec::new();
                let mut add = |key: &'static str, span: Option<Range<usize>>| {
                    if let Some(s) = span {
                        out.push((key, s));
                    }
                };
                add("name", self.name.as_ref().map(Spanned::span));
                add("as", self.identity.as_ref().map(Spanned::span));
                add("method", self.method.as_ref().map(Spanned::span));
                add("path", self.path.as_ref().map(Spanned::span));
                add("query", self.query.values().next().map(Spanned::span));
                add("headers", self.headers.keys().next().map(Spanned::span));
                add("let", self.lets.keys().next().map(Spanned::span));
                add("json", self.json.as_ref().map(Spanned::span));
                add("body", self.body.as_ref().map(Spanned::span));
                add("status", self.status.as_ref().map(Spanned::span));
                add("checks", self.checks.first().map(Spanned::span));
                add("capture", self.capture.keys().next().map(Spanned::span));
                add("think", self.think.as_ref().map(Spanned::span));
                $( add(key_name(stringify!($key)), self.$key.as_ref().map(Spanned::span)); )*
                out
            }

            fn declare(&self, c: &mut Compiler<'_>) -> Result<(), Diagnostic> {
                for k in self.lets.keys().chain(self.capture.keys()) {
                    c.check_name(k)?;
                    c.slot(k.get_ref());
                }
                $(
                    if let Some(t) = &self.$key {
                        <$ty as Compile<RawStep>>::declare(c, t.get_ref())?;
                    }
                )*
                Ok(())
            }
        }

        impl Action {
            /// Compiles what step `st` does: the kind whose table it has,
            /// else the default kind; a second kind table, or a key its
            /// kind does not read, is refused where it is written.
            pub(crate) fn compile(
                c: &Compiler<'_>,
                st: &Spanned<RawStep>,
            ) -> Result<Action, Diagnostic> {
                let raw = st.get_ref();
                let present = raw.present();
                let mut tables: Vec<&(&str, Range<usize>)> = present
                    .iter()
                    .filter(|(k, _)| [$( key_name(stringify!($key)) ),*].contains(k))
                    .collect();
                // The second as written is the one refused.
                tables.sort_by_key(|(_, span)| span.start);
                if let [first, second, ..] = tables[..] {
                    return Err(c
                        .err(
                            second.1.clone(),
                            format!(
                                "a step has either {} or {}, not both",
                                shown_kind(first.0),
                                shown_kind(second.0)
                            ),
                        )
                        .with_hint("a step does one thing: make two steps"));
                }
                $(
                    if let Some(t) = &raw.$key {
                        let uses = <$ty as Compile<RawStep>>::STEP_KEYS;
                        refuse_unused(
                            c,
                            &present,
                            &[&["name", "think", key_name(stringify!($key))][..], uses].concat(),
                            <$ty as Compile<RawStep>>::WHAT,
                            <$ty as Compile<RawStep>>::unused_hint,
                        )?;
                        return Ok(Action::$variant(
                            <$ty as Compile<RawStep>>::compile(c, st, t)?,
                        ));
                    }
                )*
                Ok(Action::$dvariant(<$dty>::compile_step(c, st)?))
            }

            /// The step's name when the scenario gives none.
            pub(crate) fn default_name(&self, raw: &RawStep) -> String {
                match self {
                    Action::$dvariant(k) => k.default_name(raw),
                    $( Action::$variant(k) => <$ty as Compile<RawStep>>::default_name(k, raw), )*
                }
            }

            /// Appends the metric names a step named `step` records.
            pub fn metric_names(&self, step: &str, out: &mut Vec<String>) {
                match self {
                    Action::$dvariant(k) => k.metric_names(step, out),
                    $( Action::$variant(k) => k.metric_names(step, out), )*
                }
            }

            /// The most requests (or queries) one run of the step makes,
            /// its identity's login aside; `None` when a custom journey
            /// (Rust code) makes any number.
            pub fn max_requests(&self) -> Option<u64> {
                match self {
                    Action::$dvariant(k) => k.max_requests(),
                    $( Action::$variant(k) => k.max_requests(), )*
                }
            }

            /// The most HTTP requests one run of the step sends to the
            /// target, logins aside (a database step sends none); `None`
            /// when a custom journey makes any number.
            pub fn max_target_requests(&self) -> Option<u64> {
                match self {
                    Action::$dvariant(k) => k.max_target_requests(),
                    $( Action::$variant(k) => k.max_target_requests(), )*
                }
            }

            /// The most logins (first ones or renewals) one run of the step
            /// can make when its scenario logs in.
            pub fn max_logins(&self) -> u64 {
                match self {
                    Action::$dvariant(k) => k.max_logins(),
                    $( Action::$variant(k) => k.max_logins(), )*
                }
            }

            /// The most requests one run of the step has in flight at once
            /// (a concurrent replay's copies).
            pub fn max_in_flight(&self) -> u64 {
                match self {
                    Action::$dvariant(k) => k.max_in_flight(),
                    $( Action::$variant(k) => k.max_in_flight(), )*
                }
            }

            /// The connections a user keeps open after the step, besides
            /// its own for requests (a held stream's).
            pub fn held_connections(&self) -> u64 {
                match self {
                    Action::$dvariant(k) => k.held_connections(),
                    $( Action::$variant(k) => k.held_connections(), )*
                }
            }

            /// Values the step holds that must never be shown.
            pub(crate) fn secrets(&self) -> Vec<String> {
                match self {
                    Action::$dvariant(k) => k.secrets(),
                    $( Action::$variant(k) => k.secrets(), )*
                }
            }

            /// Registers the metrics and checks of a step named `step`.
            pub(crate) fn register(
                &self,
                step: &str,
                r: &mut Registrar<'_>,
            ) -> Result<StepIds, String> {
                Ok(match self {
                    Action::$dvariant(k) => StepIds::$dvariant(k.register(step, r)?),
                    $( Action::$variant(k) => StepIds::$variant(k.register(step, r)?), )*
                })
            }

            /// Runs the step once with the ids it registered; true when
            /// everything held.
            pub(crate) async fn execute(&self, ids: &StepIds, run: &mut StepRun<'_>) -> bool {
                match (self, ids) {
                    (Action::$dvariant(k), StepIds::$dvariant(i)) => k.execute(i, run).await,
                    $( (Action::$variant(k), StepIds::$variant(i)) => k.execute(i, run).await, )*
                    _ => unreachable!("a step's ids are registered by its own kind"),
                }
            }
        }
    };
}

/// A kind's key as the file writes it: `r#await` is `await`.
fn key_name(ident: &'static str) -> &'static str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// How a kind's key reads in a message: `[step.sql]`, or `custom` (a
/// string, not a table).
fn shown_kind(key: &str) -> String {
    if key == "custom" {
        "`custom`".to_string()
    } else {
        format!("[step.{key}]")
    }
}

// The list: `Variant(module::Type) = table key;`. Kinds are in the order the
// file format has always listed their keys (serde names them in this order
// in "expected one of" hints).
kinds! {
    /// One request with checks and captures.
    default Request(request::Request);
    /// The same request sent several times; every answer must agree.
    Replay(replay::Replay) = replay;
    /// Another tenant's identity tries the resource's routes.
    Isolation(isolation::Isolation) = isolation;
    /// A journey written in Rust, registered by name.
    Custom(custom::Custom) = custom;
    /// A read-only query against PostgreSQL with checks on its rows.
    Sql(sql::SqlStep) = sql;
    /// The row-level security coverage probe of a PostgreSQL database.
    Rls(rls::RlsStep) = rls;
    /// A route sent without valid credentials: each must be refused.
    AuthProbe(auth_probe::AuthProbe) = auth_probe;
    /// A stream (server-sent events or WebSocket) opened and held.
    Subscribe(subscribe::Subscribe) = subscribe;
    /// An event awaited on a held stream, timed from the step that caused it.
    Await(await_event::Await) = r#await;
    /// A message sent on a held WebSocket.
    Send(send::Send) = send;
    /// Another tenant's stream watched for a resource's events.
    StreamIsolation(stream_isolation::StreamIsolation) = stream_isolation;
}
