//! Logging set-up shared by every Fathom binary: `FATHOM_LOG` filters,
//! text or JSON on stderr, colour only at a terminal, lines capped in size.

/// Log format on stderr.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the subscriber: `FATHOM_LOG` (default `info`), `format` on stderr.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FATHOM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only for a person at a terminal, never in a file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| BoundedLines(std::io::stderr()));
    if matches!(format, LogFormat::Json) {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The longest log line written; the rest of a longer one is replaced by a
/// note of how much was cut. What agents or devices send (names, lists)
/// can end up in a field, and one event must not fill a disk or a journal.
pub const MAX_LOG_LINE: usize = 8 * 1024;

/// A log writer that caps each event (one `write` per event) at
/// [`MAX_LOG_LINE`] bytes.
#[derive(Debug)]
pub struct BoundedLines<W>(pub W);

impl<W: std::io::Write> std::io::Write for BoundedLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() <= MAX_LOG_LINE {
            return self.0.write(buf);
        }
        // Cut on a character boundary, keep the line ending.
        let text = String::from_utf8_lossy(&buf[..MAX_LOG_LINE]);
        let kept = text.trim_end_matches('\u{fffd}');
        let line = format!("{kept}… [{} bytes cut]\n", buf.len() - kept.len());
        self.0.write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{BoundedLines, MAX_LOG_LINE};

    #[test]
    fn a_long_log_line_is_cut_and_says_so() {
        let mut out = BoundedLines(Vec::new());
        let short = b"INFO short line\n";
        out.write_all(short).unwrap();
        assert_eq!(out.0, short);
        let mut out = BoundedLines(Vec::new());
        let long = format!("WARN {}\n", "é".repeat(200_000));
        assert_eq!(out.write(long.as_bytes()).unwrap(), long.len());
        let written = String::from_utf8(out.0).expect("cut on a character boundary");
        assert!(written.len() <= MAX_LOG_LINE + 40, "{}", written.len());
        assert!(
            written.ends_with(" bytes cut]\n"),
            "{}",
            &written[written.len() - 40..]
        );
        assert_eq!(written.lines().count(), 1);
    }
}
