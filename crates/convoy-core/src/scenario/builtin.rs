//! The built-in scenarios, compiled into the binary from `scenarios/*.toml`
//! so `convoy run` works on a fresh machine. They target the reference API
//! (`convoy target`) and any API shaped like it.

use std::path::PathBuf;

use super::Diagnostic;
use super::journey::Scenario;
use super::parse::{self, EnvScope};

/// Built-in scenario names, in the order `convoy run` runs them.
pub const NAMES: &[&str] = &[
    "health",
    "login",
    "order-lifecycle",
    "idempotent-replay",
    "tenant-isolation",
    "dispatch",
    "realtime",
    "realtime-ws",
];

/// The source text of a built-in scenario.
pub fn source(name: &str) -> Option<&'static str> {
    Some(match name {
        "health" => include_str!("../../../../scenarios/health.toml"),
        "login" => include_str!("../../../../scenarios/login.toml"),
        "order-lifecycle" => include_str!("../../../../scenarios/order-lifecycle.toml"),
        "idempotent-replay" => include_str!("../../../../scenarios/idempotent-replay.toml"),
        "tenant-isolation" => include_str!("../../../../scenarios/tenant-isolation.toml"),
        "dispatch" => include_str!("../../../../scenarios/dispatch.toml"),
        "realtime" => include_str!("../../../../scenarios/realtime.toml"),
        "realtime-ws" => include_str!("../../../../scenarios/realtime-ws.toml"),
        _ => return None,
    })
}

/// Compiles a built-in scenario by name.
pub fn get(name: &str) -> Option<Result<Scenario, Diagnostic>> {
    let text = source(name)?;
    let path = PathBuf::from(format!("scenarios/{name}.toml"));
    Some(parse::parse(&path, text, &EnvScope))
}

/// Every built-in scenario, compiled.
pub fn all() -> Result<Vec<Scenario>, Diagnostic> {
    NAMES
        .iter()
        .map(|n| get(n).expect("every name has a source"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_compiles() {
        for name in super::NAMES {
            if let Err(e) = super::get(name).unwrap() {
                panic!("built-in {name} does not compile:\n{e}");
            }
        }
    }
}
