//! `convoy target`: serve the built-in reference logistics API, optionally
//! with faults, until Ctrl-C or SIGTERM.
//!
//! The target has well-known credentials and can be told to misbehave, so it
//! listens on loopback unless `--allow-public` says otherwise. With
//! `--database-url` (or `CONVOY_TARGET_DATABASE_URL`) it keeps its data in
//! PostgreSQL instead of memory; the URL is never printed. Exit codes: 0
//! after Ctrl-C or SIGTERM, 3 for a refused address, an invalid database URL
//! or a fault that does not apply, 4 when the target cannot start (the
//! database unreachable or not set up) or dies of its `crash-after` fault.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::Exit;
use crate::plan::parse_duration;
use crate::target::{self, DatabaseUrl, Fault, SEED_USERS, TargetConfig};

/// Arguments of `convoy target`.
#[derive(Debug, clap::Args)]
#[command(after_help = FAULT_HELP)]
pub struct TargetArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Allow listening on a non-loopback address. The target's credentials
    /// are public and its secret is a development one: expose it with care.
    #[arg(long)]
    pub allow_public: bool,

    /// Inject a fault (repeatable, or a comma-separated list); see the list
    /// below.
    #[arg(long = "fault", value_name = "NAME[=VALUE]", value_delimiter = ',')]
    pub faults: Vec<Fault>,

    /// Secret for signing tokens (HS256).
    #[arg(
        long,
        value_name = "SECRET",
        env = "CONVOY_TARGET_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// Lifetime of issued tokens.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub token_ttl: Duration,

    /// Most orders kept per tenant in memory (default 100000); the oldest are
    /// forgotten beyond it. Not with --database-url, which keeps them all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_orders: Option<u32>,

    /// Keep the data in this PostgreSQL database instead of memory
    /// (postgres://USER:PASSWORD@HOST:PORT/DATABASE). Its schema is migrated
    /// at startup; requests run as the role convoy_app under row-level
    /// security. The URL is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "CONVOY_TARGET_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<DatabaseUrl>,

    /// Most connections to the database at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub database_connections: u16,

    /// Worker threads of the server's runtime.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
}

const FAULT_HELP: &str = "\
Faults (--fault NAME[=VALUE], repeatable):
  latency=20ms | latency=10ms..50ms   extra latency on every request (uniform for a range)
  error-rate=0.05                     that fraction of requests answer 500 or 503
  stall=1s@5s                         5s after start, requests hang for 1s (GC pause, SIGSTOP)
  tenant-leak=0.05                    that fraction of cross-tenant order reads answer 200
  idempotency-race                    Idempotency-Key is not enforced: replays duplicate orders
  slow-body=20ms | slow-body=64/20ms  bodies trickle out, 32 (or 64) bytes every 20ms
  truncated-body                      bodies are cut halfway through their Content-Length
  crash-after=1000                    the target dies at request 1001 (exit code 4)
  auth-accept-expired                 tokens whose exp has passed are accepted (signature still checked)
  auth-accept-alg-none                tokens under alg: none are accepted unsigned
  auth-accept-foreign-key             token signatures are not checked: any key's token is accepted
  event-delay=50ms | =20ms..80ms      events reach stream subscribers that long after the write
  event-drop=0.1                      each subscriber misses that fraction of events
  event-leak=0.05                     that fraction of events also goes to another tenant's subscribers
  stream-close=30s                    /events and /ws are closed by the server that long after opening
Several faults: repeat --fault, or list them: --fault auth-accept-expired,auth-accept-alg-none.
latency, error-rate, stall and crash-after apply to /health too.
With --database-url, idempotency-race does not apply (the database's unique key refuses
duplicates) and tenant-leak reads with the other tenant set on the transaction, a wrong
tenant context that row-level security cannot tell from a right one.";

/// Runs `convoy target`.
pub fn run(args: TargetArgs) -> anyhow::Result<ExitCode> {
    if !args.addr.ip().is_loopback() && !args.allow_public {
        crate::errln!(
            "error: refusing to listen on {}: the reference target has public credentials and injects faults; \
             use a loopback address such as 127.0.0.1:8080, or pass --allow-public",
            args.addr
        );
        return Ok(Exit::Usage.into());
    }
    if args.database_url.is_some() && args.max_orders.is_some() {
        crate::errln!(
            "error: --max-orders bounds the memory backend only; with --database-url the database keeps every order"
        );
        return Ok(Exit::Usage.into());
    }
    let mut config = TargetConfig {
        faults: args.faults,
        token_ttl: args.token_ttl,
        worker_threads: usize::from(args.threads),
        max_orders_per_tenant: args
            .max_orders
            .map_or(TargetConfig::default().max_orders_per_tenant, |n| {
                n as usize
            }),
        database: args.database_url,
        database_connections: usize::from(args.database_connections),
        ..TargetConfig::default()
    };
    if let Some(secret) = args.jwt_secret {
        config.jwt_secret = secret;
    }
    if let Err(e) = config.validate() {
        crate::errln!("error: {e}");
        return Ok(Exit::Usage.into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .thread_name("convoy-target-worker")
        .enable_all()
        .build()
        .context("cannot start the target's runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let faults = config.faults.clone();
        let prepared = match target::prepare(config).await {
            Ok(prepared) => prepared,
            Err(e) if e.is_usage() => {
                crate::errln!("error: {e}");
                return Ok(Exit::Usage.into());
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context("the reference target cannot start"));
            }
        };
        crate::outln!("{}", banner(addr, &faults, &prepared.storage()));
        tokio::select! {
            served = prepared.serve(listener) => {
                served.context("the reference target stopped")?;
                Ok(Exit::Pass.into())
            }
            () = shutdown_signal() => {
                crate::errln!("convoy target: stopped");
                Ok(Exit::Pass.into())
            }
        }
    })
}

/// What `convoy target` prints on start: the address, the active faults,
/// where the data lives and one line per seeded user.
fn banner(addr: SocketAddr, faults: &[Fault], storage: &str) -> String {
    let mut lines = vec![format!("convoy target listening on http://{addr}")];
    if faults.is_empty() {
        lines.push("faults: none".to_string());
    } else {
        let faults: Vec<String> = faults.iter().map(ToString::to_string).collect();
        lines.push(format!("faults: {}", faults.join(" ")));
    }
    lines.push(format!("storage: {storage}"));
    lines.push("seeded users (POST /api/auth/login {\"email\",\"password\"}):".to_string());
    for user in SEED_USERS {
        lines.push(format!(
            "  {:<7} {:<10} {:<23} {:<12} {}",
            user.tenant,
            user.role.as_str(),
            user.email,
            user.password,
            user.id
        ));
    }
    lines.join("\n")
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: TargetArgs,
    }

    fn parse(args: &[&str]) -> Result<TargetArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("target").chain(args.iter().copied()))
            .map(|w| w.args)
    }

    #[test]
    fn defaults_are_loopback_and_no_faults() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.addr, "127.0.0.1:8080".parse().unwrap());
        assert!(args.faults.is_empty());
        assert_eq!(args.token_ttl, Duration::from_secs(3600));
    }

    #[test]
    fn faults_repeat_and_parse() {
        let args = parse(&["--fault", "latency=20ms", "--fault", "crash-after=5"]).unwrap();
        assert_eq!(args.faults.len(), 2);
        assert_eq!(args.faults[1], Fault::CrashAfter(5));
    }

    #[test]
    fn bad_faults_are_usage_errors_that_explain() {
        let err = parse(&["--fault", "error-rate=2"]).unwrap_err();
        assert!(err.to_string().contains("between 0 and 1"), "{err}");
    }

    #[test]
    fn public_addresses_are_refused_without_the_flag() {
        let args = parse(&["--addr", "0.0.0.0:0"]).unwrap();
        assert_eq!(run(args).unwrap(), ExitCode::from(Exit::Usage as u8));
    }

    #[test]
    fn database_urls_come_from_the_flag_or_the_environment_and_never_print() {
        let args = parse(&["--database-url", "postgres://u:pw@127.0.0.1:5432/db"]).unwrap();
        let url = args.database_url.as_ref().unwrap();
        assert_eq!(url.expose_secret(), "postgres://u:pw@127.0.0.1:5432/db");
        assert!(!format!("{args:?}").contains("pw"), "{args:?}");
    }

    #[test]
    fn database_mistakes_are_usage_errors() {
        for args in [
            &["--database-url", "postgres://u:pw@127.0.0.1:notaport/db"][..],
            &[
                "--database-url",
                "postgres://127.0.0.1/db",
                "--fault",
                "idempotency-race",
            ],
            &[
                "--database-url",
                "postgres://127.0.0.1/db",
                "--max-orders",
                "10",
            ],
        ] {
            let args = parse(args).unwrap();
            assert_eq!(run(args).unwrap(), ExitCode::from(Exit::Usage as u8));
        }
    }

    #[test]
    fn banner_lists_every_seeded_user() {
        let banner = banner("127.0.0.1:8080".parse().unwrap(), &[], "memory");
        assert!(banner.starts_with("convoy target listening on http://127.0.0.1:8080"));
        assert!(banner.contains("\nstorage: memory\n"), "{banner}");
        for user in SEED_USERS {
            assert!(banner.contains(user.email), "{}", user.email);
        }
    }
}
