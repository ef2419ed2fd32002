//! The model read from `impl` blocks: handler limits (`concurrency = N`) and
//! the compile errors for limits that are not a whole number of at least 1.

use syn::parse_quote;

use super::{InterfaceOptions, Model, Role};

fn model(item: syn::ItemImpl) -> syn::Result<Model> {
    Model::from_impl(InterfaceOptions::default(), item).map(|(model, _)| model)
}

fn error(item: syn::ItemImpl) -> String {
    match model(item) {
        Ok(_) => panic!("expected a compile error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn handler_limits_are_read_and_default_to_none() {
    let model = model(parse_quote! {
        impl Echo {
            #[rpc(concurrency = 1)]
            async fn slow(&self, text: String) -> Result<String, Error> { Ok(text) }
            #[rpc(name = "fast", raises = ["E"], concurrency = 64)]
            async fn quick(&self) -> Result<(), Error> { Ok(()) }
            #[rpc]
            async fn plain(&self) -> Result<(), Error> { Ok(()) }
            #[event("a", "b", broadcast, concurrency = 2, retry = 3)]
            async fn on_ab(&self, event: Event) {}
            #[event("c")]
            async fn on_c(&self, event: Event) {}
        }
    })
    .expect("valid");
    let limits: Vec<(String, u32)> = model
        .methods
        .iter()
        .map(|m| match &m.role {
            Role::Rpc {
                name, concurrency, ..
            } => (name.clone(), *concurrency),
            Role::Event {
                event_types,
                concurrency,
                ..
            } => (event_types.join("+"), *concurrency),
            _ => panic!("no other roles here"),
        })
        .collect();
    let expected = [
        ("slow", 1),
        ("fast", 64),
        ("plain", 0),
        ("a+b", 2),
        ("c", 0),
    ];
    let expected: Vec<(String, u32)> = expected
        .iter()
        .map(|(n, c)| ((*n).to_owned(), *c))
        .collect();
    assert_eq!(limits, expected);
}

#[test]
fn a_limit_below_one_is_a_compile_error_naming_the_attribute() {
    let rpc_zero = error(parse_quote! {
        impl Echo {
            #[rpc(concurrency = 0)]
            async fn slow(&self) -> Result<(), Error> { Ok(()) }
        }
    });
    assert_eq!(
        rpc_zero,
        "`concurrency` of #[rpc] must be a whole number of at least 1"
    );
    let event_zero = error(parse_quote! {
        impl Echo {
            #[event("a", concurrency = 0)]
            async fn on_a(&self, event: Event) {}
        }
    });
    assert_eq!(
        event_zero,
        "`concurrency` of #[event] must be a whole number of at least 1"
    );
    for (bad, role) in [
        (
            error(parse_quote! {
                impl Echo {
                    #[rpc(concurrency = -1)]
                    async fn slow(&self) -> Result<(), Error> { Ok(()) }
                }
            }),
            "rpc",
        ),
        (
            error(parse_quote! {
                impl Echo {
                    #[rpc(concurrency = "2")]
                    async fn slow(&self) -> Result<(), Error> { Ok(()) }
                }
            }),
            "rpc",
        ),
        (
            error(parse_quote! {
                impl Echo {
                    #[event("a", concurrency = 1.5)]
                    async fn on_a(&self, event: Event) {}
                }
            }),
            "event",
        ),
        (
            error(parse_quote! {
                impl Echo {
                    #[event("a", concurrency = 4294967296)]
                    async fn on_a(&self, event: Event) {}
                }
            }),
            "event",
        ),
    ] {
        assert_eq!(
            bad,
            format!("`concurrency` of #[{role}] must be a whole number of at least 1")
        );
    }
}

#[test]
fn unknown_options_name_concurrency_among_the_expected_ones() {
    let rpc = error(parse_quote! {
        impl Echo {
            #[rpc(limit = 1)]
            async fn slow(&self) -> Result<(), Error> { Ok(()) }
        }
    });
    assert!(rpc.contains("`concurrency = N`"), "{rpc}");
    let event = error(parse_quote! {
        impl Echo {
            #[event("a", limit = 1)]
            async fn on_a(&self, event: Event) {}
        }
    });
    assert!(event.contains("`concurrency = N`"), "{event}");
}
