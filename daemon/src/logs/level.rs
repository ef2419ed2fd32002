//! The daemon's log filter at run time, for `lymph.change_loglevel`: the
//! `lymphd` binary installs how to replace its filter; a change lasts its
//! period, then the filter the daemon started with comes back (as lymph
//! resets a logger's level after the period).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::info;

/// The longest period a change may last (a day).
pub const MAX_PERIOD: Duration = Duration::from_secs(86_400);
/// lymph's default period.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

type SetFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

struct Reloader {
    /// The filter the daemon started with (directives, `EnvFilter` syntax).
    base: String,
    set: SetFilter,
    /// Bumped by every change, so only the latest one's restore applies.
    generation: AtomicU64,
}

static RELOADER: OnceLock<Reloader> = OnceLock::new();

/// Makes the filter changeable: `base` is the filter in force, `set`
/// replaces it with other directives. Once per process; later calls are
/// ignored.
pub fn install(base: String, set: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let _already_installed = RELOADER.set(Reloader {
        base,
        set: Box::new(set),
        generation: AtomicU64::new(0),
    });
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error(
        "unknown loglevel {0:?}: use DEBUG, INFO, WARNING, ERROR, CRITICAL (or TRACE), or lymph's numbers 10..50"
    )]
    Level(String),
    #[error(
        "invalid qualname {0:?}: name a module of the daemon (e.g. lymphd::rpc or lymphd.rpc), or \"\" / \"root\" for all"
    )]
    Qualname(String),
    #[error("period must be more than 0 and at most 86400 seconds (a day), got {0}")]
    Period(String),
    #[error("this daemon's log filter cannot be changed (not started by the lymphd binary)")]
    NotInstalled,
    #[error("cannot set the log filter {directives:?}: {reason}")]
    Rejected { directives: String, reason: String },
}

/// The tracing level of a Python level name or number.
pub fn level_named(level: &str) -> Result<&'static str, LevelError> {
    Ok(match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "5" => "trace",
        "DEBUG" | "10" => "debug",
        "INFO" | "20" => "info",
        "WARNING" | "WARN" | "30" => "warn",
        "ERROR" | "40" | "CRITICAL" | "FATAL" | "50" => "error",
        _ => return Err(LevelError::Level(level.to_owned())),
    })
}

/// A tracing target from lymph's qualname (dots become `::`); `None` for
/// the root logger ("" or "root").
pub fn target_of(qualname: &str) -> Result<Option<String>, LevelError> {
    let name = qualname.trim();
    if name.is_empty() || name == "root" {
        return Ok(None);
    }
    let target = name.replace('.', "::");
    let valid = target.len() <= 200
        && target.split("::").all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if valid {
        Ok(Some(target))
    } else {
        Err(LevelError::Qualname(qualname.to_owned()))
    }
}

/// A period in seconds, as lymph takes it (int or float).
pub fn period_of(seconds: f64) -> Result<Duration, LevelError> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_PERIOD.as_secs_f64() {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(LevelError::Period(seconds.to_string()))
    }
}

/// The directives for `level` on `target` (the whole daemon when `None`)
/// over `base`: a target's directive is added; a root level replaces the
/// base's default level and keeps its per-target directives.
pub fn directives(base: &str, target: Option<&str>, level: &str) -> String {
    match target {
        Some(target) => format!("{base},{target}={level}"),
        None => {
            let mut parts = vec![level.to_owned()];
            parts.extend(
                base.split(',')
                    .map(str::trim)
                    .filter(|d| d.contains('='))
                    .map(str::to_owned),
            );
            parts.join(",")
        }
    }
}

/// Sets `level` for `qualname` for `period`, then restores the starting
/// filter (unless another change came since). A change replaces an earlier
/// one still in force. Returns the directives now in force. Needs a tokio
/// runtime (the restore is a timer).
pub fn change(qualname: &str, level: &str, period: Duration) -> Result<String, LevelError> {
    let level = level_named(level)?;
    let target = target_of(qualname)?;
    if period.is_zero() || period > MAX_PERIOD {
        return Err(LevelError::Period(format!("{}", period.as_secs_f64())));
    }
    let reloader = RELOADER.get().ok_or(LevelError::NotInstalled)?;
    let directives = directives(&reloader.base, target.as_deref(), level);
    (reloader.set)(&directives).map_err(|reason| LevelError::Rejected {
        directives: directives.clone(),
        reason,
    })?;
    let generation = reloader.generation.fetch_add(1, Ordering::AcqRel) + 1;
    info!(filter = %directives, period = %humantime::format_duration(period),
          "log filter changed (lymph.change_loglevel)");
    tokio::spawn(async move {
        tokio::time::sleep(period).await;
        if reloader.generation.load(Ordering::Acquire) != generation {
            return;
        }
        match (reloader.set)(&reloader.base) {
            Ok(()) => info!(filter = %reloader.base, "log filter restored"),
            Err(reason) => tracing::warn!(%reason, "cannot restore the log filter"),
        }
    });
    Ok(directives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lymph_levels_and_qualnames_map_to_tracing() {
        assert_eq!(level_named("DEBUG"), Ok("debug"));
        assert_eq!(level_named("warning"), Ok("warn"));
        assert_eq!(level_named("40"), Ok("error"));
        assert!(matches!(level_named("LOUD"), Err(LevelError::Level(_))));
        assert_eq!(target_of("root"), Ok(None));
        assert_eq!(target_of(""), Ok(None));
        assert_eq!(target_of("lymphd.rpc"), Ok(Some("lymphd::rpc".to_owned())));
        assert!(target_of("lymphd=trace").is_err());
        assert!(target_of("a..b").is_err());
        assert!(period_of(0.0).is_err());
        assert!(period_of(f64::NAN).is_err());
        assert!(period_of(86_401.0).is_err());
        assert_eq!(period_of(1.5), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn directives_add_a_target_or_replace_the_default_level() {
        let base = "info,zeromq=warn";
        assert_eq!(
            directives(base, Some("lymphd::rpc"), "debug"),
            "info,zeromq=warn,lymphd::rpc=debug"
        );
        assert_eq!(directives(base, None, "debug"), "debug,zeromq=warn");
        for d in [
            directives(base, Some("lymphd::rpc"), "debug"),
            directives(base, None, "trace"),
        ] {
            assert!(tracing_subscriber::EnvFilter::try_new(&d).is_ok(), "{d}");
        }
    }
}
