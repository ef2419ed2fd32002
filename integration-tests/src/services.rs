//! Where the shared services answer (started by `scripts/services`), and
//! whether they do.

use std::time::Duration;

pub const ZOOKEEPER: &str = "127.0.0.1:2181";
pub const RABBITMQ: &str = "127.0.0.1:5672";

/// Whether something accepts TCP connections at `addr` within a second.
pub fn tcp_answers(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).ok())
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_answers_and_a_closed_one_does_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        assert!(tcp_answers(&addr));
        drop(listener);
        assert!(!tcp_answers(&addr));
        assert!(!tcp_answers("not an address"));
    }
}
