//! Generates `impl lymph::Interface` from the model: the spec, the method and
//! event dispatch (arguments decoded through a generated `Deserialize`
//! struct), config and lifecycle hooks. Emits paths under `::lymph` only.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemImpl;

use crate::model::{Arg, Method, Model, Role};

pub fn expand(model: &Model, item: &ItemImpl) -> TokenStream {
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let spec = spec(model);
    let call = call(model);
    let deliver = deliver(model);
    let http = http(model);
    let hooks = hooks(model);
    quote! {
        #item

        impl #impl_generics ::lymph::Interface for #self_ty #where_clause {
            #spec
            #call
            #deliver
            #http
            #hooks
        }
    }
}

fn spec(model: &Model) -> TokenStream {
    let name = &model.name;
    let version = &model.version;
    let methods = model.methods.iter().filter_map(|m| match &m.role {
        Role::Rpc {
            name,
            help,
            raises,
            concurrency,
        } => {
            let params = m.args.iter().filter_map(|a| match a {
                Arg::Named(param, _, _) => Some(param),
                _ => None,
            });
            Some(quote! {
                ::lymph::MethodSpec {
                    name: #name.to_owned(),
                    params: vec![#(#params.to_owned()),*],
                    help: #help.to_owned(),
                    raises: vec![#(#raises.to_owned()),*],
                    concurrency: #concurrency,
                }
            })
        }
        _ => None,
    });
    let subscriptions = model.methods.iter().flat_map(|m| match &m.role {
        Role::Event {
            event_types,
            broadcast,
            retry,
            concurrency,
        } => {
            let handler = syn::ext::IdentExt::unraw(&m.ident).to_string();
            let mode = if *broadcast {
                quote!(::lymph::DeliveryMode::Broadcast)
            } else {
                quote!(::lymph::DeliveryMode::OncePerService)
            };
            event_types
                .iter()
                .map(|event_type| {
                    quote! {
                        ::lymph::SubscriptionSpec {
                            event_type: #event_type.to_owned(),
                            mode: #mode,
                            retry: #retry,
                            handler: #handler.to_owned(),
                            concurrency: #concurrency,
                        }
                    }
                })
                .collect::<Vec<_>>()
        }
        _ => Vec::new(),
    });
    let routes = model.methods.iter().filter_map(|m| match &m.role {
        Role::Route { path, methods } => {
            let endpoint = syn::ext::IdentExt::unraw(&m.ident).to_string();
            Some(quote! {
                ::lymph::RouteSpec {
                    path: #path.to_owned(),
                    methods: vec![#(#methods.to_owned()),*],
                    endpoint: #endpoint.to_owned(),
                }
            })
        }
        _ => None,
    });
    quote! {
        fn spec(&self) -> ::lymph::InterfaceSpec {
            ::lymph::InterfaceSpec {
                name: #name.to_owned(),
                version: #version.to_owned(),
                methods: vec![#(#methods),*],
                subscriptions: vec![#(#subscriptions),*],
                routes: vec![#(#routes),*],
            }
        }
    }
}

/// `self.method(args..)` plus `.await` when the method is async.
fn invoke(method: &Method, args: Vec<TokenStream>) -> TokenStream {
    let ident = &method.ident;
    if method.is_async {
        quote!(self.#ident(#(#args),*).await)
    } else {
        quote!(self.#ident(#(#args),*))
    }
}

fn call(model: &Model) -> TokenStream {
    let interface = &model.name;
    let arms = model.methods.iter().filter_map(|m| {
        let Role::Rpc { name, .. } = &m.role else {
            return None;
        };
        let qualified = format!("{interface}.{name}");
        let fields = m.args.iter().filter_map(|a| match a {
            Arg::Named(_, ident, ty) => Some(quote!(#ident: #ty)),
            _ => None,
        });
        let args = m
            .args
            .iter()
            .map(|a| match a {
                Arg::Named(_, ident, _) => quote!(__args.#ident),
                _ => quote!(ctx),
            })
            .collect();
        let invoke = invoke(m, args);
        Some(quote! {
            #name => ::std::boxed::Box::pin(async move {
                #[derive(::lymph::__private::serde::Deserialize)]
                #[serde(crate = "::lymph::__private::serde", deny_unknown_fields)]
                #[allow(non_camel_case_types)]
                struct __LymphArgs { #(#fields),* }
                let __args: __LymphArgs = ::lymph::__private::decode_args(#qualified, body)?;
                ::lymph::Reply::encode(#invoke, #qualified)
            }),
        })
    });
    quote! {
        fn call<'a>(
            &'a self,
            ctx: &'a ::lymph::Context,
            method: &'a str,
            body: &'a [u8],
        ) -> ::lymph::BoxFuture<'a, ::std::result::Result<::std::vec::Vec<u8>, ::lymph::Error>> {
            let _ = (ctx, body);
            match method {
                #(#arms)*
                _ => ::std::boxed::Box::pin(async move {
                    ::std::result::Result::Err(::lymph::__private::unknown_method(#interface, method))
                }),
            }
        }
    }
}

fn deliver(model: &Model) -> TokenStream {
    let interface = &model.name;
    // (handler name, event types, the call): dispatched by the delivery's
    // handler name when it names one of ours, else by its event type.
    let handlers: Vec<(String, &Vec<String>, TokenStream)> = model
        .methods
        .iter()
        .filter_map(|m| {
            let Role::Event { event_types, .. } = &m.role else {
                return None;
            };
            let mut decode = Vec::new();
            let args = m
                .args
                .iter()
                .map(|a| match a {
                    Arg::Event(ty) if is_event_type(ty) => quote!(event),
                    Arg::Event(ty) => {
                        decode.push(quote!(let __body: #ty = event.decode()?;));
                        quote!(__body)
                    }
                    _ => quote!(ctx),
                })
                .collect();
            let invoke = invoke(m, args);
            let call = quote! {
                ::std::boxed::Box::pin(async move {
                    #(#decode)*
                    ::lymph::Outcome::into_result(#invoke)
                })
            };
            let handler = syn::ext::IdentExt::unraw(&m.ident).to_string();
            Some((handler, event_types, call))
        })
        .collect();
    let by_handler = handlers
        .iter()
        .map(|(handler, _, call)| quote!(#handler => #call,));
    let by_type = handlers
        .iter()
        .map(|(_, event_types, call)| quote!(#(#event_types)|* => #call,));
    quote! {
        fn deliver<'a>(
            &'a self,
            ctx: &'a ::lymph::Context,
            event: ::lymph::Event,
        ) -> ::lymph::BoxFuture<'a, ::std::result::Result<(), ::lymph::Error>> {
            let _ = ctx;
            let __handler = event.handler.clone();
            let __event_type = event.event_type.clone();
            match __handler.as_str() {
                #(#by_handler)*
                _ => match __event_type.as_str() {
                    #(#by_type)*
                    other => {
                        let error = ::lymph::__private::unknown_event(#interface, other);
                        ::std::boxed::Box::pin(async move { ::std::result::Result::Err(error) })
                    }
                },
            }
        }
    }
}

/// `fn http`: the route handler named by the request's endpoint.
fn http(model: &Model) -> TokenStream {
    let interface = &model.name;
    let arms: Vec<TokenStream> = model
        .methods
        .iter()
        .filter_map(|m| {
            let Role::Route { .. } = &m.role else {
                return None;
            };
            let endpoint = syn::ext::IdentExt::unraw(&m.ident).to_string();
            let args = m
                .args
                .iter()
                .map(|a| match a {
                    Arg::Http => quote!(request),
                    _ => quote!(ctx),
                })
                .collect();
            let invoke = invoke(m, args);
            Some(quote! {
                #endpoint => ::std::boxed::Box::pin(async move {
                    ::lymph::__private::http_reply(#invoke)
                }),
            })
        })
        .collect();
    if arms.is_empty() {
        return TokenStream::new();
    }
    quote! {
        fn http<'a>(
            &'a self,
            ctx: &'a ::lymph::Context,
            request: ::lymph::http::Request,
        ) -> ::lymph::BoxFuture<'a, ::std::result::Result<::lymph::http::Response, ::lymph::Error>> {
            let _ = ctx;
            let __endpoint = request.endpoint.clone();
            match __endpoint.as_str() {
                #(#arms)*
                other => {
                    let error = ::lymph::__private::unknown_endpoint(#interface, other);
                    ::std::boxed::Box::pin(async move { ::std::result::Result::Err(error) })
                }
            }
        }
    }
}

fn is_event_type(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Event"))
}

fn hooks(model: &Model) -> TokenStream {
    let interface = &model.name;
    let mut out = TokenStream::new();
    for m in &model.methods {
        match &m.role {
            Role::ApplyConfig => {
                let config = format_ident!("__config");
                let ty = m.args.iter().find_map(|a| match a {
                    Arg::Config(ty) => Some(ty),
                    _ => None,
                });
                let invoke = invoke(m, vec![quote!(#config)]);
                out.extend(quote! {
                    fn apply_config(
                        &mut self,
                        section: ::lymph::__private::serde_json::Value,
                    ) -> ::std::result::Result<(), ::lymph::Error> {
                        let #config: #ty = ::lymph::__private::decode_config(#interface, section)?;
                        ::lymph::Outcome::into_result(#invoke)
                    }
                });
            }
            Role::OnStart => {
                let invoke = invoke(m, m.args.iter().map(|_| quote!(ctx)).collect());
                out.extend(quote! {
                    fn on_start<'a>(
                        &'a self,
                        ctx: &'a ::lymph::Context,
                    ) -> ::lymph::BoxFuture<'a, ::std::result::Result<(), ::lymph::Error>> {
                        let _ = ctx;
                        ::std::boxed::Box::pin(async move { ::lymph::Outcome::into_result(#invoke) })
                    }
                });
            }
            Role::OnStop => {
                let invoke = invoke(m, Vec::new());
                out.extend(quote! {
                    fn on_stop(&self) -> ::lymph::BoxFuture<'_, ()> {
                        ::std::boxed::Box::pin(async move {
                            ::lymph::__private::log_stop(#interface, ::lymph::Outcome::into_result(#invoke));
                        })
                    }
                });
            }
            Role::Rpc { .. } | Role::Event { .. } | Role::Route { .. } => {}
        }
    }
    out
}
