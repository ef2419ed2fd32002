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

#[cfg(test)]
mod tests {
    //! Listen's own tests: its handler alone, and as the daemon delivers to it.

    use lymph::Event;
    use lymph::testing::{TestDaemon, WAIT};
    use serde_json::json;

    use super::Listen;

    fn greeted(body: serde_json::Value) -> Event {
        Event {
            event_type: "greeted".to_owned(),
            body: rmp_serde::to_vec_named(&body).expect("msgpack").into(),
            ..Event::default()
        }
    }

    #[tokio::test]
    async fn the_handler_needs_a_name() {
        Listen
            .on_greeted(greeted(json!({"name": "Joe"})))
            .await
            .expect("a name is enough");
        let error = Listen
            .on_greeted(greeted(json!({"who": "Joe"})))
            .await
            .expect_err("no name");
        assert!(error.message().contains("`name`"), "{error}");
    }

    #[tokio::test]
    async fn greeted_events_are_delivered_to_listen() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let _listen = daemon
            .serve(daemon.service().app_name("listen").interface(Listen))
            .await
            .expect("listen");
        let client = daemon.client().await.expect("client");
        client
            .emit("greeted", &json!({"name": "Joe"}))
            .await
            .expect("emit");

        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = daemon.status().await.expect("status");
            let handled: u64 = status
                .apps
                .iter()
                .filter(|app| app.app_name == "listen")
                .map(|app| app.handled)
                .sum();
            if handled == 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Listen handled {handled} events, not 1"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
