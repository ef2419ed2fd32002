//! The guide's listener (docs/writing-services.md): logs every `reserved`
//! event and counts them. It declares the fields it reads itself: services
//! share events, not code. Run: `audit --config conf/audit.yml`.

use std::sync::atomic::{AtomicU64, Ordering};

use lymph::Error;
use serde::Deserialize;
use tracing::info;

/// The fields of a `reserved` event that Audit reads.
#[derive(Debug, Deserialize)]
pub struct Reserved {
    pub sku: String,
    pub qty: u32,
}

#[derive(Default)]
pub struct Audit {
    seen: AtomicU64,
}

#[lymph::interface]
impl Audit {
    /// Logs a reservation. Once per service: with several Audit instances,
    /// one of them gets each event.
    #[event("reserved")]
    fn on_reserved(&self, event: Reserved) -> Result<(), Error> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        info!("reservation {n}: {} of {}", event.qty, event.sku);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lymph::exit_code(run().await)
}

async fn run() -> Result<(), lymph::ServiceError> {
    lymph::Service::from_args()?
        .interface(Audit::default())
        .run()
        .await
}

#[cfg(test)]
mod tests {
    //! Audit's own tests: its handler alone, and as the daemon delivers to it.

    use std::sync::atomic::Ordering;

    use lymph::testing::{TestDaemon, WAIT};
    use serde_json::json;

    use super::{Audit, Reserved};

    #[test]
    fn the_handler_counts_reservations() {
        let audit = Audit::default();
        let event = Reserved {
            sku: "A1".to_owned(),
            qty: 2,
        };
        audit.on_reserved(event).expect("handled");
        assert_eq!(audit.seen.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn reserved_events_reach_audit() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let service = daemon
            .service()
            .app_name("audit")
            .interface(Audit::default());
        let _audit = daemon.serve(service).await.expect("audit");
        let client = daemon.client().await.expect("client");
        client
            .emit("reserved", &json!({"sku": "A1", "qty": 2, "left": 1}))
            .await
            .expect("emit");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = daemon.status().await.expect("status");
            let audit = status.apps.iter().find(|app| app.app_name == "audit");
            if audit.is_some_and(|app| app.handled == 1) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "Audit got no event");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
