//! (filled by the hardening work on this edge)
