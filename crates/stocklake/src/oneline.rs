//! Text logs with one event per line, whatever the events hold.
//!
//! A product name, a store id or an error message can carry a newline or another control
//! character; written as they are, a value with `\n…INFO fake event` forges a line in the log.
//! The text format's writer escapes every control character of an event (`\n` as `\\n`, others
//! as `\\u{..}`) but the event's own final newline. ANSI colour sequences stay only when
//! colours are on (stderr is a terminal), and then tracing escapes those inside values itself.
//! JSON logs need none of this: JSON strings escape control characters.

use std::io::Write;

/// A `MakeWriter` for stderr that keeps each event on one line.
#[derive(Debug, Clone, Copy)]
pub struct OneLineStderr {
    /// Keep ESC (colours) as it is.
    pub ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for OneLineStderr {
    type Writer = OneLine<std::io::Stderr>;
    fn make_writer(&'a self) -> Self::Writer {
        OneLine {
            inner: std::io::stderr(),
            ansi: self.ansi,
        }
    }
}

/// Escapes control characters of what it is given but a final newline.
#[derive(Debug)]
pub struct OneLine<W> {
    inner: W,
    ansi: bool,
}

/// `event` with its control characters escaped but a final `\n`.
pub fn escape(event: &[u8], ansi: bool) -> std::borrow::Cow<'_, [u8]> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    let bad = |c: u8| (c < 0x20 && c != b'\t' && !(ansi && c == 0x1b)) || c == 0x7f;
    if !body.iter().copied().any(bad) {
        return std::borrow::Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &c in body {
        match c {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if bad(c) => out.extend_from_slice(format!("\\u{{{c:02x}}}").as_bytes()),
            c => out.push(c),
        }
    }
    out.extend_from_slice(end);
    std::borrow::Cow::Owned(out)
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing's formatter hands over a whole event in one call
        self.inner.write_all(&escape(buf, self.ansi))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stays_on_one_line() {
        let forged = b"INFO alert product=\"Milk\n2026-12-07 INFO forged\r\x07\x1b[31m\" ok\n";
        let out = escape(forged, false);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "INFO alert product=\"Milk\\n2026-12-07 INFO forged\\r\\u{07}\\u{1b}[31m\" ok\n"
        );
        assert_eq!(out.iter().filter(|c| **c == b'\n').count(), 1);
        // colours kept when they are on; a plain event is not copied
        assert!(escape(b"\x1b[32mINFO\x1b[0m fine\n", true).contains(&0x1b));
        assert!(matches!(
            escape(b"INFO plain\ttab\n", false),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
