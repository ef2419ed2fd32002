//! Names no other test, run or process uses: for ZooKeeper chroots and
//! RabbitMQ virtual hosts shared with other sessions.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` then hex digits from the process id, the clock and a counter:
/// different on every call, in this process and across processes.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}{:x}{:x}{:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_on_every_call_and_keep_the_prefix() {
        let names: std::collections::HashSet<String> =
            (0..1000).map(|_| unique("lymphd-it-")).collect();
        assert_eq!(names.len(), 1000);
        assert!(names.iter().all(|n| {
            n.starts_with("lymphd-it-")
                && n["lymphd-it-".len()..]
                    .chars()
                    .all(|c| c.is_ascii_hexdigit())
        }));
    }
}
