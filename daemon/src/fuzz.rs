//! The parsers as a fuzzer sees them, for the `lymph-fuzz` binary and the
//! property tests beside each parser: a fast PRNG and a mutator, valid
//! encodings to mutate (made by the encoders), and one entry per parser that
//! takes the raw input and checks what must hold of it. An entry returns `Ok`
//! for an accepted input and `Err` with the parser's typed error for a
//! rejected one; it panics when a check fails (a round trip that does not
//! hold, a bound broken), which is a bug as much as a panic of the parser.
//! Not an API: hidden from the docs, no behaviour of its own.

mod entries;
mod mutate;

pub use entries::{ENV_NAMES, config, envelope, frame, node, zmtp};
pub use mutate::{Rng, mutate, mutate_frames};

/// The RPC frame codec the probes decode with.
pub use crate::rpc::frame as codec;

/// Valid inputs per parser, built by the daemon's own encoders.
pub mod seeds {
    pub use super::entries::{
        config_seeds as config, envelope_seeds as envelope, frame_seeds as frame,
        node_seeds as node, zmtp_seeds as zmtp,
    };
}
