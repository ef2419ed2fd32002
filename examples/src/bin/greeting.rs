//! The seed's Greeting service: `greet(name)` prints the name, emits a
//! `greeted` event and returns a greeting. Run: `greeting --config conf/greeting.yml`.

use std::io::Write;

use lymph::{Context, Error};

#[derive(Default)]
pub struct Greeting;

#[lymph::interface]
impl Greeting {
    /// Returns a greeting for `name` and emits a `greeted` event with the name.
    #[rpc]
    async fn greet(&self, ctx: &Context, name: String) -> Result<String, Error> {
        println!("Saying hi to {name}");
        std::io::stdout().flush()?;
        // The greeting matters more than the event: a failed emit is logged,
        // not returned.
        if let Err(e) = ctx
            .emit("greeted", &serde_json::json!({"name": name}))
            .await
        {
            tracing::warn!(error = %e, "cannot emit greeted");
        }
        Ok(format!("Hi, {name}!"))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lymph::exit_code(run().await)
}

async fn run() -> Result<(), lymph::ServiceError> {
    lymph::Service::from_args()?.interface(Greeting).run().await
}
