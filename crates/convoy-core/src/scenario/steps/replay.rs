//! The `replay` kind: a step's request sent several times with one
//! idempotency key, at once (each copy on its own connection) or one after
//! another. Every answer must have an allowed status and the same resource
//! id; an optional `verify` request then proves a single entry. Two
//! accepted answers with different ids, or a listing that disagrees after
//! every replay was accepted, are idempotency violations.

use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::request::{self, Request, RequestIds};
use crate::engine::StepKind;
use crate::engine::http::{Connection, HttpFailure, HttpResponse};
use crate::metrics::Violation;
use crate::scenario::auth;
use crate::scenario::check::LazyJson;
use crate::scenario::compile::{Compiler, StepTable, refuse_unused};
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::exchange::{Prepared, outcome_of, status_expected, status_label};
use crate::scenario::json_pick::JsonPaths;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::step_run::StepRun;

/// The `[step.replay]` table, as written; `S` is the step table its
/// `verify` request is written as.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplay<S> {
    times: Spanned<i64>,
    #[serde(default)]
    concurrent: bool,
    id: Spanned<String>,
    status: Option<Spanned<toml::Value>>,
    verify: Option<Spanned<Box<S>>>,
}

/// The keys a replay's `verify` request reads.
const VERIFY_KEYS: &[&str] = &[
    "method", "path", "query", "headers", "let", "json", "body", "status", "checks",
];

/// An idempotent replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The request replayed, with its checks and captures.
    pub request: Request,
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

impl<S: StepTable> Compile<S> for Replay {
    type Table = RawReplay<S>;

    const WHAT: &'static str = "a replay step";
    const STEP_KEYS: &'static [&'static str] = Request::STEP_KEYS;

    fn declare(c: &mut Compiler<'_>, table: &RawReplay<S>) -> Result<(), Diagnostic> {
        if let Some(v) = &table.verify {
            v.get_ref().declare(c)?;
        }
        Ok(())
    }

    fn compile(
        c: &Compiler<'_>,
        step: &Spanned<S>,
        table: &Spanned<RawReplay<S>>,
    ) -> Result<Self, Diagnostic> {
        let request = request::compile(c, step.span(), &step.get_ref().keys())?;
        let raw = table.get_ref();
        if !(2..=1000).contains(raw.times.get_ref()) {
            return Err(c.err(raw.times.span(), "replay times must be between 2 and 1000"));
        }
        if !raw.id.get_ref().starts_with('/') {
            return Err(c.err(raw.id.span(), "id must be a JSON pointer such as \"/id\""));
        }
        crate::scenario::json_pick::check_pointer_depth(raw.id.get_ref())
            .map_err(|e| c.err(raw.id.span(), e))?;
        if let Some(v) = &raw.verify {
            refuse_unused(
                c,
                &v.get_ref().present(),
                VERIFY_KEYS,
                "a replay's `verify` request",
                |key| {
                    Some(match key {
                        "as" => "`verify` is sent as the step's identity".to_string(),
                        "capture" => "`verify` captures nothing: capture from the replayed request"
                            .to_string(),
                        _ => format!("`verify` is one request: {}", VERIFY_KEYS.join(", ")),
                    })
                },
            )?;
        }
        let verify = match &raw.verify {
            Some(v) => Some(Box::new(request::compile(
                c,
                v.span(),
                &v.get_ref().keys(),
            )?)),
            None => None,
        };
        Ok(Replay {
            request,
            times: *raw.times.get_ref() as u32,
            concurrent: raw.concurrent,
            id_pointer: raw.id.get_ref().clone(),
            statuses: match &raw.status {
                Some(s) => c.statuses(s)?,
                None => vec![200, 201],
            },
            verify,
        })
    }

    fn default_name(&self, step: &S) -> String {
        self.request.default_name(step)
    }
}

/// Metric and check ids of a replay.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplayIds {
    /// The replayed request's, under the step's metric.
    pub request: RequestIds,
    /// Every answer has an allowed status.
    pub status: usize,
    /// Every answer has the same id.
    pub same_id: usize,
    /// The id pointer, for reading answers.
    pub id: JsonPaths,
    /// The verification's, if any.
    pub verify: Option<VerifyIds>,
}

/// Metric and check ids of a replay's verification.
#[derive(Debug, Clone, Default)]
pub(crate) struct VerifyIds {
    /// Its metric.
    pub metric: usize,
    /// Its status check, then its checks.
    pub checks: Vec<usize>,
    /// What its checks read of a JSON answer.
    pub json: JsonPaths,
}

impl Kind for Replay {
    type Ids = ReplayIds;

    fn metric_names(&self, step: &str, out: &mut Vec<String>) {
        out.push(step.to_string());
        if self.verify.is_some() {
            out.push(format!("{step} · verify"));
        }
    }

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<ReplayIds, String> {
        let name = r.qualify(step);
        let request = request::register(&self.request, &name, r);
        let status = r.check(
            &name,
            format!(
                "replay: {} answers, each {}",
                self.times,
                status_label(&self.statuses)
            ),
        );
        let same_id = r.check(
            &name,
            format!("replay: every answer has the same {}", self.id_pointer),
        );
        let id = JsonPaths::new([self.id_pointer.as_str()]);
        let verify = self.verify.as_ref().map(|v| {
            let json = request::request_paths(v);
            let vname = r.qualify(&format!("{step} · verify"));
            let metric = r.step(vname.clone(), StepKind::Request);
            let checks = std::iter::once(status_label(&v.status))
                .chain(v.checks.iter().map(|c| c.label.clone()))
                .map(|l| r.check(&vname, format!("single entry: {l}")))
                .collect();
            VerifyIds {
                metric,
                checks,
                json,
            }
        });
        Ok(ReplayIds {
            request,
            status,
            same_id,
            id,
            verify,
        })
    }

    fn max_requests(&self) -> Option<u64> {
        Some(u64::from(self.times) + u64::from(self.verify.is_some()))
    }

    /// The replayed request asks for its token, and its verify request
    /// asks again (a renewal can fall between them).
    fn max_logins(&self) -> u64 {
        1 + u64::from(self.verify.is_some())
    }

    /// A concurrent replay has every copy in flight together.
    fn max_in_flight(&self) -> u64 {
        if self.concurrent {
            u64::from(self.times)
        } else {
            1
        }
    }

    async fn execute(&self, ids: &ReplayIds, run: &mut StepRun<'_>) -> bool {
        // Boxed: several requests in flight make a large future, which
        // every plain request step would otherwise carry and move.
        Box::pin(replay(self, ids, run)).await
    }
}

/// Runs replay `rp`.
async fn replay(rp: &Replay, step_ids: &ReplayIds, run: &mut StepRun<'_>) -> bool {
    let r = &rp.request;
    let identity = run.identity;
    let renewable = auth::renewable(run, identity) && !rp.statuses.contains(&401);
    let Some(mut p) = authorised(rp, step_ids, run).await else {
        return false;
    };
    let mut results = send_copies(rp, step_ids, run, &p, renewable).await;
    if renewable
        && results
            .iter()
            .any(|(r, _)| matches!(r, Ok(a) if a.status == 401))
    {
        // The token expired: renew it once and replay every copy again
        // (the refused copies created nothing).
        if let Some(i) = identity {
            auth::expire(run, i);
        }
        let Some(again) = authorised(rp, step_ids, run).await else {
            return false;
        };
        p = again;
        run.scheduled = run.scheduled.max(Instant::now());
        results = send_copies(rp, step_ids, run, &p, false).await;
    }
    // The first answer goes through the step's own checks and captures.
    let Some((first, first_latency)) = results.first() else {
        return false;
    };
    let mut ok = request::after_response(
        run,
        r,
        &step_ids.request.json,
        &p,
        first,
        *first_latency,
        step_ids.request.status,
        &step_ids.request.checks,
        Some(step_ids.request.captures),
    );
    // Every answer: an allowed status and the same id.
    let mut bad_status = Vec::new();
    let mut ids = Vec::new();
    for (res, _) in &results {
        match res {
            Ok(resp) if rp.statuses.contains(&resp.status) => {
                ids.push(
                    LazyJson::new(&resp.body, &step_ids.id)
                        .get()
                        .and_then(|v| v.pointer(&rp.id_pointer))
                        .cloned(),
                );
            }
            Ok(resp) => bad_status.push(resp.status.to_string()),
            Err(f) => bad_status.push(f.cause.to_string()),
        }
    }
    let status_ok = bad_status.is_empty() && results.len() == rp.times as usize;
    run.it.recorder.check(step_ids.status, status_ok);
    let same_id = ids.first().is_some_and(|f| f.is_some()) && ids.windows(2).all(|w| w[0] == w[1]);
    let same_ok = status_ok && same_id;
    run.it.recorder.check(step_ids.same_id, same_ok);
    let distinct: Vec<String> = {
        let mut d: Vec<String> = ids
            .iter()
            .map(|v| v.as_ref().map_or("(none)".into(), Value::to_string))
            .collect();
        d.sort();
        d.dedup();
        d
    };
    if !status_ok || !same_ok {
        ok = false;
        // A duplicate is proven only by two accepted answers carrying
        // different ids. A replay that failed (5xx, refused, reset) or an
        // answer without an id fails the checks above and counts as an
        // error, not as a violation: it proves nothing about the key.
        let duplicate = proves_duplicate(&ids);
        if duplicate {
            run.it
                .recorder
                .violation(Violation::IdempotencyViolations, 1);
        }
        let why = if !status_ok {
            format!("replays answered {}", bad_status.join(", "))
        } else {
            format!(
                "{} replays returned {} different ids: {}",
                rp.times,
                distinct.len(),
                distinct.join(", ")
            )
        };
        let last = &results.last().expect("non-empty").0;
        if duplicate {
            let kind = Violation::IdempotencyViolations;
            run.sample_violation(kind, "idempotent replay", why, &p, last);
        } else {
            run.sample_exchange("idempotent replay", why, &p, last);
        }
    }
    if let (Some(v), Some(vids)) = (&rp.verify, &step_ids.verify) {
        // The verify request is timed from when it is sent, and renews a
        // token answered 401 as a plain request does.
        run.scheduled = Instant::now();
        let (status_id, rest) = vids.checks.split_first().expect("status check first");
        match request::exchange(run, v, vids.metric, *status_id).await {
            Some((vp, res, latency)) => {
                let verified = request::after_response(
                    run, v, &vids.json, &vp, &res, latency, *status_id, rest, None,
                );
                if !verified {
                    ok = false;
                    // The listing proves a duplicate only when every
                    // replay was accepted (so one entry must exist) and
                    // it answered as expected with a JSON body its checks
                    // then disagree with; a failed listing is an error.
                    if status_ok && answered_json(&res, &v.status) {
                        let kind = Violation::IdempotencyViolations;
                        run.it.recorder.violation(kind, 1);
                        run.sample_violation(
                            kind,
                            "single entry",
                            "after the replays, the listing does not show a single entry".into(),
                            &vp,
                            &res,
                        );
                    }
                }
            }
            None => ok = false,
        }
    }
    ok
}

/// The replayed request rendered with its identity's credential; `None`
/// (its status check failed, why sampled) when it cannot be sent.
async fn authorised(rp: &Replay, step_ids: &ReplayIds, run: &mut StepRun<'_>) -> Option<Prepared> {
    let identity = run.identity;
    let Ok(auth) = auth::credential(run, identity).await else {
        run.it.recorder.check(step_ids.request.status, false);
        return None;
    };
    match request::prepare(run, &rp.request, auth) {
        Ok(p) => Some(p),
        Err(e) => {
            run.it.recorder.check(step_ids.request.status, false);
            run.sample("request", e, String::new(), String::new());
            None
        }
    }
}

/// Sends every copy of `p`, at once or one after another, recording each;
/// a 401 is no error when the token is `renewable` (it is renewed).
async fn send_copies(
    rp: &Replay,
    step_ids: &ReplayIds,
    run: &mut StepRun<'_>,
    p: &Prepared,
    renewable: bool,
) -> Vec<(Result<HttpResponse, HttpFailure>, std::time::Duration)> {
    let mut results = Vec::with_capacity(rp.times as usize);
    if rp.concurrent {
        // Each copy on its own connection, all in flight together.
        while run.user.spare.len() < rp.times as usize - 1 {
            run.user.spare.push(Connection::new());
        }
        let mut tasks = Vec::new();
        let conns = std::iter::once(std::mem::take(&mut run.user.conn))
            .chain(run.user.spare.drain(..rp.times as usize - 1));
        for mut conn in conns {
            let client = run.client.clone();
            let endpoint = run.j.endpoint.clone();
            let req = p.to_request();
            tasks.push(tokio::task::spawn_local(async move {
                let sent = Instant::now();
                let res = match req {
                    Ok(req) => client.send(&mut conn, &endpoint, req).await,
                    Err(e) => Err(HttpFailure {
                        cause: crate::metrics::ErrorCause::Other,
                        message: e,
                    }),
                };
                (conn, res, sent, Instant::now())
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let Ok((conn, res, sent, done)) = t.await else {
                continue;
            };
            if i == 0 {
                run.user.conn = conn;
            } else {
                run.user.spare.push(conn);
            }
            let outcome = outcome_of(&res);
            run.it.recorder.record_as(
                step_ids.request.metric,
                done - run.scheduled,
                done - sent,
                outcome,
                !(status_expected(&outcome, &rp.statuses)
                    || (renewable && outcome == crate::metrics::Outcome::Status(401))),
            );
            results.push((res, done - run.scheduled));
        }
    } else {
        for i in 0..rp.times {
            let scheduled = if i == 0 {
                run.scheduled
            } else {
                Instant::now()
            };
            results.push(
                run.send_renewable(
                    p,
                    step_ids.request.metric,
                    scheduled,
                    &rp.statuses,
                    renewable,
                )
                .await,
            );
        }
    }
    results
}

/// Whether replay answers prove a broken idempotency key: two accepted
/// answers carry different ids. Answers without an id (failed, not JSON) are
/// left out: they are errors, not evidence.
fn proves_duplicate(ids: &[Option<Value>]) -> bool {
    let mut seen = ids.iter().flatten();
    seen.next().is_some_and(|first| seen.any(|id| id != first))
}

/// Whether `res` answered one of `expected` (any 2xx when empty) with a body
/// that parses as JSON: a check failing on it speaks of the data, not of a
/// broken exchange.
fn answered_json(res: &Result<HttpResponse, HttpFailure>, expected: &[u16]) -> bool {
    res.as_ref().is_ok_and(|r| {
        let status_ok = if expected.is_empty() {
            (200..300).contains(&r.status)
        } else {
            expected.contains(&r.status)
        };
        status_ok && serde_json::from_slice::<serde::de::IgnoredAny>(&r.body).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorCause;
    use bytes::Bytes;

    fn answer(status: u16, body: &'static str) -> Result<HttpResponse, HttpFailure> {
        Ok(HttpResponse {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        })
    }

    fn refused() -> Result<HttpResponse, HttpFailure> {
        Err(HttpFailure {
            cause: ErrorCause::Refused,
            message: "connection refused".into(),
        })
    }

    #[test]
    fn only_two_ids_for_one_key_prove_a_duplicate() {
        let id = |n: u64| Some(Value::from(n));
        assert!(proves_duplicate(&[id(1), id(1), id(2)]));
        assert!(!proves_duplicate(&[id(1), id(1), id(1)]));
        // Failed replays and answers without an id prove nothing.
        assert!(!proves_duplicate(&[id(1), None, id(1)]));
        assert!(!proves_duplicate(&[None, None]));
        assert!(!proves_duplicate(&[]));
        assert!(answered_json(&answer(200, r#"{"count":2}"#), &[200]));
        assert!(!answered_json(&answer(200, r#"{"count":"#), &[200]));
        assert!(!answered_json(&answer(503, "{}"), &[200]));
        assert!(!answered_json(&refused(), &[200]));
    }
}
