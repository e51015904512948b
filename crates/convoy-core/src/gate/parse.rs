//! The gate parser: hand-written because the grammar is tiny and every
//! error must point at a column (see the grammar in the parent module).

use super::{Gate, GateError, Metric, Op, Scope, ScopeKind, Threshold, Unit};

/// A hand-written parser: the grammar is tiny and the errors must point at
/// a column.
pub(super) struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Parser { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn column_at(&self, byte: usize) -> usize {
        self.src[..byte].chars().count() + 1
    }

    fn error_at(&self, byte: usize, message: impl Into<String>) -> GateError {
        GateError {
            column: self.column_at(byte),
            message: message.into(),
            expression: self.src.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn found(&self) -> String {
        match self.rest().split_whitespace().next() {
            Some(w) => format!("found `{w}`"),
            None => "found the end of the gate".to_string(),
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> (usize, &'a str) {
        let start = self.pos;
        let len = self
            .rest()
            .char_indices()
            .find(|&(_, c)| !f(c))
            .map_or(self.rest().len(), |(i, _)| i);
        self.pos += len;
        (start, &self.src[start..self.pos])
    }

    pub(super) fn gate(&mut self) -> Result<Gate, GateError> {
        if self.src.is_empty() {
            return Err(self.error_at(0, "empty gate: expected something like `p95 < 500ms`"));
        }
        let scope_at = self.pos;
        let scope = self.scope()?;
        self.skip_ws();
        let metric = self.metric()?;
        if metric.run_level_only() && scope != Scope::Overall {
            return Err(self.error_at(
                scope_at,
                format!("`{metric}` is counted for the whole run only: drop `{scope}`"),
            ));
        }
        self.skip_ws();
        let op = self.op()?;
        self.skip_ws();
        let threshold_at = self.pos;
        let threshold = self.threshold(metric)?;
        let threshold_text = self.src[threshold_at..self.pos].trim().to_string();
        self.skip_ws();
        if !self.rest().is_empty() {
            return Err(self.error_at(
                self.pos,
                format!("unexpected `{}` after the threshold", self.rest()),
            ));
        }
        Ok(Gate {
            expression: self.src.to_string(),
            scope,
            metric,
            op,
            threshold,
            threshold_text,
        })
    }

    fn scope(&mut self) -> Result<Scope, GateError> {
        let rest = self.rest();
        let Some((kind, prefix)) = [
            (ScopeKind::Step, "step:"),
            (ScopeKind::Journey, "journey:"),
            (ScopeKind::Event, "event:"),
            (ScopeKind::Stream, "stream:"),
        ]
        .into_iter()
        .find(|(_, prefix)| rest.starts_with(prefix)) else {
            return Ok(Scope::Overall);
        };
        self.pos += prefix.len();
        // A bare `*` is every metric of the kind; a step really called `*`
        // is written quoted, `step:"*"`.
        if self
            .rest()
            .strip_prefix('*')
            .is_some_and(|after| after.starts_with(char::is_whitespace))
        {
            self.pos += 1;
            return Ok(Scope::Every(kind));
        }
        let name = if self.rest().starts_with('"') {
            let open = self.pos;
            self.pos += 1;
            let mut name = String::new();
            let mut chars = self.rest().char_indices();
            loop {
                match chars.next() {
                    None => {
                        return Err(self
                            .error_at(open, "unterminated quoted name: expected a closing `\"`"));
                    }
                    Some((i, '"')) => {
                        self.pos += i + 1;
                        break;
                    }
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => name.push(c),
                        None => {
                            return Err(self.error_at(
                                open,
                                "unterminated quoted name: expected a closing `\"`",
                            ));
                        }
                    },
                    Some((_, c)) => name.push(c),
                }
            }
            name
        } else {
            self.take_while(|c| !c.is_whitespace()).1.to_string()
        };
        if name.is_empty() {
            return Err(self.error_at(
                self.pos,
                format!(
                    "expected a name after `{prefix}` (quote it if it has spaces: {prefix}\"GET /health\")"
                ),
            ));
        }
        if !self.rest().starts_with(char::is_whitespace) {
            return Err(self.error_at(
                self.pos,
                format!("expected a space after `{prefix}{name}`, {}", self.found()),
            ));
        }
        Ok(kind.named(name))
    }

    fn metric(&mut self) -> Result<Metric, GateError> {
        let (at, word) = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        if word.is_empty() {
            return Err(self.error_at(
                at,
                format!("expected a metric ({}), {}", names.join(", "), self.found()),
            ));
        }
        Metric::from_name(word).ok_or_else(|| {
            let hint = match closest(word, &names) {
                Some(n) => format!("; did you mean `{n}`?"),
                None => String::new(),
            };
            self.error_at(
                at,
                format!(
                    "unknown metric `{word}`: expected one of {}{hint}",
                    names.join(", ")
                ),
            )
        })
    }

    fn op(&mut self) -> Result<Op, GateError> {
        let at = self.pos;
        let rest = self.rest();
        let (op, len) = if rest.starts_with("<=") {
            (Op::Le, 2)
        } else if rest.starts_with(">=") {
            (Op::Ge, 2)
        } else if rest.starts_with("==") {
            (Op::Eq, 2)
        } else if rest.starts_with("!=") {
            (Op::Ne, 2)
        } else if rest.starts_with('<') {
            (Op::Lt, 1)
        } else if rest.starts_with('>') {
            (Op::Gt, 1)
        } else if rest.starts_with('=') {
            return Err(self.error_at(at, "expected `==` for equality, found `=`"));
        } else {
            return Err(self.error_at(
                at,
                format!(
                    "expected an operator (<, <=, >, >=, ==, !=), {}",
                    self.found()
                ),
            ));
        };
        self.pos += len;
        Ok(op)
    }

    fn threshold(&mut self, metric: Metric) -> Result<Threshold, GateError> {
        if self.rest().starts_with("baseline") {
            self.pos += "baseline".len();
            self.skip_ws();
            if self.rest().is_empty() {
                return Ok(Threshold::Baseline { factor: 1.0 });
            }
            let at = self.pos;
            if !(self.rest().starts_with('*') || self.rest().starts_with('×')) {
                return Err(self.error_at(
                    at,
                    format!(
                        "expected `* FACTOR` after `baseline` (e.g. baseline * 1.10), {}",
                        self.found()
                    ),
                ));
            }
            self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
            self.skip_ws();
            let (num_at, value) = self.number("a factor such as 1.10")?;
            self.skip_ws();
            let (unit_at, unit) = self.take_while(|c| c.is_alphabetic() || c == '%' || c == '/');
            let factor = match unit {
                "" => value,
                "%" => value / 100.0,
                other => {
                    return Err(self.error_at(
                        unit_at,
                        format!(
                            "expected a plain factor (1.10) or a percentage (110%), found `{other}`"
                        ),
                    ));
                }
            };
            if factor <= 0.0 {
                return Err(self.error_at(num_at, "the baseline factor must be above 0"));
            }
            return Ok(Threshold::Baseline { factor });
        }
        let (num_at, value) = self.number(match metric.unit() {
            Unit::Millis => "a latency such as 500ms",
            Unit::Fraction => "a rate such as 1% or 0.01",
            Unit::PerSecond => "a rate such as 100 or 100/s",
            Unit::Count => "a whole number",
        })?;
        self.skip_ws();
        let (unit_at, unit) = self.take_while(|c| c.is_alphabetic() || c == '%' || c == '/');
        let bad_unit = |p: &Self, expected: &str| {
            Err(p.error_at(
                unit_at,
                format!("expected {expected} for `{metric}`, found `{unit}`"),
            ))
        };
        let v = match metric.unit() {
            Unit::Millis => match unit {
                "" | "ms" => value,
                "s" => value * 1000.0,
                "us" | "µs" => value / 1000.0,
                _ => return bad_unit(self, "a latency unit (us, ms, s)"),
            },
            Unit::Fraction => match unit {
                "%" => value / 100.0,
                "" if value <= 1.0 => value,
                "" => {
                    return Err(self.error_at(
                        num_at,
                        format!(
                            "a rate is a fraction (0.01) or a percentage (1%): did you mean {}%?",
                            &self.src[num_at..unit_at]
                        ),
                    ));
                }
                _ => return bad_unit(self, "`%` or a plain fraction"),
            },
            Unit::PerSecond => match unit {
                "" | "/s" | "rps" => value,
                _ => return bad_unit(self, "a plain number or `/s`"),
            },
            Unit::Count => match unit {
                "" if value.fract() == 0.0 => value,
                "" => {
                    return Err(
                        self.error_at(num_at, format!("expected a whole number for `{metric}`"))
                    );
                }
                _ => return bad_unit(self, "a plain whole number"),
            },
        };
        if metric.unit() == Unit::Fraction && v > 1.0 {
            return Err(self.error_at(num_at, "a rate cannot be above 100%"));
        }
        Ok(Threshold::Value(v))
    }

    fn number(&mut self, what: &str) -> Result<(usize, f64), GateError> {
        let (at, digits) = self.take_while(|c| c.is_ascii_digit() || c == '.' || c == '_');
        let clean = digits.replace('_', "");
        match clean.parse::<f64>() {
            Ok(v) if !clean.is_empty() && v.is_finite() => Ok((at, v)),
            _ => {
                self.pos = at;
                Err(self.error_at(at, format!("expected {what}, {}", self.found())))
            }
        }
    }
}

/// The candidate nearest to `word` by edit distance, if close enough to be
/// a likely typo.
fn closest<'b>(word: &str, candidates: &[&'b str]) -> Option<&'b str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
