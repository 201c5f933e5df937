//! Parsing `key = value` attribute arguments, with every error reported (unknown, retired,
//! duplicate, wrong value type), each at its own span.
//!
//! A macro lists its options with their kinds; what it gets back is a [`Parsed`] set it reads by
//! name and type, each with the macro's own default. The option names exist in one place per
//! macro, and a misspelt name is an error that lists the valid ones, never a silently ignored
//! default.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, Meta, Token};

use crate::errors::Errors;

/// What an option takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Bool,
    Int,
    /// A path given as a string: `crate = "::my_openbox"`.
    Path,
}

impl Kind {
    fn example(self, name: &str) -> String {
        match self {
            Kind::Str => format!("`{name} = \"...\"`"),
            Kind::Bool => format!("`{name} = false`"),
            Kind::Int => format!("`{name} = 500`"),
            Kind::Path => format!("`{name} = \"::path::to::openbox\"`"),
        }
    }
}

/// An option a macro takes.
pub(crate) type Spec = (&'static str, Kind);

/// An option a macro took once and no longer does, with what to do instead.
pub(crate) type Retired = (&'static str, &'static str);

/// The option every macro takes: where `openbox` is, for code that renamed the dependency.
pub(crate) const CRATE: Spec = ("crate", Kind::Path);

/// A parsed option value.
enum Value {
    Str(syn::LitStr),
    Bool(bool),
    Int(usize),
    Path(syn::Path),
}

/// The valid options given, read by name with the macro's default for the others.
#[derive(Default)]
pub(crate) struct Parsed(Vec<(&'static str, Value)>);

impl Parsed {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A `Kind::Bool` option, or `default`.
    pub(crate) fn bool(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some(Value::Bool(b)) => *b,
            _ => default,
        }
    }

    /// A `Kind::Str` option, if given.
    pub(crate) fn str(&self, name: &str) -> Option<syn::LitStr> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A `Kind::Int` option, or `default`.
    pub(crate) fn int(&self, name: &str, default: usize) -> usize {
        match self.get(name) {
            Some(Value::Int(n)) => *n,
            _ => default,
        }
    }

    /// The path of `openbox`: `crate = "…"`, or `::openbox`.
    pub(crate) fn krate(&self) -> syn::Path {
        match self.get(CRATE.0) {
            Some(Value::Path(p)) => p.clone(),
            _ => syn::parse_quote!(::openbox),
        }
    }
}

/// Parses `attr` against `specs`; problems go to `errors`.
pub(crate) fn parse(
    macro_name: &str,
    attr: TokenStream,
    specs: &[Spec],
    retired: &[Retired],
    errors: &mut Errors,
) -> Parsed {
    let mut parsed = Parsed::default();
    if attr.is_empty() {
        return parsed;
    }
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return parsed;
        }
    };
    for meta in metas {
        let Some((name, kind)) = known(macro_name, &meta, specs, retired, errors) else {
            continue;
        };
        if parsed.get(name).is_some() {
            errors.push(syn::Error::new(
                meta.path().span(),
                format!("duplicate option `{name}`"),
            ));
            continue;
        }
        if let Some(value) = value_of(&meta, name, kind, errors) {
            parsed.0.push((name, value));
        }
    }
    parsed
}

/// The spec `meta` names; an error for an unknown or retired name.
fn known(
    macro_name: &str,
    meta: &Meta,
    specs: &[Spec],
    retired: &[Retired],
    errors: &mut Errors,
) -> Option<Spec> {
    let path = meta.path();
    // `crate` is a keyword: `is_ident` does not see it.
    let named =
        |n: &str| path.is_ident(n) || (path.segments.len() == 1 && path.segments[0].ident == n);
    if let Some(spec) = specs.iter().find(|(n, _)| named(n)) {
        return Some(*spec);
    }
    let message = match retired.iter().find(|(n, _)| named(n)) {
        Some((_, advice)) => format!("#[{macro_name}] {advice}"),
        None => {
            let shown = path
                .get_ident()
                .map_or_else(|| quote::quote!(#path).to_string(), |i| i.to_string());
            let expected = if specs.is_empty() {
                format!("#[{macro_name}] takes no options")
            } else {
                let names: Vec<_> = specs.iter().map(|(n, _)| format!("`{n}`")).collect();
                format!("expected one of {}", names.join(", "))
            };
            format!("unknown option `{shown}` for #[{macro_name}]: {expected}")
        }
    };
    errors.push(syn::Error::new(path.span(), message));
    None
}

/// The value of `name = <value>` when it has the kind the option takes.
fn value_of(meta: &Meta, name: &str, kind: Kind, errors: &mut Errors) -> Option<Value> {
    let Meta::NameValue(nv) = meta else {
        errors.push(syn::Error::new(
            meta.span(),
            format!("`{name}` takes a value: {}", kind.example(name)),
        ));
        return None;
    };
    let lit = match &nv.value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    };
    let value = match (lit, kind) {
        (Some(Lit::Str(s)), Kind::Str) => Ok(Value::Str(s.clone())),
        (Some(Lit::Str(s)), Kind::Path) => s.parse::<syn::Path>().map(Value::Path).map_err(|_| {
            syn::Error::new(
                s.span(),
                format!("`{name}` must name a path, like `\"::openbox\"`"),
            )
        }),
        (Some(Lit::Bool(b)), Kind::Bool) => Ok(Value::Bool(b.value)),
        (Some(Lit::Int(i)), Kind::Int) => match i.base10_parse::<usize>() {
            Ok(n) if n > 0 => Ok(Value::Int(n)),
            _ => Err(syn::Error::new(
                i.span(),
                format!("`{name}` must be a positive integer"),
            )),
        },
        _ => Err(syn::Error::new(
            nv.value.span(),
            format!("`{name}` takes {}", kind.example(name)),
        )),
    };
    value.map_err(|e| errors.push(e)).ok()
}
