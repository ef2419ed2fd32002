//! The daemon process's own figures for the exporter, read from `/proc/self`
//! at each scrape: resident memory, CPU seconds, open descriptors. `None`
//! where the system does not say (not Linux, or `/proc` not mounted).

/// What one read of `/proc/self` found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    pub resident_bytes: Option<u64>,
    /// User and system CPU time together.
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl Process {
    pub fn read() -> Process {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let ticks = ticks_per_second();
        Process {
            resident_bytes: stat.as_deref().and_then(|s| {
                let pages = stat_field(s, 24)?.parse::<u64>().ok()?;
                Some(pages * page_size())
            }),
            cpu_seconds: stat.as_deref().and_then(|s| {
                let user = stat_field(s, 14)?.parse::<u64>().ok()?;
                let system = stat_field(s, 15)?.parse::<u64>().ok()?;
                Some((user + system) as f64 / ticks)
            }),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| dir.count() as u64),
            max_fds: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .ok()
                .map(|(soft, _)| soft),
        }
    }
}

/// Field `n` (1-based, as `proc(5)` numbers them) of `/proc/<pid>/stat`.
/// The command name (field 2) may hold spaces and parentheses: fields are
/// counted from after its last `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after the name.
    after.split_whitespace().nth(n.checked_sub(3)?)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(4096)
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |n| n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_after_the_name_even_with_spaces_in_it() {
        let stat = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 14), Some("11"));
        assert_eq!(stat_field(stat, 24), Some("21"));
    }

    #[test]
    fn this_process_is_read() {
        let p = Process::read();
        assert!(p.resident_bytes.is_some_and(|b| b > 1024 * 1024), "{p:?}");
        assert!(p.cpu_seconds.is_some(), "{p:?}");
        assert!(p.open_fds.is_some_and(|n| n >= 3), "{p:?}");
    }
}
