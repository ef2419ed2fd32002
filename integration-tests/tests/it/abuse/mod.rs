//! The abuse suite: one file per network edge, each reproducing a broken or
//! hostile client with real processes and asserting the daemon's bound from
//! /proc (memory per byte or per message, descriptors, answers within a
//! deadline). Sizes are scaled down from the where CI time needs it;
//! the margins are wide, the bounds are not.

mod amqp;
mod local_socket;
mod log_port;
mod metrics_port;
mod registry;
mod rpc_frames;
mod rpc_port;
mod web;

use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// A process's resident memory in bytes, from /proc/<pid>/status (VmRSS).
pub fn rss_bytes(pid: Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
}

/// How many file descriptors a process holds open.
pub fn open_fds(pid: Pid) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .count()
}

/// A process's open descriptors once their count stops changing (three
/// equal counts 100 ms apart; at most 10 s): a baseline that leaves out a
/// connection its client just closed (`lymphctl status`'s, a scrape's).
pub fn settled_fds(pid: Pid) -> usize {
    let started = Instant::now();
    let mut last = open_fds(pid);
    let mut same = 0;
    while same < 2 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        let now = open_fds(pid);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}
