//! lymphd's local API: the generated gRPC types, the socket path rule shared by
//! `lymphd`, `lymphctl` and the SDKs, a connector for the Unix socket that
//! checks whom it attaches to, and log records taken from `tracing`.

pub mod backoff;
pub mod connect;
pub mod socket;
pub mod tracelog;
pub mod trust;

/// The generated types and services of `lymph.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("lymph.v1");
}

pub use connect::{ConnectError, connect, connect_within};
pub use socket::{SocketSource, resolve_socket};
