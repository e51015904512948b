//! `convoy target` as a process: what it prints, how it refuses public
//! addresses, and its exit codes on Ctrl-C and on a `crash-after` death.

mod cli_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cli_support::{command, free_port};
use convoy::target::SEED_USERS;

fn convoy_target(args: &[&str]) -> Command {
    let mut command = command();
    command.arg("target").args(args);
    command
}

/// Starts `convoy target` on an ephemeral port and reads its banner.
fn start(args: &[&str]) -> (Child, SocketAddr, Vec<String>) {
    let mut child = convoy_target(&[&["--addr", "127.0.0.1:0"], args].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("convoy runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = Vec::new();
    // Address, faults, storage, the users' header, one line per user.
    for _ in 0..3 + 1 + SEED_USERS.len() {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("banner reads");
        banner.push(line.trim_end().to_string());
    }
    let addr = banner[0]
        .strip_prefix("convoy target listening on http://")
        .unwrap_or_else(|| panic!("unexpected banner: {banner:?}"))
        .parse()
        .expect("an address");
    (child, addr, banner)
}

/// `GET path` over a fresh connection; `None` if no answer came.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    (!answer.is_empty()).then_some(answer)
}

fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("status reads") {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("convoy target did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn prints_the_address_and_credentials_serves_and_exits_0_on_ctrl_c() {
    let (mut child, addr, banner) = start(&["--fault", "latency=1ms"]);
    assert_eq!(banner[1], "faults: latency=1ms");
    for user in SEED_USERS {
        assert!(
            banner
                .iter()
                .any(|line| line.contains(user.email) && line.contains(user.password)),
            "{} missing from {banner:#?}",
            user.email
        );
    }
    let answer = get(addr, "/health").expect("the target answers");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    assert_eq!(wait(&mut child).code(), Some(0));
}

#[test]
fn exits_4_when_crash_after_fires() {
    let (mut child, addr, banner) = start(&["--fault", "crash-after=2"]);
    assert_eq!(banner[1], "faults: crash-after=2");
    assert!(get(addr, "/health").is_some());
    assert!(get(addr, "/api/health").is_some());
    assert_eq!(
        get(addr, "/health"),
        None,
        "request 3 finds the target dead"
    );
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(4));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("crash-after"), "{stderr}");
}

#[test]
fn refuses_public_addresses_without_allow_public() {
    let output = convoy_target(&["--addr", "0.0.0.0:0"])
        .output()
        .expect("convoy runs");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--allow-public"), "{stderr}");
}

#[test]
fn bad_faults_are_usage_errors() {
    let output = convoy_target(&["--fault", "latancy=20ms"])
        .output()
        .expect("convoy runs");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did you mean \"latency\""), "{stderr}");
}

#[test]
fn an_unreachable_database_exits_4_and_never_shows_its_url() {
    // A loopback port that nobody listens on any more.
    let port = free_port();
    let url = format!("postgres://app:pw-never-shown@127.0.0.1:{port}/convoy");
    let out = convoy_target(&["--addr", "127.0.0.1:0"])
        .env("CONVOY_TARGET_DATABASE_URL", &url)
        .output()
        .expect("convoy runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot connect to the database at postgres://127.0.0.1:{port}/convoy"
        )),
        "{stderr}"
    );
    assert!(!stdout.contains("pw-never-shown") && !stderr.contains("pw-never-shown"));
}

#[test]
fn an_invalid_database_url_exits_3_without_repeating_it() {
    let out = convoy_target(&[
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        "postgres://app:pw-never-shown@127.0.0.1:notaport/convoy",
    ])
    .output()
    .expect("convoy runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("invalid database URL"), "{stderr}");
    assert!(!stderr.contains("pw-never-shown"), "{stderr}");
}
