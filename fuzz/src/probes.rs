//! Worst cases by construction, one per parser, each at the size the daemon
//! lets in: the growth of this process's peak resident memory while one is
//! parsed must stay within a small multiple of its size. Peak memory is the
//! kernel's (`VmHWM`, reset through `/proc/self/clear_refs` before each), so
//! nothing here needs to know how the parsers allocate.

use bytes::Bytes;
use lymphd::fuzz;

/// The bound on a probe's peak memory growth: this many times its input...
const TIMES_INPUT: u64 = 4;
/// ...plus this much (allocator arenas, a copy of the body).
const SLACK_KIB: u64 = 16 * 1024;

/// Runs every probe; `false` if one broke its bound (or memory cannot be read).
pub fn run() -> bool {
    let mib = 1024 * 1024;
    let mut ok = true;
    // An event body of 4 MiB (rpc.max_body_bytes) of nils in one array.
    let nils = nil_array(4 * mib);
    let envelope = envelope_with_body(&nils);
    ok &= probe("envelope: 4 MiB body of nils", envelope.len(), || {
        let _ = fuzz::envelope(&envelope);
    });
    // An ERROR reply's body of 5 MiB (rpc.max_frame_bytes) of nils.
    let error = [&b"\x81\xa4type"[..], &nil_array(5 * mib)].concat();
    ok &= probe("error body: 5 MiB of nils", error.len(), || {
        let _ = lymphd::fuzz::codec::decode_error_body(&error);
    });
    // A peer's message of a million empty frames (2 bytes each).
    let mut empty_frames = fuzz::seeds::zmtp().swap_remove(0);
    empty_frames.truncate(64);
    empty_frames.extend([0x01, 0x00].repeat(mib));
    ok &= probe("zmtp: 1M empty frames", empty_frames.len(), || {
        let _ = fuzz::zmtp(&empty_frames, 64 * 1024);
    });
    // A 64 KiB znode (the most read) of one huge array of small numbers.
    let node = format!("{{\"x\": [{}0]}}", "0,".repeat(32 * 1024 - 8));
    ok &= probe("node: 64 KiB array", node.len(), || {
        let _ = fuzz::node(node.as_bytes());
    });
    // A YAML alias bomb: nine levels of nine aliases (387M items expanded).
    let bomb = alias_bomb();
    ok &= probe("config: alias bomb", bomb.len(), || {
        let _ = fuzz::config(&bomb, &[]);
    });
    // A headers frame and a body of 1 MiB each, within roomy limits.
    let frames = vec![
        Bytes::from_static(b"p"),
        Bytes::from_static(b"i"),
        Bytes::from_static(b"REQ"),
        Bytes::from_static(b"A.b"),
        Bytes::from(map_of_nils(mib)),
        Bytes::from(nil_array(mib)),
    ];
    ok &= probe("frame: 1 MiB headers and body", 2 * mib, || {
        let _ = lymphd::fuzz::codec::decode(
            &frames,
            &lymphd::fuzz::codec::Limits {
                max_frame_bytes: 2 * mib,
                max_message_bytes: 4 * mib,
            },
        );
    });
    ok
}

fn probe(name: &str, input: usize, parse: impl FnOnce()) -> bool {
    let Some(before) = reset_peak() else {
        println!("probe {name}: cannot read this process's peak memory");
        return false;
    };
    parse();
    let after = peak_kib().unwrap_or(u64::MAX);
    let grew = after.saturating_sub(before);
    let bound = TIMES_INPUT * input as u64 / 1024 + SLACK_KIB;
    let verdict = if grew <= bound { "ok" } else { "OVER" };
    println!(
        "probe {name:<30} {:>8} KiB in, peak memory +{grew:>7} KiB (bound {bound}): {verdict}",
        input / 1024
    );
    grew <= bound
}

/// Resets the peak to the current resident size and returns it.
fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    peak_kib()
}

fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A msgpack array of `n` nils (array 32 header).
fn nil_array(n: usize) -> Vec<u8> {
    let mut out = vec![0xdd];
    out.extend(u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    out.resize(5 + n, 0xc0);
    out
}

/// A msgpack map of `n / 2` nil keys to nils (map 32 header).
fn map_of_nils(n: usize) -> Vec<u8> {
    let mut out = vec![0xdf];
    out.extend(u32::try_from(n / 2).unwrap_or(u32::MAX).to_be_bytes());
    out.resize(5 + n / 2 * 2, 0xc0);
    out
}

/// A lymph envelope whose body is `body`.
fn envelope_with_body(body: &[u8]) -> Vec<u8> {
    let mut out = b"\x83\xa4type\xa1t\xa7headers\x81\xa8trace_id\xa1x\xa4body".to_vec();
    out.extend_from_slice(body);
    out
}

fn alias_bomb() -> String {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 9].join(", ");
        yaml.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    yaml.push_str("rpc:\n  allowed_peers: *a8\n");
    yaml
}
