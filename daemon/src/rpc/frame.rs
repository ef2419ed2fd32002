//! The lymph 0.15 frame codec (pure, no IO). Placeholder until the transport lands.
