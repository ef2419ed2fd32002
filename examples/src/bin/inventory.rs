//! The guide's service (docs/writing-services.md): stock kept across calls,
//! a typed `OutOfStock` error, `reserved` events, an HTTP page, and its
//! initial stock from its config. Run: `inventory --config conf/inventory.yml`.

use std::collections::HashMap;
use std::sync::Mutex;

use lymph::http::{Request, Response};
use lymph::{Context, Error};
use serde::{Deserialize, Serialize};
use tracing::info;

/// The `interfaces: Inventory:` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    /// Units on hand per SKU when the service starts.
    #[serde(default)]
    pub stock: HashMap<String, u32>,
}

/// The body of a `reserved` event.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Reserved {
    pub sku: String,
    pub qty: u32,
    pub left: u32,
}

#[derive(Default)]
pub struct Inventory {
    stock: Mutex<HashMap<String, u32>>,
}

impl Inventory {
    fn on_hand(&self, sku: &str) -> Result<u32, Error> {
        let stock = self
            .stock
            .lock()
            .map_err(|_| Error::internal("stock lock poisoned"))?;
        Ok(stock.get(sku).copied().unwrap_or(0))
    }
}

#[lymph::interface(version = "1.0.0")]
impl Inventory {
    /// Takes the initial stock from the config file (before any call).
    #[apply_config]
    fn apply_config(&mut self, config: InventoryConfig) {
        *self.stock.get_mut().unwrap_or_else(|p| p.into_inner()) = config.stock;
    }

    /// Reserves `qty` units of `sku` and returns how many are left; fails
    /// with `OutOfStock` when fewer than `qty` are on hand.
    #[rpc(raises = ["OutOfStock"])]
    async fn reserve(&self, ctx: &Context, sku: String, qty: u32) -> Result<u32, Error> {
        let left = {
            let mut stock = self
                .stock
                .lock()
                .map_err(|_| Error::internal("stock lock poisoned"))?;
            let on_hand = stock.get(&sku).copied().unwrap_or(0);
            if on_hand < qty {
                return Err(Error::remote(
                    "OutOfStock",
                    format!("only {on_hand} of {sku} left"),
                ));
            }
            stock.insert(sku.clone(), on_hand - qty);
            on_hand - qty
        };
        info!("reserved {qty} of {sku}, {left} left");
        ctx.emit("reserved", &Reserved { sku, qty, left }).await?;
        Ok(left)
    }

    /// Units of `sku` on hand.
    #[rpc]
    fn stock(&self, sku: String) -> Result<u32, Error> {
        self.on_hand(&sku)
    }

    /// `GET /stock/<sku>`: units on hand, as text.
    #[route("/stock/<sku>", methods = ["GET"])]
    async fn stock_page(&self, request: Request) -> Result<Response, Error> {
        let sku = request.path_arg("sku").unwrap_or_default();
        Ok(Response::text(format!("{}\n", self.on_hand(sku)?)))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lymph::exit_code(run().await)
}

async fn run() -> Result<(), lymph::ServiceError> {
    lymph::Service::from_args()?
        .interface(Inventory::default())
        .run()
        .await
}

#[cfg(test)]
mod tests {
    //! Inventory's own tests: an in-process lymphd, nothing installed.

    use lymph::testing::{TestDaemon, service_config};
    use lymph::{CallError, ErrorKind};
    use serde_json::json;

    use super::{Inventory, Reserved};

    const CONFIG: &str = "interfaces:\n  Inventory:\n    stock: {A1: 3}\n";

    #[tokio::test]
    async fn reserving_takes_stock_and_emits_reserved() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let reserved = daemon.record("reserved").await.expect("recorder");
        let config = service_config(CONFIG).expect("config");
        let service = daemon
            .service()
            .config(config)
            .interface(Inventory::default());
        let _inventory = daemon.serve(service).await.expect("inventory");
        let client = daemon.client().await.expect("client");

        let left: u32 = client
            .proxy("Inventory")
            .call("reserve", json!({"sku": "A1", "qty": 2}))
            .await
            .expect("reserve");
        assert_eq!(left, 1);
        reserved.wait_for(1).await.expect("reserved");
        let bodies: Vec<Reserved> = reserved.bodies().expect("bodies");
        let expected = Reserved {
            sku: "A1".to_owned(),
            qty: 2,
            left: 1,
        };
        assert_eq!(bodies, [expected]);

        let error: CallError = client
            .proxy("Inventory")
            .call::<u32>("reserve", json!({"sku": "A1", "qty": 2}))
            .await
            .expect_err("only 1 left");
        assert!(error.is_remote("OutOfStock"), "{error}");
        assert_eq!(
            error.to_string(),
            "remote error OutOfStock: only 1 of A1 left"
        );
        assert_eq!(
            reserved.events().len(),
            1,
            "a refused reservation emits nothing"
        );
    }

    #[tokio::test]
    async fn bad_arguments_are_named() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let _inventory = daemon
            .serve(daemon.service().interface(Inventory::default()))
            .await
            .expect("inventory");
        let client = daemon.client().await.expect("client");
        let error = client
            .proxy("Inventory")
            .call::<u32>("reserve", json!({"sku": "A1", "qty": "2"}))
            .await
            .expect_err("qty is a number");
        assert_eq!(error.kind, ErrorKind::BadRequest, "{error}");
        assert!(
            error
                .message
                .contains("argument `qty`: invalid type: string \"2\", expected u32"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_stock_page_answers_over_http() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let config = service_config(CONFIG).expect("config");
        let service = daemon
            .service()
            .config(config)
            .interface(Inventory::default());
        let inventory = daemon.serve_web(service).await.expect("inventory");

        let page = inventory.http().get("/stock/A1").await.expect("get");
        assert_eq!((page.status, page.text().as_str()), (200, "3\n"));
        let refused = inventory
            .http()
            .post("/stock/A1", "text/plain", "")
            .await
            .expect("post");
        assert_eq!(refused.status, 405, "{}", refused.text());
        assert_eq!(refused.header("allow"), Some("GET, HEAD"));
    }
}
