//! The `custom` kind: `custom = "NAME"` runs the journey registered under
//! that name in the [`CustomRegistry`](crate::scenario::CustomRegistry)
//! (see `scenario/custom.rs` for the API such journeys are written
//! against). Its requests record under the step's metric; the step passes
//! when the journey returns `Ok`.

use toml::Spanned;

use crate::engine::StepKind;
use crate::scenario::compile::{Compiler, StepTable};
use crate::scenario::custom::CustomCtx;
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::step_run::StepRun;

/// A step that runs a journey written in Rust.
#[derive(Debug, Clone)]
pub struct Custom {
    /// The name it is registered under.
    pub name: String,
}

impl<S: StepTable> Compile<S> for Custom {
    type Table = String;

    const WHAT: &'static str = "a custom step";
    // The journey in Rust sends its own requests.
    const STEP_KEYS: &'static [&'static str] = &[];

    fn unused_hint(_key: &str) -> Option<String> {
        Some("a custom journey builds its own requests in Rust: remove it".into())
    }

    fn compile(
        _c: &Compiler<'_>,
        _step: &Spanned<S>,
        table: &Spanned<String>,
    ) -> Result<Self, Diagnostic> {
        Ok(Custom {
            name: table.get_ref().clone(),
        })
    }

    fn default_name(&self, _step: &S) -> String {
        self.name.clone()
    }
}

/// Metric and check ids of a custom step.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomIds {
    /// The metric its requests record under.
    pub metric: usize,
    /// "custom journey NAME succeeds".
    pub status: usize,
}

impl Kind for Custom {
    type Ids = CustomIds;

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<CustomIds, String> {
        let name = r.qualify(step);
        let c = &self.name;
        if !r.custom.contains(c) {
            return Err(format!(
                "step \"{step}\" uses custom journey \"{c}\", which is not registered"
            ));
        }
        let metric = r.step(name.clone(), StepKind::Request);
        let status = r.check(&name, format!("custom journey {c} succeeds"));
        Ok(CustomIds { metric, status })
    }

    /// A journey in Rust makes any number of requests.
    fn max_requests(&self) -> Option<u64> {
        None
    }

    /// A journey in Rust sends its own requests and logs nobody in.
    fn max_logins(&self) -> u64 {
        0
    }

    async fn execute(&self, ids: &CustomIds, run: &mut StepRun<'_>) -> bool {
        let name = &self.name;
        let journey = run
            .shared
            .custom
            .get(name)
            .expect("checked at load")
            .clone();
        let ctx = CustomCtx {
            client: run.client,
            conn: &mut run.user.conn,
            endpoint: &run.j.endpoint,
            target: &run.j.target,
            recorder: run.it.recorder,
            step: ids.metric,
            vu: run.it.vu,
            iteration: run.it.index,
        };
        let r = journey.run(ctx).await;
        run.it.recorder.check(ids.status, r.is_ok());
        if let Err(e) = &r {
            run.sample(
                &format!("custom journey {name}"),
                e.clone(),
                String::new(),
                String::new(),
            );
        }
        r.is_ok()
    }
}
