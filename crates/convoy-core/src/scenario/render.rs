//! Rendering templates into what is sent and compared: JSON bodies written
//! straight from their [`JsonTemplate`] tree, JSON values for checks, and
//! query components. Per-request work, so it avoids building values it
//! only writes out.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;

use super::model::JsonTemplate;
use super::template::{RenderCtx, Unset};

/// The value a check expects: borrowed when the scenario fixed it or it is
/// one variable, rendered otherwise.
pub(crate) fn expected_json<'c>(
    t: &'c JsonTemplate,
    ctx: &'c RenderCtx<'_>,
) -> Result<Cow<'c, Value>, Unset> {
    match t {
        JsonTemplate::Fixed(v) => Ok(Cow::Borrowed(v)),
        JsonTemplate::Text(t) => match t.as_var() {
            Some(slot) => ctx
                .vars
                .get(slot)
                .and_then(Option::as_ref)
                .map(Cow::Borrowed)
                .ok_or_else(|| Unset(ctx.names.get(slot).cloned().unwrap_or_default())),
            None => t.render_value(ctx).map(Cow::Owned),
        },
        _ => render_json(t, ctx).map(Cow::Owned),
    }
}

/// The JSON value of `t`, rendered.
pub(crate) fn render_json(t: &JsonTemplate, ctx: &RenderCtx<'_>) -> Result<Value, Unset> {
    Ok(match t {
        JsonTemplate::Fixed(v) => v.clone(),
        JsonTemplate::Text(t) => t.render_value(ctx)?,
        JsonTemplate::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render_json(i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        JsonTemplate::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, ctx)?)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Writes the JSON of `t` to `out`, as `render_json` then `to_vec` would
/// but without building the value first; object keys keep the order the
/// scenario gives them.
pub(crate) fn write_json(
    t: &JsonTemplate,
    ctx: &RenderCtx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Unset> {
    // Writing JSON to a Vec cannot fail.
    match t {
        JsonTemplate::Fixed(v) => serde_json::to_writer(&mut *out, v).expect("JSON serialises"),
        JsonTemplate::Text(t) => {
            serde_json::to_writer(&mut *out, &t.render_value(ctx)?).expect("JSON serialises")
        }
        JsonTemplate::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, ctx, out)?;
            }
            out.push(b']');
        }
        JsonTemplate::Object(fields) => {
            out.push(b'{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k.as_str()).expect("JSON serialises");
                out.push(b':');
                write_json(v, ctx, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Percent-encodes a query key or value (everything but unreserved
/// characters) onto `out`.
pub(crate) fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_written_as_their_rendered_value_in_the_scenarios_key_order() {
        use super::super::template::{Part, Resolve, Template};
        struct Scope;
        impl Resolve for Scope {
            fn resolve(&self, name: &str) -> Result<Part, (String, Option<String>)> {
                match name {
                    "id" => Ok(Part::Var(0)),
                    "n" => Ok(Part::Var(1)),
                    _ => Err((format!("undefined variable {name:?}"), None)),
                }
            }
        }
        let text = |t: &str| JsonTemplate::Text(Template::parse(t, &Scope).unwrap());
        let body = JsonTemplate::Object(vec![
            ("z".into(), text("PO-{{ vu }}-{{ iteration }}")),
            ("id".into(), text("{{ id }}")),
            ("n".into(), text("{{ n }}")),
            ("vu".into(), text("{{ vu }}")),
            (
                "a \"quoted\" key".into(),
                JsonTemplate::Array(vec![
                    JsonTemplate::Fixed(serde_json::json!({"x": [1.5, null, true]})),
                    text("line\nbreak \u{1} é"),
                    JsonTemplate::Array(vec![]),
                    JsonTemplate::Object(vec![]),
                ]),
            ),
        ]);
        let vars = vec![
            Some(Value::from("ord-\"7\"")),
            Some(serde_json::json!({"deep": [1, 2]})),
        ];
        let names = vec!["id".to_string(), "n".to_string()];
        let ctx = RenderCtx {
            vu: 3,
            iteration: 9,
            vars: &vars,
            data: None,
            names: &names,
            ident: &[],
            ident_names: &[],
        };
        let mut out = Vec::new();
        write_json(&body, &ctx, &mut out).unwrap();
        let written: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(written, render_json(&body, &ctx).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(r#"{"z":"PO-3-9","id":"ord-\"7\"","n":{"deep":[1,2]},"vu":3,"#),
            "{text}"
        );

        let unset = JsonTemplate::Array(vec![text_unset()]);
        fn text_unset() -> JsonTemplate {
            struct Only;
            impl Resolve for Only {
                fn resolve(&self, _: &str) -> Result<Part, (String, Option<String>)> {
                    Ok(Part::Var(0))
                }
            }
            JsonTemplate::Text(Template::parse("{{ later }}", &Only).unwrap())
        }
        let empty = vec![None];
        let ctx = RenderCtx {
            vars: &empty,
            names: &names[..1],
            ..ctx
        };
        assert_eq!(
            write_json(&unset, &ctx, &mut Vec::new()).unwrap_err().0,
            "id"
        );
    }

    #[test]
    fn query_components_are_encoded() {
        let mut s = String::new();
        encode_component("a b&c=d/é", &mut s);
        assert_eq!(s, "a%20b%26c%3Dd%2F%C3%A9");
    }
}
