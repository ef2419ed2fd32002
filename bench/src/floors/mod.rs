//! The project's own floors: the least a path can cost, measured with the
//! same load shape as the harness's other rows. Each floor is a binary that
//! starts its other processes itself (children of its own, so pinned as it
//! is), drives a window of `inflight` requests over one connection or stream
//! and prints one `RESULT` line per measurement for the harness to parse.

pub mod child;
pub mod load;
pub mod opts;
pub mod uds;

/// The generated types and services of `proto/floor.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("lymphd.bench.floor");
}

/// The size of every request body, as in the harness's other rows.
pub const BODY_BYTES: usize = 100;

/// The callee named on every call of the chain floor.
pub const SERVICE: &str = "Echo";
pub const METHOD: &str = "echo";
