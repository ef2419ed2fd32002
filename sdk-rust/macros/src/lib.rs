//! `#[lymph::interface]`: turns an `impl` block with `#[rpc]`, `#[event(..)]`,
//! `#[route(..)]`, `#[apply_config]`, `#[on_start]` and `#[on_stop]` methods into an
//! implementation of `lymph::Interface`. Parsing lives in `model`, code
//! generation in `expand`; neither knows about the runtime beyond the paths
//! of `lymph::__private`.

mod expand;
mod model;

use proc_macro::TokenStream;

/// Declares a lymph interface: implements `lymph::Interface` for the type of
/// an inherent `impl` block from its methods' role attributes. Use it as
/// `#[lymph::interface]` (re-exported by the `lymph` crate, package
/// `lymph-sdk`); the generated code refers to `::lymph`.
///
/// The crate-level docs of `lymph` walk through every form with examples
/// that compile; the forms and the signatures they accept:
///
/// ```text
/// #[lymph::interface]                                    // named after the type
/// #[lymph::interface(name = "Shop", version = "1.2.0")]  // on `impl Type { .. }`
///
/// #[rpc]                                  [async] fn name(&self, [ctx: &Context,] arg: T, ..) -> Result<R, E>
/// #[rpc(name = "..", raises = ["OutOfStock"], concurrency = N)]      (same signature)
///     T: Deserialize + owned (String, not &str); Option<T> may be left out
///     R: Serialize (the reply); E: lymph::Error, lymph::CallError or any std error
///     the doc comment is the method's help; typed errors: Err(Error::remote("OutOfStock", msg))
///
/// #[event("type", ..)]                    [async] fn name(&self, [ctx: &Context,] event: lymph::Event | B) [-> Result<(), E>]
/// #[event("a", "b", broadcast | once, retry = N, concurrency = N)]
///     B: Deserialize, the event's body decoded
///
/// #[route("/orders/<id>")]                async fn name(&self, [ctx: &Context,] request: lymph::http::Request)
/// #[route("/orders", methods = ["POST"])]     -> Result<lymph::http::Response, E>
///
/// #[apply_config]                         fn name(&mut self, config: C) [-> Result<(), E>]     (not async)
///     C: Deserialize, the interface's section of the config file
///
/// #[on_start]                             [async] fn name(&self, [ctx: &Context]) [-> Result<(), E>]
/// #[on_stop]                              [async] fn name(&self) [-> Result<(), E>]
/// ```
///
/// A method has at most one role attribute; methods without one are left
/// alone. Misuse is a compile error that says what to write instead.
#[proc_macro_attribute]
pub fn interface(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = model::InterfaceOptions::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    if let Err(e) = syn::parse::Parser::parse(parser, args) {
        return e.to_compile_error().into();
    }
    let item = syn::parse_macro_input!(item as syn::ItemImpl);
    match model::Model::from_impl(options, item) {
        Ok((model, item)) => expand::expand(&model, &item).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
