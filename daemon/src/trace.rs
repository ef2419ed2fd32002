//! Trace ids: lymph's format (uuid4, 32 lowercase hex), made at the edge when a
//! request arrives without one, carried unchanged otherwise.

/// A new trace id: 32 hex in uuid4's layout, unique per process and spread
/// by a random seed, without a `getrandom` call per id (made on every call
/// that arrives without one).
pub fn new_trace_id() -> String {
    crate::rpc::frame::new_message_id()
}

/// The given trace id, or a new one when it is empty.
pub fn or_new(trace_id: &str) -> String {
    if trace_id.is_empty() {
        new_trace_id()
    } else {
        trace_id.to_owned()
    }
}

/// A new 32-hex identity or instance id.
pub fn new_id() -> String {
    new_trace_id()
}

#[cfg(test)]
mod tests {
    #[test]
    fn trace_ids_are_32_hex_and_kept_when_given() {
        let id = super::new_trace_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(super::or_new("abc"), "abc");
        assert_ne!(super::or_new(""), super::or_new(""));
    }
}
