//! Log output. In the text format every control character inside a log line
//! is escaped (a newline becomes `\n`), so no value taken from a request can
//! start a forged line; the JSON format escapes by itself.

use std::io::{self, Write};

/// Escape control characters of one formatted event, keeping its final newline.
pub fn escape_line(line: &[u8]) -> Vec<u8> {
    let (body, end) = match line.split_last() {
        Some((b'\n', body)) => (body, &b"\n"[..]),
        _ => (line, &b""[..]),
    };
    let mut out = Vec::with_capacity(line.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b'\t'),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

/// A writer that escapes each event before it reaches `W`. tracing's fmt
/// layer formats one event into one buffer and writes it at once.
pub struct Escaping<W>(pub W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Standard error, escaped.
pub fn stderr() -> Escaping<io::Stderr> {
    Escaping(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_inside_a_line_are_escaped() {
        assert_eq!(
            escape_line(b"WARN grant_type=\"x\nINFO forged\" \x1b[31m\r\n"),
            b"WARN grant_type=\"x\\nINFO forged\" \\x1b[31m\\r\n".to_vec()
        );
        assert_eq!(escape_line(b"plain line\n"), b"plain line\n".to_vec());
        assert_eq!(escape_line(b"no newline"), b"no newline".to_vec());
        let mut out = Escaping(Vec::new());
        out.write_all(b"a\nb\n").unwrap();
        assert_eq!(out.0, b"a\\nb\n".to_vec());
    }
}
