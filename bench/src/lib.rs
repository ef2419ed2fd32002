//! What the own floors (`floor-zmq`, `floor-grpc`, `floor-chain`, in
//! `src/bin`) share; the harness itself is the `bench` binary (`src/main.rs`).

pub mod floors;
