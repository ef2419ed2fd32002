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

    use std::time::Duration;

    use lymph::testing::TestDaemon;
    use serde_json::json;

    use super::Greeting;

    #[tokio::test]
    async fn greet_answers_and_emits_greeted() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let _greeting = daemon
            .serve(daemon.service().interface(Greeting))
            .await
            .expect("greeting");
        let mut api = lymph_proto_subscribe(&daemon).await;
        let client = daemon.client().await.expect("client");

        let reply: String = client
            .proxy("Greeting")
            .call("greet", json!({"name": "Joe"}))
            .await
            .expect("greet");
        assert_eq!(reply, "Hi, Joe!");

        let event = tokio::time::timeout(Duration::from_secs(10), api.message())
            .await
            .expect("greeted arrives")
            .expect("stream")
            .expect("an event");
        assert_eq!(event.event_type, "greeted");
        let body: serde_json::Value = rmp_serde_decode(&event.body);
        assert_eq!(body, json!({"name": "Joe"}));

        let err = client
            .proxy("Greeting")
            .call::<String>("greet", json!({}))
            .await
            .expect_err("name is required");
        assert_eq!(err.kind, lymph::ErrorKind::BadRequest, "{err}");
    }

    async fn lymph_proto_subscribe(
        daemon: &TestDaemon,
    ) -> tonic::Streaming<lymph_proto::v1::Event> {
        let mut api = lymph_proto::connect(daemon.socket()).await.expect("api");
        api.subscribe(lymph_proto::v1::SubscribeRequest {
            event_types: vec!["greeted".to_owned()],
        })
        .await
        .expect("subscribe")
        .into_inner()
    }

    fn rmp_serde_decode(body: &[u8]) -> serde_json::Value {
        rmp_serde::from_slice(body).expect("msgpack body")
    }
}
