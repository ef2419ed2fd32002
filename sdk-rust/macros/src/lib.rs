//! `#[lymph::interface]`: turns an `impl` block with `#[rpc]`, `#[event(..)]`,
//! `#[route(..)]`, `#[apply_config]`, `#[on_start]` and `#[on_stop]` methods into an
//! implementation of `lymph::Interface`. Parsing lives in `model`, code
//! generation in `expand`; neither knows about the runtime beyond the paths
//! of `lymph::__private`.

mod expand;
mod model;

use proc_macro::TokenStream;

/// Declares a lymph interface. See the `lymph` crate for the attribute forms:
/// `#[lymph::interface]`, `#[lymph::interface(name = "Greeting", version = "1.2.0")]`.
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
