//! The seed's Greeting service: `greet(name)` logs the name, emits a
//! `greeted` event and returns a greeting. Run: `greeting --config conf/greeting.yml`.

use tracing::info;

use lymph::{Context, Error};

#[derive(Default)]
pub struct Greeting;

#[lymph::interface]
impl Greeting {
    /// Returns a greeting for `name` and emits a `greeted` event with the name.
    #[rpc]
    async fn greet(&self, ctx: &Context, name: String) -> Result<String, Error> {
        info!("Saying hi to {name}");
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

#[cfg(test)]
mod tests {
    //! Greeting's own tests: an in-process lymphd, nothing else installed.

    use lymph::testing::TestDaemon;
    use serde_json::json;

    use super::Greeting;

    #[tokio::test]
    async fn greet_answers_and_emits_greeted() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let greeted = daemon.record("greeted").await.expect("recorder");
        let _greeting = daemon
            .serve(daemon.service().interface(Greeting))
            .await
            .expect("greeting");
        let client = daemon.client().await.expect("client");

        let reply: String = client
            .proxy("Greeting")
            .call("greet", json!({"name": "Joe"}))
            .await
            .expect("greet");
        assert_eq!(reply, "Hi, Joe!");

        let events = greeted.wait_for(1).await.expect("greeted arrives");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].get::<String>("name").expect("name"), "Joe");
        assert_eq!(
            greeted.bodies::<serde_json::Value>().expect("bodies"),
            [json!({"name": "Joe"})]
        );
    }

    #[tokio::test]
    async fn greet_needs_a_name_and_then_emits_nothing() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let greeted = daemon.record("greeted").await.expect("recorder");
        let _greeting = daemon
            .serve(daemon.service().interface(Greeting))
            .await
            .expect("greeting");
        let client = daemon.client().await.expect("client");

        let err = client
            .proxy("Greeting")
            .call::<String>("greet", json!({}))
            .await
            .expect_err("name is required");
        assert_eq!(err.kind, lymph::ErrorKind::BadRequest, "{err}");
        // A good call after it: its event is the only one recorded.
        let _: String = client
            .proxy("Greeting")
            .call("greet", json!({"name": "Ann"}))
            .await
            .expect("greet");
        let events = greeted.wait_for(1).await.expect("greeted");
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].get::<String>("name").expect("name"), "Ann");
    }
}
