//! lymph's log line: `<asctime> [<LEVEL>] <logger>: <message> - trace_id="<id>"`,
//! with Python's level names and asctime (`2026-11-27 19:43:28,017`, UTC here).

use std::time::{Duration, UNIX_EPOCH};

use lymph_proto::v1::{LogLevel, LogRecord};

/// Python's name of a level, as lymph sends it in the first frame.
pub fn level_name(level: i32) -> &'static str {
    match LogLevel::try_from(level).unwrap_or(LogLevel::Info) {
        LogLevel::Trace | LogLevel::Debug => "DEBUG",
        LogLevel::Unspecified | LogLevel::Info => "INFO",
        LogLevel::Warn => "WARNING",
        LogLevel::Error => "ERROR",
        LogLevel::Critical => "CRITICAL",
    }
}

/// The rank of a Python level name (DEBUG 10 ... CRITICAL 50), for filters;
/// `None` for a name that is not a level.
pub fn level_rank(name: &str) -> Option<u8> {
    match name.to_ascii_uppercase().as_str() {
        "TRACE" | "DEBUG" => Some(10),
        "INFO" => Some(20),
        "WARN" | "WARNING" => Some(30),
        "ERROR" => Some(40),
        "CRITICAL" | "FATAL" => Some(50),
        _ => None,
    }
}

/// The formatted line of a record.
pub fn format(record: &LogRecord) -> String {
    let trace_id = if record.trace_id.is_empty() {
        "None"
    } else {
        &record.trace_id
    };
    format!(
        "{} [{}] {}: {} - trace_id=\"{}\"",
        asctime(record.time),
        level_name(record.level),
        record.logger,
        record.message,
        trace_id
    )
}

/// Python logging's default asctime, in UTC.
fn asctime(time: f64) -> String {
    let since = if time.is_finite() && time > 0.0 {
        Duration::from_secs_f64(time)
    } else {
        Duration::ZERO
    };
    // "2026-11-27T19:43:28.017Z" -> "2026-11-27 19:43:28,017"
    let rfc = humantime::format_rfc3339_millis(UNIX_EPOCH + since).to_string();
    rfc.trim_end_matches('Z')
        .replacen('T', " ", 1)
        .replacen('.', ",", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_lymphs() {
        let record = LogRecord {
            level: LogLevel::Info as i32,
            logger: "lymph.core.rpc".into(),
            message: "Greeting.greet".into(),
            trace_id: "tv-log-1".into(),
            time: 1_795_808_608.017_5,
        };
        assert_eq!(
            format(&record),
            "2026-11-27 19:43:28,017 [INFO] lymph.core.rpc: Greeting.greet - trace_id=\"tv-log-1\""
        );
        let none = LogRecord {
            level: LogLevel::Warn as i32,
            trace_id: String::new(),
            ..record
        };
        assert!(
            format(&none).ends_with("[WARNING] lymph.core.rpc: Greeting.greet - trace_id=\"None\"")
        );
    }

    #[test]
    fn levels_rank_as_pythons() {
        assert_eq!(level_name(LogLevel::Trace as i32), "DEBUG");
        assert_eq!(level_name(LogLevel::Critical as i32), "CRITICAL");
        assert_eq!(level_name(99), "INFO");
        assert!(level_rank("warning") > level_rank("INFO"));
        assert_eq!(level_rank("warn"), level_rank("WARNING"));
        assert_eq!(level_rank("loud"), None);
    }
}
