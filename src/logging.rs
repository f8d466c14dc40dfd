//! Where and how the binary's log events are written: stderr, one line per event, as text
//! for people or JSON for collectors, coloured only for a terminal.
//!
//! Owns the subscriber set-up and its two rules, both pure and tested as tables:
//! [`use_colour`] (ANSI colour only when stderr is a terminal and `NO_COLOR` is unset or
//! empty, per no-color.org) and the JSON line's field names, which are stable:
//! `timestamp` (RFC 3339, UTC), `level` (`ERROR`…`TRACE`), `target` (the module),
//! `message`, then the event's own fields (`host`, `error`, `ms`, …) at the top level.
//! Must not: write anywhere but stderr, or buffer (a line leaves when the event happens).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-01-01T12:00:00.000000Z  INFO target: message key=value`.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, then the
    /// event's own fields.
    Json,
}

/// Whether text logs get ANSI colour: only on a terminal, never with a non-empty
/// `NO_COLOR`.
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber: `RUST_LOG` filters (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colour = use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        for (tty, no_color, expected) in [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (true, Some("0"), false),
            (false, None, false),
            (false, Some("1"), false),
        ] {
            assert_eq!(
                use_colour(tty, no_color.map(OsStr::new)),
                expected,
                "tty {tty}, NO_COLOR {no_color:?}"
            );
        }
    }
}
