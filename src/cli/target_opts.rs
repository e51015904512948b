//! Where `run` and `smoke` send their requests, and how they talk to it:
//! the `--target` options and the one rule that picks the target.
//!
//! The rule (README, "Where requests go"):
//!
//! 1. `--target URL` (or `CONVOY_TARGET`) names the target; it overrides
//!    every scenario's `base_url` (a note says so when one differs).
//! 2. Otherwise the scenarios' `base_url` names it. Every scenario of the
//!    run must then name the same one: a run has one target, which the
//!    allow-list judges and every report names. Scenarios that name
//!    different ones, or some naming one and some none, are refused
//!    (exit 3) before anything starts.
//! 3. When neither names a target, the built-in reference API starts on a
//!    loopback port and is tested.
//!
//! Each report says which it was (`target_source`), in every format and in
//! the header of the terminal summary, `-q` and `--json` included.

use std::time::Duration;

use super::CliError;
use crate::plan::{HttpOptions, HttpVersion, parse_duration};
use crate::report::TargetSource;
use crate::scenario::Scenario;
use crate::target::{self, RunningTarget, TargetConfig};
use crate::target_url::TargetUrl;

/// Options shared by `run` and `smoke`: where, and how to talk to it.
#[derive(Debug, clap::Args)]
pub struct TargetOpts {
    /// Base URL of the API under test; overrides the scenarios' base_url.
    /// Step paths are joined to its path once (`--target https://h/api`:
    /// `/orders` and `/api/orders` both go to `/api/orders`). With neither
    /// this nor a base_url, the built-in reference API is started on a
    /// loopback port and tested.
    #[arg(long, env = "CONVOY_TARGET")]
    pub target: Option<String>,
    /// Time allowed for one whole request.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Time allowed to connect.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub connect_timeout: Duration,
    /// HTTP version.
    #[arg(long = "http", default_value = "1.1", value_parser = super::http_version_parser())]
    pub http_version: HttpVersion,
    /// Accept invalid TLS certificates.
    #[arg(long)]
    pub insecure: bool,
    /// Allow a load heavier than smoke against this host (repeatable, or
    /// comma-separated in CONVOY_ALLOW_HOST; a pasted URL counts as its
    /// host). Loopback is always allowed; any other host must be named here,
    /// so a production system is never loaded by mistake.
    #[arg(long = "allow-host", env = "CONVOY_ALLOW_HOST", value_delimiter = ',')]
    pub allow_hosts: Vec<String>,
}

/// The target a run tests, and where it came from.
pub(crate) struct Resolved {
    /// Its base URL.
    pub url: url::Url,
    /// `--target`, the scenarios' `base_url`, or the built-in API.
    pub source: TargetSource,
    /// The built-in reference API, kept running while this lives.
    pub embedded: Option<RunningTarget>,
}

impl TargetOpts {
    /// Refuses timeouts no request could meet.
    pub(crate) fn validate(&self) -> Result<(), CliError> {
        if self.timeout.is_zero() {
            return Err(CliError::usage(
                "--timeout must be above 0: every request would time out",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(CliError::usage(
                "--connect-timeout must be above 0: no connection could be made",
            ));
        }
        Ok(())
    }

    pub(crate) fn http(&self) -> HttpOptions {
        HttpOptions {
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            version: self.http_version,
            insecure: self.insecure,
            ..HttpOptions::default()
        }
    }

    /// The target of a run over `scenarios`, by the rule of this module,
    /// starting the built-in reference API when nothing names a target.
    /// Notes go to stderr unless `quiet`; the report's header says the
    /// same in every mode.
    pub(crate) fn resolve(
        &self,
        scenarios: &[Scenario],
        quiet: bool,
    ) -> Result<Resolved, CliError> {
        if let Some(t) = &self.target {
            let url = parse_target(t)?;
            let overridden = scenarios.iter().find_map(|s| {
                s.base_url
                    .as_ref()
                    .filter(|b| !same(b, &url))
                    .map(|b| (&s.name, b))
            });
            if !quiet && let Some((s, b)) = overridden {
                crate::errln!(
                    "convoy: note: --target {} overrides the base_url {} of scenario \"{s}\"",
                    crate::redact::redact_url(&url),
                    crate::redact::redact_url(b)
                );
            }
            return Ok(Resolved {
                url,
                source: TargetSource::Flag,
                embedded: None,
            });
        }
        match scenario_target(scenarios)? {
            Some(Some((_, url))) => {
                if !quiet {
                    crate::errln!(
                        "convoy: testing {} (the scenarios' base_url)",
                        crate::redact::redact_url(&url)
                    );
                }
                Ok(Resolved {
                    url,
                    source: TargetSource::BaseUrl,
                    embedded: None,
                })
            }
            Some(None) | None => {
                let running = target::spawn(TargetConfig::default()).map_err(|e| {
                    CliError::aborted(format!("cannot start the reference target: {e}"))
                })?;
                let url: url::Url = running
                    .base_url()
                    .parse()
                    .expect("the target's URL is valid");
                if !quiet {
                    crate::errln!(
                        "convoy: no --target and no base_url given: testing the built-in reference API at {url}"
                    );
                }
                Ok(Resolved {
                    url,
                    source: TargetSource::Builtin,
                    embedded: Some(running),
                })
            }
        }
    }
}

/// `--target`'s URL, which must be http or https with a host.
fn parse_target(t: &str) -> Result<url::Url, CliError> {
    let url: url::Url = t.parse().map_err(|e| {
        let t = crate::redact::redact_typed(t);
        CliError::usage(format!("invalid --target {t:?}: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CliError::usage(format!(
            "invalid --target {:?}: the scheme must be http or https",
            crate::redact::redact_typed(t)
        )));
    }
    TargetUrl::new(&url).map_err(|e| {
        CliError::usage(format!(
            "invalid --target {:?}: {e}",
            crate::redact::redact_typed(t)
        ))
    })?;
    Ok(url)
}

fn same(a: &url::Url, b: &url::Url) -> bool {
    match (TargetUrl::new(a), TargetUrl::new(b)) {
        (Ok(a), Ok(b)) => a.same_as(&b),
        _ => a == b,
    }
}

/// The target the scenarios name: `None` when there are none, `Some(None)`
/// when none names one, `Some(Some((scenario, url)))` when every one names
/// the same; an error when they disagree (two URLs, or some naming one and
/// some none).
fn scenario_target(scenarios: &[Scenario]) -> Result<Option<Option<(String, url::Url)>>, CliError> {
    let Some(first) = scenarios.first() else {
        return Ok(None);
    };
    let describe = |s: &Scenario| match &s.base_url {
        Some(u) => format!(
            "scenario \"{}\" ({}) names base_url {}",
            s.name,
            s.source.display(),
            crate::redact::redact_url(u)
        ),
        None => format!(
            "scenario \"{}\" ({}) names no base_url",
            s.name,
            s.source.display()
        ),
    };
    for s in &scenarios[1..] {
        let agree = match (&first.base_url, &s.base_url) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        };
        if !agree {
            return Err(CliError::usage(format!(
                "the scenarios name different targets: {}, and {}. A run tests one target: \
                 pass --target URL, or run them separately",
                describe(first),
                describe(s)
            )));
        }
    }
    Ok(Some(
        first.base_url.clone().map(|u| (first.name.clone(), u)),
    ))
}
