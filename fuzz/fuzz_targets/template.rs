//! Templates are parsed from user text and rendered for every request: any
//! text parses or fails with an error inside the text, and whatever parses
//! renders without panicking.

#![no_main]

use convoy::scenario::template::{Part, RenderCtx, Resolve, Template};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Names a scenario might declare: two variables (one set, one unset at
/// render time) and one data column.
struct Names;

impl Resolve for Names {
    fn resolve(&self, name: &str) -> Result<Part, (String, Option<String>)> {
        match name {
            "order_id" => Ok(Part::Var(0)),
            "count" => Ok(Part::Var(1)),
            "unset" => Ok(Part::Var(2)),
            "data.city" => Ok(Part::Data(0)),
            _ => Err((format!("undefined variable {name:?}"), None)),
        }
    }

    fn env(&self, name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "t0k".to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Template::parse(text, &Names) {
        Ok(t) => {
            let vars = [Some(Value::from("o-1")), Some(Value::from(3)), None];
            let names = [
                "order_id".to_string(),
                "count".to_string(),
                "unset".to_string(),
            ];
            let row = [Value::from("Hamburg")];
            let ctx = RenderCtx {
                vu: 7,
                iteration: u64::MAX,
                vars: &vars,
                data: Some(&row),
                names: &names,
                ident: &[],
                ident_names: &[],
            };
            let rendered = t.render(&ctx);
            let _ = t.render_value(&ctx);
            if t.slots().all(|s| s != 2) {
                assert!(rendered.is_ok(), "{text:?}: {rendered:?}");
            }
            if let Some(lit) = t.as_literal() {
                assert_eq!(rendered.as_deref(), Ok(lit));
            }
            // Without a data row, data columns are unset, not a panic.
            let _ = t.render(&RenderCtx { data: None, ..ctx });
        }
        Err(e) => {
            assert!(
                e.offset <= text.len(),
                "offset {} past {}",
                e.offset,
                text.len()
            );
            assert!(e.offset + e.len <= text.len() + 2, "{e:?} in {text:?}");
            assert!(!e.message.is_empty());
        }
    }
});
