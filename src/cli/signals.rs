//! Ctrl-C and SIGTERM: the first asks the run to stop (in-flight requests get
//! their grace period and a partial report is written); the second exits at
//! once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::engine::RunControl;

/// Exit status on a second Ctrl-C, as shells report SIGINT.
const HARD_EXIT: i32 = 130;

/// Starts a thread that turns signals into [`RunControl::stop`].
pub fn install(control: RunControl, quiet: bool) {
    let count = Arc::new(AtomicU32::new(0));
    let spawned = std::thread::Builder::new()
        .name("convoy-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                #[cfg(unix)]
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                loop {
                    #[cfg(unix)]
                    let term_fut = async {
                        match term.as_mut() {
                            Some(t) => {
                                t.recv().await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    #[cfg(not(unix))]
                    let term_fut = std::future::pending::<()>();
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => if r.is_err() { return },
                        _ = term_fut => {}
                    }
                    if count.fetch_add(1, Ordering::SeqCst) == 0 {
                        if !quiet {
                            crate::errln!(
                                "\nconvoy: stopping: letting requests in flight finish, then writing a partial report (press Ctrl-C again to quit now)"
                            );
                        }
                        control.stop();
                    } else {
                        crate::errln!("\nconvoy: quitting at once; no report written");
                        std::process::exit(HARD_EXIT);
                    }
                }
            });
        });
    if let Err(e) = spawned {
        crate::errln!("convoy: warning: cannot watch for Ctrl-C: {e}");
    }
}
