//! `convoy run --wait-healthy`: a run (a shard, a CI job) started before its
//! target answers waits for the health endpoint, within a deadline, instead
//! of failing at once.

mod cli_support;

use std::process::Output;
use std::time::Duration;

use cli_support::{KillOnDrop, command, free_port, text};

/// `convoy target` on `port`, killed when the test ends.
fn start_target(port: u16) -> KillOnDrop {
    KillOnDrop(
        command()
            .args(["target", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn run(port: u16, extra: &[&str]) -> Output {
    command()
        .args(["run", "health", "--profile", "smoke", "--no-reports"])
        .arg("--target")
        .arg(format!("http://127.0.0.1:{port}/"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_target_that_never_answers_ends_the_wait_at_its_deadline_with_exit_4() {
    let port = free_port();
    let o = run(port, &["--wait-healthy", "1s"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("did not become healthy within 1s"),
        "{}",
        text(&o)
    );
    assert!(err.contains("/health"), "{}", text(&o));
}

#[test]
fn a_run_started_before_its_target_waits_for_it_and_passes() {
    let port = free_port();
    // Without the wait, the same run fails at once: nothing answers yet.
    let early = run(port, &[]);
    assert_eq!(early.status.code(), Some(4), "{}", text(&early));

    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        start_target(port)
    });
    let o = run(port, &["--wait-healthy", "60s"]);
    let _target = starter.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("waiting up to 1m for http://127.0.0.1:"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_health_path_that_never_answers_200_keeps_waiting_until_the_deadline() {
    let port = free_port();
    let _target = start_target(port);
    // /nowhere answers 404 on the reference target.
    let o = run(port, &["--wait-healthy", "5s", "--health-path", "/nowhere"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("status 404"),
        "{}",
        text(&o)
    );
}
