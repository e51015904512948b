//! The drafted `profiles.toml`: light, moderate and heavy load with the SLA
//! defaults the platforms convoy serves write in their launch checklists
//! (light 5 users × 10 requests under 500 ms, moderate 20 × 10 under 1 s,
//! heavy 100 × 5 under 2 s, and a p95 under 200 ms where a platform asks
//! for one), each gate also holding the suite's own violations at zero
//! when it drafted the journeys that count them.

use std::fmt::Write as _;

use super::toml_text::comment;

/// What the suite drafted that a gate can hold at zero.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counted {
    /// A tenant-isolation journey was drafted.
    pub(super) isolation: bool,
    /// An idempotent-replay journey was drafted.
    pub(super) replay: bool,
}

/// `(name, users, iterations, gates, why)`.
const PROFILES: [(&str, u32, u32, &[&str], &str); 4] = [
    (
        "light",
        5,
        10,
        &["p95 < 500ms", "error_rate == 0%", "checks == 100%"],
        "light load: 5 users × 10 requests, < 500 ms, 100 % success",
    ),
    (
        "moderate",
        20,
        10,
        &["p95 < 1s", "error_rate < 1%"],
        "moderate load: 20 users × 10 requests, < 1000 ms, > 99 % success",
    ),
    (
        "heavy",
        100,
        5,
        &["p95 < 2s", "error_rate < 5%"],
        "heavy load: 100 users × 5 requests, < 2000 ms, > 95 % success",
    ),
    (
        "launch",
        20,
        10,
        &["p95 < 200ms", "error_rate < 0.1%", "checks == 100%"],
        "a launch checklist's success metrics: p95 < 200 ms, error rate < 0.1 %",
    ),
];

/// The profiles file; `header` says which document the suite came from.
pub(super) fn profiles(header: &str, counted: Counted) -> String {
    let mut s = comment(header);
    s.push_str(
        "# Load profiles for this suite. The OpenAPI document states no load or\n\
         # latency targets, so these are convoy's defaults, taken from the launch\n\
         # checklists of logistics platforms; change them to your SLA.\n\
         #   convoy run . --profiles profiles.toml --profile moderate --target URL\n\
         # Load heavier than a smoke goes only to loopback or to hosts named with\n\
         # --allow-host. convoy leaves this file out when it runs the folder.\n",
    );
    for (name, users, iterations, gates, why) in PROFILES {
        let mut all: Vec<String> = gates.iter().map(|g| format!("\"{g}\"")).collect();
        if counted.isolation {
            all.push("\"tenant_isolation_violations == 0\"".into());
        }
        if counted.replay {
            all.push("\"idempotency_violations == 0\"".into());
        }
        let _ = writeln!(
            s,
            "\n# {why}.\n[profile.{name}]\nusers = {users}\niterations = {iterations}\ngates = [{}]",
            all.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_with_their_gates() {
        let text = profiles(
            "x\n",
            Counted {
                isolation: true,
                replay: false,
            },
        );
        let got: toml::Table = text.parse().unwrap();
        let names: Vec<&String> = got["profile"].as_table().unwrap().keys().collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(got["profile"]["heavy"]["users"].as_integer(), Some(100));
        assert!(text.contains("tenant_isolation_violations == 0"));
        assert!(!text.contains("idempotency_violations"));
    }
}
