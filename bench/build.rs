//! Compiles `proto/floor.proto` (the own floors' gRPC services) with protox,
//! as the workspace's `proto` crate does: no system `protoc` needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/floor.proto");
    let descriptors = protox::compile(["proto/floor.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
