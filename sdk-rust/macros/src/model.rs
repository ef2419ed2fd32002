//! Reads an `impl` block into a model of the interface: its name and version,
//! and per method its role (rpc, event, config, lifecycle), parameters and
//! help text. Strips the helper attributes; reports misuse as compile errors.

use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, Pat, Type};

#[derive(Default)]
pub struct InterfaceOptions {
    pub name: Option<String>,
    pub version: Option<String>,
}

impl InterfaceOptions {
    pub fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("name") {
            self.name = Some(meta.value()?.parse::<LitStr>()?.value());
        } else if meta.path.is_ident("version") {
            self.version = Some(meta.value()?.parse::<LitStr>()?.value());
        } else {
            return Err(meta.error("expected `name = \"..\"` or `version = \"..\"`"));
        }
        Ok(())
    }
}

/// How a handler gets one of its parameters.
pub enum Arg {
    /// The `&Context`.
    Context,
    /// An RPC argument (name as callers spell it, Rust ident, type).
    Named(String, syn::Ident, Type),
    /// The event: `lymph::Event` itself, or a type its body decodes into.
    Event(Type),
    /// `#[apply_config]`'s typed config section.
    Config(Type),
    /// A `#[route]` handler's `lymph::http::Request`.
    Http,
}

pub struct Method {
    pub ident: syn::Ident,
    pub is_async: bool,
    pub args: Vec<Arg>,
    pub role: Role,
}

pub enum Role {
    Rpc {
        name: String,
        help: String,
        raises: Vec<String>,
        /// `concurrency = N`: requests at once; 0 when not given.
        concurrency: u32,
    },
    Event {
        event_types: Vec<String>,
        broadcast: bool,
        retry: u32,
        /// `concurrency = N`: deliveries at once; 0 when not given.
        concurrency: u32,
    },
    /// `#[route("/path", methods = ["GET"])]`; the endpoint is the method's name.
    Route {
        path: String,
        methods: Vec<String>,
    },
    ApplyConfig,
    OnStart,
    OnStop,
}

pub struct Model {
    pub name: String,
    pub version: String,
    pub methods: Vec<Method>,
}

impl Model {
    /// The model, and the `impl` block with the helper attributes removed.
    pub fn from_impl(
        options: InterfaceOptions,
        mut item: ItemImpl,
    ) -> syn::Result<(Model, ItemImpl)> {
        if let Some((_, path, _)) = &item.trait_ {
            return Err(syn::Error::new(
                path.span(),
                "#[lymph::interface] goes on an inherent impl block",
            ));
        }
        let name = match options.name {
            Some(name) => name,
            None => type_name(&item.self_ty)?,
        };
        let mut methods = Vec::new();
        for entry in &mut item.items {
            let ImplItem::Fn(function) = entry else {
                continue;
            };
            if let Some(method) = Method::take(function)? {
                methods.push(method);
            }
        }
        let model = Model {
            name,
            version: options.version.unwrap_or_default(),
            methods,
        };
        model.check_unique()?;
        Ok((model, item))
    }

    fn check_unique(&self) -> syn::Result<()> {
        let mut rpcs = Vec::new();
        let mut events = Vec::new();
        let mut singles = Vec::new();
        for method in &self.methods {
            let duplicate = match &method.role {
                Role::Rpc { name, .. } => push_unique(&mut rpcs, name.clone())
                    .then(|| format!("two rpc methods are named `{name}`")),
                Role::Event { event_types, .. } => event_types
                    .iter()
                    .find(|t| push_unique(&mut events, (*t).clone()))
                    .map(|t| format!("two event handlers for `{t}`")),
                Role::Route { .. } => None,
                Role::ApplyConfig => push_unique(&mut singles, "apply_config".into())
                    .then(|| "two #[apply_config] methods".into()),
                Role::OnStart => push_unique(&mut singles, "on_start".into())
                    .then(|| "two #[on_start] methods".into()),
                Role::OnStop => push_unique(&mut singles, "on_stop".into())
                    .then(|| "two #[on_stop] methods".into()),
            };
            if let Some(message) = duplicate {
                return Err(syn::Error::new(method.ident.span(), message));
            }
        }
        Ok(())
    }
}

/// Pushes `value` unless present; true when it was already there.
fn push_unique(seen: &mut Vec<String>, value: String) -> bool {
    if seen.contains(&value) {
        return true;
    }
    seen.push(value);
    false
}

fn type_name(ty: &Type) -> syn::Result<String> {
    if let Type::Path(path) = ty
        && let Some(last) = path.path.segments.last()
    {
        return Ok(last.ident.to_string());
    }
    Err(syn::Error::new(
        ty.span(),
        "cannot name this interface; use #[lymph::interface(name = \"..\")]",
    ))
}

const ROLES: [&str; 6] = [
    "rpc",
    "event",
    "route",
    "apply_config",
    "on_start",
    "on_stop",
];

impl Method {
    /// Reads and removes the method's role attribute; `None` for plain methods.
    fn take(function: &mut ImplItemFn) -> syn::Result<Option<Method>> {
        let position = function
            .attrs
            .iter()
            .position(|a| ROLES.iter().any(|r| a.path().is_ident(r)));
        let Some(position) = position else {
            return Ok(None);
        };
        let attr = function.attrs.remove(position);
        if let Some(other) = function
            .attrs
            .iter()
            .find(|a| ROLES.iter().any(|r| a.path().is_ident(r)))
        {
            return Err(syn::Error::new(
                other.span(),
                "a method has at most one lymph role",
            ));
        }
        let mut role = parse_role(&attr, &function.attrs)?;
        if let Role::Rpc { name, .. } = &mut role
            && name.is_empty()
        {
            *name = syn::ext::IdentExt::unraw(&function.sig.ident).to_string();
        }
        let sig = &function.sig;
        let wants_mut = matches!(role, Role::ApplyConfig);
        match sig.inputs.first() {
            Some(FnArg::Receiver(r))
                if r.reference.is_some() && r.mutability.is_some() == wants_mut => {}
            _ => {
                let expected = if wants_mut { "&mut self" } else { "&self" };
                return Err(syn::Error::new(
                    sig.span(),
                    format!("this method must take `{expected}`"),
                ));
            }
        }
        let mut args = Vec::new();
        for input in sig.inputs.iter().skip(1) {
            let FnArg::Typed(typed) = input else {
                continue;
            };
            args.push(classify(&role, &typed.pat, &typed.ty)?);
        }
        check_args(&role, &args, sig)?;
        Ok(Some(Method {
            ident: sig.ident.clone(),
            is_async: sig.asyncness.is_some(),
            args,
            role,
        }))
    }
}

fn classify(role: &Role, pat: &Pat, ty: &Type) -> syn::Result<Arg> {
    if is_context(ty) {
        return Ok(Arg::Context);
    }
    match role {
        Role::Rpc { .. } => {
            let Pat::Ident(ident) = pat else {
                return Err(syn::Error::new(
                    pat.span(),
                    "rpc parameters must be plain names (they are the argument names)",
                ));
            };
            if let Type::Reference(_) = ty {
                return Err(syn::Error::new(
                    ty.span(),
                    "rpc parameters must be owned types (String, not &str)",
                ));
            }
            let name = syn::ext::IdentExt::unraw(&ident.ident).to_string();
            Ok(Arg::Named(name, ident.ident.clone(), ty.clone()))
        }
        Role::Event { .. } => Ok(Arg::Event(ty.clone())),
        Role::Route { .. } => Ok(Arg::Http),
        Role::ApplyConfig => Ok(Arg::Config(ty.clone())),
        Role::OnStart | Role::OnStop => Err(syn::Error::new(
            ty.span(),
            "lifecycle hooks take only `&self` and, for on_start, `&Context`",
        )),
    }
}

fn check_args(role: &Role, args: &[Arg], sig: &syn::Signature) -> syn::Result<()> {
    let count = |f: fn(&Arg) -> bool| args.iter().filter(|a| f(a)).count();
    let contexts = count(|a| matches!(a, Arg::Context));
    let problem = match role {
        _ if contexts > 1 => Some("at most one `&Context` parameter"),
        Role::Event { .. } if count(|a| matches!(a, Arg::Event(_))) != 1 => {
            Some("an event handler takes exactly one event parameter")
        }
        Role::Route { .. } if count(|a| matches!(a, Arg::Http)) != 1 => {
            Some("a route handler takes exactly one `lymph::http::Request` parameter")
        }
        Role::Route { .. } if sig.asyncness.is_none() => Some("a route handler must be async"),
        Role::ApplyConfig if args.len() != 1 || contexts != 0 => {
            Some("#[apply_config] takes exactly one parameter: the config section's type")
        }
        Role::OnStop if contexts != 0 => Some("#[on_stop] takes only `&self`"),
        Role::ApplyConfig if sig.asyncness.is_some() => Some("#[apply_config] must not be async"),
        _ => None,
    };
    match problem {
        Some(message) => Err(syn::Error::new(sig.span(), message)),
        None => Ok(()),
    }
}

/// `&Context`, `&lymph::Context`, `&::lymph::Context`.
fn is_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    let Type::Path(path) = reference.elem.as_ref() else {
        return false;
    };
    path.path
        .segments
        .last()
        .is_some_and(|s| s.ident == "Context")
}

fn parse_role(attr: &Attribute, other_attrs: &[Attribute]) -> syn::Result<Role> {
    let path = attr.path();
    if path.is_ident("rpc") {
        let mut name = None;
        let mut raises = Vec::new();
        let mut concurrency = 0;
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    name = Some(meta.value()?.parse::<LitStr>()?.value());
                } else if meta.path.is_ident("raises") {
                    let list: syn::ExprArray = meta.value()?.parse()?;
                    for element in list.elems {
                        match element {
                            syn::Expr::Lit(syn::ExprLit {
                                lit: syn::Lit::Str(s),
                                ..
                            }) => raises.push(s.value()),
                            other => {
                                return Err(syn::Error::new(other.span(), "expected a string"));
                            }
                        }
                    }
                } else if meta.path.is_ident("concurrency") {
                    concurrency = parse_concurrency("rpc", &meta.value()?.parse::<syn::Expr>()?)?;
                } else {
                    return Err(meta.error(
                        "expected `name = \"..\"`, `raises = [\"..\"]` or `concurrency = N`",
                    ));
                }
                Ok(())
            })?;
        }
        return Ok(Role::Rpc {
            name: name.unwrap_or_default(),
            help: help_text(other_attrs),
            raises,
            concurrency,
        });
    }
    if path.is_ident("event") {
        return parse_event(attr);
    }
    if path.is_ident("route") {
        return parse_route(attr);
    }
    let no_args = |role: Role| match attr.meta {
        syn::Meta::Path(_) => Ok(role),
        _ => Err(syn::Error::new(
            attr.span(),
            "this attribute takes no arguments",
        )),
    };
    if path.is_ident("apply_config") {
        no_args(Role::ApplyConfig)
    } else if path.is_ident("on_start") {
        no_args(Role::OnStart)
    } else {
        no_args(Role::OnStop)
    }
}

/// `#[event("a", "b", broadcast, retry = 3, concurrency = 2)]`.
fn parse_event(attr: &Attribute) -> syn::Result<Role> {
    let mut event_types = Vec::new();
    let mut broadcast = false;
    let mut retry = 0;
    let mut concurrency = 0;
    attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        while !input.is_empty() {
            if input.peek(LitStr) {
                event_types.push(input.parse::<LitStr>()?.value());
            } else {
                let ident: syn::Ident = input.parse()?;
                if ident == "broadcast" {
                    broadcast = true;
                } else if ident == "once" {
                    broadcast = false;
                } else if ident == "retry" {
                    input.parse::<syn::Token![=]>()?;
                    retry = input.parse::<syn::LitInt>()?.base10_parse()?;
                } else if ident == "concurrency" {
                    input.parse::<syn::Token![=]>()?;
                    concurrency = parse_concurrency("event", &input.parse::<syn::Expr>()?)?;
                } else {
                    return Err(syn::Error::new(
                        ident.span(),
                        "expected an event type, `broadcast`, `once`, `retry = N` or `concurrency = N`",
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<syn::Token![,]>()?;
            }
        }
        Ok(())
    })?;
    if event_types.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "name the event type: #[event(\"greeted\")]",
        ));
    }
    Ok(Role::Event {
        event_types,
        broadcast,
        retry,
        concurrency,
    })
}

/// `concurrency = N` of `#[rpc]` or `#[event]`: a whole number of at least 1
/// (leaving it out means no limit of the handler's own).
fn parse_concurrency(role: &str, value: &syn::Expr) -> syn::Result<u32> {
    if let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(lit),
        ..
    }) = value
        && let Ok(n @ 1..) = lit.base10_parse::<u32>()
    {
        return Ok(n);
    }
    Err(syn::Error::new(
        value.span(),
        format!("`concurrency` of #[{role}] must be a whole number of at least 1"),
    ))
}

/// `#[route("/users/<id>", methods = ["GET", "POST"])]`; `GET` by default.
fn parse_route(attr: &Attribute) -> syn::Result<Role> {
    let mut path = None;
    let mut methods = Vec::new();
    attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        path = Some(input.parse::<LitStr>()?);
        while !input.is_empty() {
            input.parse::<syn::Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let ident: syn::Ident = input.parse()?;
            if ident != "methods" {
                return Err(syn::Error::new(
                    ident.span(),
                    "expected `methods = [\"GET\", ..]`",
                ));
            }
            input.parse::<syn::Token![=]>()?;
            let list: syn::ExprArray = input.parse()?;
            for element in list.elems {
                match element {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => methods.push(s.value().to_ascii_uppercase()),
                    other => return Err(syn::Error::new(other.span(), "expected a string")),
                }
            }
        }
        Ok(())
    })?;
    let Some(path) = path else {
        return Err(syn::Error::new(
            attr.span(),
            "name the path: #[route(\"/greet\")]",
        ));
    };
    if !path.value().starts_with('/') {
        return Err(syn::Error::new(
            path.span(),
            "a route's path starts with '/'",
        ));
    }
    if methods.is_empty() {
        methods.push("GET".to_owned());
    }
    Ok(Role::Route {
        path: path.value(),
        methods,
    })
}

/// The doc comment, one leading space per line removed, trimmed.
fn help_text(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').map(str::to_owned).unwrap_or(line))
        .collect();
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests;
