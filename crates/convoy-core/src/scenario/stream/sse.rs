//! The `text/event-stream` format (server-sent events), parsed
//! incrementally from the bytes of a response body as they arrive: lines
//! end with CRLF, LF or a lone CR (even split across two reads); `data:`
//! lines join with a line feed; `event:` names the event (`message` when
//! absent); `id:` and `retry:` are kept; lines starting with `:` are
//! comments (keep-alives); a blank line dispatches the event, and one with
//! no data dispatches nothing. A line or an event larger than the bound
//! given is an error, never an allocation the peer controls.

/// One event, as dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `event:`, or `message` when the event named none.
    pub name: String,
    /// Its `data:` lines, joined with `\n`.
    pub data: String,
}

/// The stream broke the format's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseError {
    /// A line longer than the bound, in bytes.
    LineTooLong(usize),
    /// An event whose data grew past the bound, in bytes.
    EventTooLarge(usize),
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::LineTooLong(n) => {
                write!(f, "an event-stream line is longer than {n} bytes")
            }
            SseError::EventTooLarge(n) => write!(f, "an event's data is larger than {n} bytes"),
        }
    }
}

/// An incremental parser of one stream.
#[derive(Debug)]
pub(crate) struct SseParser {
    /// The line read so far (no terminator).
    line: Vec<u8>,
    /// The data of the event being built, each line followed by `\n`.
    data: String,
    /// Whether a `data` field was seen for the event being built.
    has_data: bool,
    /// Its `event:` name, if any.
    name: Option<String>,
    /// The last event id, as the stream set it.
    last_id: String,
    /// The reconnection time the stream asked for, in milliseconds.
    retry: Option<u64>,
    /// The last byte read was a CR: a LF right after it ends no new line.
    after_cr: bool,
    /// Still at the start of the stream (a byte order mark is skipped).
    at_start: bool,
    /// Bound of a line and of an event's data, in bytes.
    max: usize,
}

impl SseParser {
    /// A parser whose lines and events are at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        SseParser {
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            name: None,
            last_id: String::new(),
            retry: None,
            after_cr: false,
            at_start: true,
            max,
        }
    }

    /// The last event id the stream set (`id:`).
    pub(crate) fn last_id(&self) -> &str {
        &self.last_id
    }

    /// The reconnection time the stream asked for (`retry:`), in ms: read,
    /// not obeyed (the scenario's `reconnect` decides).
    #[cfg(test)]
    pub(crate) fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Reads `bytes`, appending every event they complete to `out`.
    pub(crate) fn feed(
        &mut self,
        mut bytes: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), SseError> {
        if self.at_start {
            // The UTF-8 byte order mark may start a stream; it may also
            // come split over reads, so wait for three bytes or a mismatch.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let have = self.line.len();
            let take = bytes.len().min(BOM.len() - have);
            if BOM[have..have + take] == bytes[..take] {
                self.line.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.line.len() < BOM.len() {
                    return Ok(());
                }
                self.line.clear();
            }
            // Not a mark: what was held back is ordinary text of the line.
            self.at_start = false;
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while !bytes.is_empty() {
            match bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(i) => {
                    self.push(&bytes[..i])?;
                    let cr = bytes[i] == b'\r';
                    bytes = &bytes[i + 1..];
                    self.line_done(out)?;
                    if cr {
                        match bytes.first() {
                            Some(b'\n') => bytes = &bytes[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                }
                None => {
                    self.push(bytes)?;
                    break;
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, part: &[u8]) -> Result<(), SseError> {
        if self.line.len() + part.len() > self.max {
            return Err(SseError::LineTooLong(self.max));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    /// One whole line was read: a field, a comment, or the blank line that
    /// dispatches.
    fn line_done(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                if data.ends_with('\n') {
                    data.pop();
                }
                out.push(SseEvent {
                    name: self.name.take().unwrap_or_else(|| "message".to_string()),
                    data,
                });
            }
            self.data.clear();
            self.has_data = false;
            self.name = None;
            self.line = line;
            return Ok(());
        }
        if line[0] == b':' {
            self.line = line;
            self.line.clear();
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*text, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    return Err(SseError::EventTooLarge(self.max));
                }
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.name = Some(value.to_string()),
            "id" if !value.contains('\0') => self.last_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        // The line's allocation is kept for the next one.
        drop(text);
        self.line = line;
        self.line.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new(1 << 16);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).expect("within bounds");
        }
        out
    }

    fn ev(name: &str, data: &str) -> SseEvent {
        SseEvent {
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_fields_and_comments() {
        let got = parse(&[b": keep-alive\n\nevent: order.status\ndata: {\"a\":1}\nid: 7\nretry: 3000\n\ndata: plain\n\n"]);
        assert_eq!(
            got,
            vec![ev("order.status", "{\"a\":1}"), ev("message", "plain")]
        );
    }

    #[test]
    fn multi_line_data_joins_with_line_feeds() {
        let got = parse(&[b"data: one\ndata:two\ndata\n\n"]);
        assert_eq!(got, vec![ev("message", "one\ntwo\n")]);
    }

    #[test]
    fn every_line_ending_and_splits_anywhere() {
        let text: &[u8] = b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n";
        let whole = parse(&[text]);
        assert_eq!(whole, vec![ev("a", "1"), ev("b", "2"), ev("message", "3")]);
        // Byte by byte: a CR at the end of one read and its LF in the next
        // make one line ending, not two.
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse(&chunks), whole);
        for cut in 0..text.len() {
            assert_eq!(parse(&[&text[..cut], &text[cut..]]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn id_retry_and_a_byte_order_mark() {
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        p.feed(b"\xEF\xBB", &mut out).unwrap();
        p.feed(
            b"\xBFid: 42\nretry: 1500\nretry: soon\ndata: x\n\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(out, vec![ev("message", "x")]);
        assert_eq!(p.last_id(), "42");
        assert_eq!(p.retry(), Some(1500));
    }

    #[test]
    fn an_event_without_data_dispatches_nothing() {
        assert!(parse(&[b"event: ping\n\nid: 3\n\n"]).is_empty());
    }

    #[test]
    fn huge_lines_and_events_are_bounded() {
        let mut p = SseParser::new(64);
        let mut out = Vec::new();
        let long = vec![b'a'; 100];
        assert_eq!(p.feed(&long, &mut out), Err(SseError::LineTooLong(64)));
        let mut p = SseParser::new(64);
        let mut err = None;
        for _ in 0..10 {
            if let Err(e) = p.feed(b"data: 0123456789\n", &mut out) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::EventTooLarge(64)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(16);
        for round in 0..2_000 {
            let mut p = SseParser::new(256);
            let mut out = Vec::new();
            for _ in 0..rng.usize(1..8) {
                let len = rng.usize(0..300);
                let alphabet = b"data:event :\r\n\xEF\xBB\xBF\0x";
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        if rng.bool() {
                            alphabet[rng.usize(0..alphabet.len())]
                        } else {
                            rng.u8(..)
                        }
                    })
                    .collect();
                if p.feed(&bytes, &mut out).is_err() {
                    break;
                }
            }
            assert!(out.iter().all(|e| e.data.len() <= 256), "round {round}");
        }
    }
}
