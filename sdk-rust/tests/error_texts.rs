//! Issue 19's error texts, through the public API only: what a caller reads
//! when arguments do not fit, how a typed remote error displays, and what a
//! service says when its config does not apply (which file, which key, once).

use std::path::Path;

use lymph::{CallError, Error, ErrorKind, FileConfig, Interface, Service, ServiceError};

#[derive(serde::Deserialize)]
struct Limits {
    max_qty: u32,
}

#[derive(serde::Deserialize)]
struct ShopConfig {
    limits: Limits,
    #[serde(default)]
    greeting: Option<String>,
}

#[derive(Default)]
struct Shop {
    max_qty: u32,
}

#[lymph::interface]
impl Shop {
    #[rpc(raises = ["OutOfStock"])]
    fn order(&self, sku: String, qty: u32) -> Result<u32, Error> {
        if qty > self.max_qty {
            return Err(Error::remote(
                "OutOfStock",
                format!("only {} of {sku} left", self.max_qty),
            ));
        }
        Ok(qty)
    }

    #[apply_config]
    fn configure(&mut self, config: ShopConfig) -> Result<(), Error> {
        if config.limits.max_qty == 0 {
            return Err(Error::internal("limits.max_qty must be at least 1"));
        }
        self.max_qty = config.limits.max_qty;
        let _ = config.greeting;
        Ok(())
    }
}

fn ctx() -> lymph::Context {
    lymph::Context::new(Service::new().client(), "trace")
}

fn body(value: serde_json::Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&value).expect("encodes")
}

async fn order_error(args: serde_json::Value) -> Error {
    let mut shop = Shop::default();
    shop.apply_config(serde_json::json!({"limits": {"max_qty": 3}}))
        .expect("config applies");
    shop.call(&ctx(), "order", &body(args))
        .await
        .expect_err("must fail")
}

#[tokio::test]
async fn argument_type_errors_read_alike_and_name_the_argument() {
    let cases = [
        (
            serde_json::json!({"sku": "A1", "qty": "2"}),
            "Shop.order: argument `qty`: invalid type: string \"2\", expected u32",
        ),
        (
            serde_json::json!({"sku": "A1", "qty": 1.5}),
            "Shop.order: argument `qty`: invalid type: floating point `1.5`, expected u32",
        ),
        (
            serde_json::json!({"sku": "A1", "qty": null}),
            "Shop.order: argument `qty`: invalid type: null, expected u32",
        ),
        (
            serde_json::json!({"sku": 7, "qty": 1}),
            "Shop.order: argument `sku`: invalid type: integer `7`, expected a string",
        ),
    ];
    for (args, expected) in cases {
        let error = order_error(args).await;
        assert_eq!(error.kind(), ErrorKind::BadRequest);
        assert_eq!(error.message(), expected);
        assert_eq!(error.to_string(), format!("bad request: {expected}"));
    }
    let missing = order_error(serde_json::json!({"sku": "A1"})).await;
    assert_eq!(missing.message(), "Shop.order: missing argument `qty`");
}

#[tokio::test]
async fn a_typed_error_displays_with_its_kind_as_lymphctl_prints_it() {
    let error = order_error(serde_json::json!({"sku": "A1", "qty": 5})).await;
    let call: CallError = error.to_call_error();
    assert!(call.is_remote("OutOfStock"));
    assert_eq!(
        call.to_string(),
        "remote error OutOfStock: only 3 of A1 left"
    );
    assert_eq!(
        error.to_string(),
        "remote error OutOfStock: only 3 of A1 left"
    );
}

/// The error `Service::run` stops with for this config file text.
async fn config_error(file: Option<&str>) -> ServiceError {
    let mut service = Service::new().socket("/nonexistent/lymphd.sock");
    if let Some(text) = file {
        let config = FileConfig::parse(Path::new("conf/shop.yml"), text).expect("parses");
        service = service.config(config);
    }
    service
        .interface(Shop::default())
        .run_until(std::future::ready(()))
        .await
        .expect_err("the config does not apply")
}

#[tokio::test]
async fn config_errors_name_the_file_and_the_key_path_once() {
    let wrong_type =
        "interfaces:\n  Shop:\n    class: shop:Shop\n    limits:\n      max_qty: ten\n";
    let error = config_error(Some(wrong_type)).await;
    assert!(
        matches!(error, ServiceError::ApplyConfig { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "bad config file conf/shop.yml: interfaces.Shop.limits.max_qty: \
         invalid type: string \"ten\", expected u32"
    );
    assert_eq!(error.exit_code(), 64);

    let missing = "interfaces:\n  Shop:\n    greeting: hi\n";
    assert_eq!(
        config_error(Some(missing)).await.to_string(),
        "bad config file conf/shop.yml: interfaces.Shop: missing field `limits`"
    );

    let refused = "interfaces:\n  Shop:\n    limits: {max_qty: 0}\n";
    assert_eq!(
        config_error(Some(refused)).await.to_string(),
        "bad config file conf/shop.yml: interfaces.Shop: limits.max_qty must be at least 1"
    );

    assert_eq!(
        config_error(None).await.to_string(),
        "bad config (no config file given; pass --config FILE): \
         interfaces.Shop: missing field `limits`"
    );
}
