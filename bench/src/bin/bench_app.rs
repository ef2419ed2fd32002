//! `bench-app`: the handler side of the benchmark, an ordinary SDK app serving
//! `Echo.echo(text)` (the same method as the Python peer's echo service).
//! Run: `bench-app --socket PATH`; stops on SIGTERM like any service.

use lymph::Error;

/// Requests handled at once: above the harness's deepest load (64 in flight),
/// so the app's limit never turns load into `overloaded` errors.
const MAX_CONCURRENCY: u32 = 256;

#[derive(Default)]
struct Echo;

#[lymph::interface(name = "Echo")]
impl Echo {
    /// Returns `text` unchanged.
    #[rpc]
    async fn echo(&self, text: String) -> Result<String, Error> {
        Ok(text)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    lymph::exit_code(run().await)
}

async fn run() -> Result<(), lymph::ServiceError> {
    lymph::Service::from_args()?
        .app_name("bench-app")
        .max_concurrency(MAX_CONCURRENCY)
        .interface(Echo)
        .run()
        .await
}
