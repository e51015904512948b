//! Fitting the terminal summary to a screen's width: tables that give up
//! their least useful columns first and then shorten their names in the
//! middle, and prose lines that wrap under their own indent.
//!
//! Width is counted in characters (the tables' box drawing, `–` and `…`
//! are one column each). `None` means "no limit": output to a file or a
//! pipe stays whole, as the report files are.

use tabled::builder::Builder;
use tabled::settings::object::{Columns, Rows};
use tabled::settings::{Alignment, Modify, Style};

/// The narrowest width convoy fits to; a smaller `COLUMNS` is taken as
/// this, since no table is readable below it.
pub const MIN_WIDTH: usize = 40;

/// Names are shortened to this many characters before any column is left
/// out...
const SOFT_NAME: usize = 24;

/// ...and never below this many.
const MIN_NAME: usize = 10;

/// One column of a fitted table.
#[derive(Debug, Clone)]
pub struct Col {
    /// The header.
    pub header: String,
    /// Numbers are right-aligned.
    pub right: bool,
    /// When the table is too wide, columns with a higher rank are left out
    /// first; rank 0 is never left out.
    pub drop_rank: u8,
}

impl Col {
    /// A column that stays however narrow the screen.
    pub fn kept(header: &str, right: bool) -> Self {
        Col {
            header: header.to_string(),
            right,
            drop_rank: 0,
        }
    }

    /// A column left out (highest rank first) when the table is too wide.
    pub fn droppable(header: &str, rank: u8) -> Self {
        Col {
            header: header.to_string(),
            right: true,
            drop_rank: rank,
        }
    }
}

/// A table rendered to a width, and what was left out to fit it.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The table, each line ending in a newline.
    pub text: String,
    /// Headers of the columns left out, in table order.
    pub dropped: Vec<String>,
}

/// Renders `rows` under `cols` within `width` characters. The first column
/// holds names: once every droppable column is gone, names are shortened
/// in the middle (`globex probes…/adjustments`); a screen too narrow even
/// for that gets one block per row instead of a table.
pub fn table(cols: &[Col], rows: &[Vec<String>], width: Option<usize>) -> Fitted {
    let mut keep: Vec<usize> = (0..cols.len()).collect();
    let full = render(cols, rows, &keep, None);
    let Some(width) = width else {
        return Fitted {
            text: full,
            dropped: Vec::new(),
        };
    };
    let longest = rows
        .iter()
        .filter_map(|r| r.first())
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0);
    // Long names give way first, down to a length that still tells steps
    // apart; then columns; then names again, down to the least.
    let shrink = |text: &str, keep: &[usize], floor: usize| {
        let excess = widest(text).saturating_sub(width);
        let name_width = longest.saturating_sub(excess).max(floor);
        (name_width < longest).then(|| render(cols, rows, keep, Some(name_width)))
    };
    let mut text = full;
    if widest(&text) > width
        && let Some(t) = shrink(&text, &keep, SOFT_NAME)
    {
        text = t;
    }
    while widest(&text) > width {
        // The highest rank goes first; among equals, the rightmost.
        let Some(&victim) = keep
            .iter()
            .filter(|&&i| cols[i].drop_rank > 0)
            .max_by_key(|&&i| (cols[i].drop_rank, i))
        else {
            break;
        };
        keep.retain(|&i| i != victim);
        let whole = render(cols, rows, &keep, None);
        text = shrink(&whole, &keep, SOFT_NAME).unwrap_or(whole);
    }
    if widest(&text) > width {
        let whole = render(cols, rows, &keep, None);
        text = shrink(&whole, &keep, MIN_NAME).unwrap_or(whole);
    }
    let dropped = (0..cols.len())
        .filter(|i| !keep.contains(i))
        .map(|i| cols[i].header.clone())
        .collect();
    if widest(&text) > width {
        text = blocks(cols, rows, &keep, width);
    }
    Fitted { text, dropped }
}

fn render(cols: &[Col], rows: &[Vec<String>], keep: &[usize], name_width: Option<usize>) -> String {
    let mut b = Builder::default();
    b.push_record(keep.iter().map(|&i| cols[i].header.clone()));
    for row in rows {
        b.push_record(keep.iter().map(|&i| {
            let cell = row.get(i).cloned().unwrap_or_default();
            match name_width {
                Some(w) if i == 0 => shorten_middle(&cell, w),
                _ => cell,
            }
        }));
    }
    let mut t = b.build();
    t.with(Style::rounded());
    for (at, &i) in keep.iter().enumerate() {
        if cols[i].right {
            t.with(Modify::new(Columns::new(at..at + 1)).with(Alignment::right()));
        }
    }
    t.with(Modify::new(Rows::first()).with(Alignment::center()));
    let mut s = t.to_string();
    s.push('\n');
    s
}

/// One block per row for a screen too narrow for any table: the name, then
/// `header value` pairs wrapped under it.
fn blocks(cols: &[Col], rows: &[Vec<String>], keep: &[usize], width: usize) -> String {
    let mut out = String::new();
    for row in rows {
        let name = row.first().map_or("", String::as_str);
        for line in wrap(name, width) {
            out.push_str(&line);
            out.push('\n');
        }
        let pairs: Vec<String> = keep
            .iter()
            .skip(1)
            .map(|&i| {
                format!(
                    "{} {}",
                    cols[i].header,
                    row.get(i).map_or("", String::as_str)
                )
            })
            .collect();
        for line in wrap(&format!("  {}", pairs.join(" · ")), width) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The widest line of `text`, in characters.
pub fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// `s` in at most `max` characters, its middle replaced by `…` when it is
/// longer: the start and the end of a step name are what tell steps apart.
pub fn shorten_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max || max < 3 {
        return s.to_string();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let chars: Vec<char> = s.chars().collect();
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[n - tail..]);
    out
}

/// `line` broken at spaces into lines of at most `width` characters; the
/// lines after the first are indented two more than the first, and a word
/// longer than a line (a URL) is cut where the line ends.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let indent = line.chars().take_while(|c| *c == ' ').count();
    wrap_hanging(line, width, indent + 2)
}

/// [`wrap`] with the lines after the first indented by `hang` spaces (at
/// most half the width). Spacing inside a line is kept as it was.
pub fn wrap_hanging(line: &str, width: usize, hang: usize) -> Vec<String> {
    let width = width.max(2);
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let hang = " ".repeat(hang.min(width / 2));
    let lead = line.chars().take_while(|c| *c == ' ').count();
    let mut out = Vec::new();
    let mut rest: Vec<char> = line.chars().collect();
    let mut prefix = String::new();
    let mut first = true;
    loop {
        let room = width - prefix.chars().count();
        if rest.len() <= room {
            out.push(format!("{prefix}{}", rest.iter().collect::<String>()));
            break;
        }
        // The last space that ends a word within the room (not the line's
        // own indent).
        let floor = if first { lead } else { 0 };
        let cut = (floor + 1..=room)
            .rev()
            .find(|&i| rest[i] == ' ' && rest[i - 1] != ' ');
        let (take, skip) = match cut {
            Some(i) => (i, i),
            None => (room, room),
        };
        let piece: String = rest[..take].iter().collect();
        out.push(format!("{prefix}{}", piece.trim_end()));
        rest.drain(..skip);
        while rest.first() == Some(&' ') {
            rest.remove(0);
        }
        if rest.is_empty() {
            break;
        }
        prefix = hang.clone();
        first = false;
    }
    out
}

/// Every line of `text` wrapped to `width` (none when `width` is `None`).
pub fn wrap_all(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let lines = wrap(body, width);
        let last = lines.len().saturating_sub(1);
        for (i, l) in lines.iter().enumerate() {
            out.push_str(l);
            out.push_str(if i < last { "\n" } else { newline });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Col> {
        vec![
            Col::kept("step", false),
            Col::kept("requests", true),
            Col::droppable("p50 ms", 1),
            Col::droppable("mean ms", 3),
            Col::droppable("max ms", 2),
        ]
    }

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec![
                "globex probes acme order · GET /adjustments".into(),
                "1,000".into(),
                "1.25".into(),
                "1.50".into(),
                "9.75".into(),
            ],
            vec![
                "overall".into(),
                "2,000".into(),
                "1.00".into(),
                "1.10".into(),
                "9.75".into(),
            ],
        ]
    }

    #[test]
    fn no_width_keeps_every_column() {
        let f = table(&cols(), &rows(), None);
        assert!(f.dropped.is_empty());
        assert!(f.text.contains("mean ms") && f.text.contains("GET /adjustments"));
    }

    #[test]
    fn long_names_shrink_then_columns_go_highest_rank_first() {
        let full = widest(&table(&cols(), &rows(), None).text);
        // Shortening the long name to 24 characters is enough.
        let f = table(&cols(), &rows(), Some(full - 5));
        assert!(f.dropped.is_empty(), "{:?}", f.dropped);
        assert!(widest(&f.text) <= full - 5);
        assert!(f.text.contains('…'), "{}", f.text);

        let f = table(&cols(), &rows(), Some(full - 25));
        assert_eq!(f.dropped, vec!["mean ms"]);
        assert!(widest(&f.text) <= full - 25, "{}", f.text);

        let f = table(&cols(), &rows(), Some(40));
        assert_eq!(f.dropped, vec!["p50 ms", "mean ms", "max ms"]);
        assert!(widest(&f.text) <= 40, "{}", f.text);
        assert!(f.text.contains("overall"));
    }

    #[test]
    fn too_narrow_for_a_table_gives_blocks() {
        let f = table(&cols(), &rows(), Some(20));
        assert!(widest(&f.text) <= 20, "{}", f.text);
        assert!(f.text.contains("requests"), "{}", f.text);
    }

    #[test]
    fn shorten_keeps_both_ends() {
        assert_eq!(shorten_middle("create_order_for_tenant", 11), "creat…enant");
        assert_eq!(shorten_middle("short", 11), "short");
    }

    #[test]
    fn wrap_indents_continuations_and_cuts_long_words() {
        let lines = wrap("  status codes: 200 × 1,000, 201 × 2,000, 404 × 3", 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert!(lines[0].starts_with("  status"));
        assert!(lines[1].starts_with("    "));
        let url = wrap("https://staging.example.test/api/orders/42", 16);
        assert!(url.iter().all(|l| l.chars().count() <= 16), "{url:?}");
        assert_eq!(
            url.concat().replace(' ', ""),
            "https://staging.example.test/api/orders/42"
        );
    }
}
