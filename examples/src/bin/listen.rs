//! The seed's Listen service: logs the name of everybody greeted.
//! Run: `listen --config conf/listen.yml`.

use tracing::info;

use lymph::{Error, Event};

#[derive(Default)]
pub struct Listen;

#[lymph::interface]
impl Listen {
    /// Prints who was greeted; exactly one Listen instance handles each event.
    #[event("greeted")]
    async fn on_greeted(&self, event: Event) -> Result<(), Error> {
        let name: String = event.get("name")?;
        info!("Somebody greeted {name}");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lymph::exit_code(run().await)
}

async fn run() -> Result<(), lymph::ServiceError> {
    lymph::Service::from_args()?.interface(Listen).run().await
}
