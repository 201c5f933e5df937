//! Parsing `key = value` attribute arguments into each macro's typed argument struct, with every
//! error reported (unknown, duplicate, wrong value type), each at its own span.
//!
//! A macro lists its options with their kinds and receives each valid one once, by name, to
//! store in its own struct: the option names exist in one place per macro, and the expansion
//! reads typed fields, so a misspelt name is an error, never a silently ignored default.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, Meta, Token};

use crate::errors::Errors;

/// What an option takes.
#[derive(Clone, Copy)]
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

/// A parsed option value.
pub(crate) enum Value {
    Str(syn::LitStr),
    Bool(bool),
    Int(usize),
    Path(syn::Path),
}

/// The option every macro takes: where `openbox` is, for code that renamed the dependency.
pub(crate) const CRATE: (&str, Kind) = ("crate", Kind::Path);

/// The path of `openbox` unless `crate = "…"` says otherwise.
pub(crate) fn default_crate() -> syn::Path {
    syn::parse_quote!(::openbox)
}

/// Parses `attr` against `specs` and calls `set(name, value)` once per valid option; problems
/// go to `errors`.
pub(crate) fn parse(
    macro_name: &str,
    attr: TokenStream,
    specs: &[(&'static str, Kind)],
    errors: &mut Errors,
    mut set: impl FnMut(&'static str, Value),
) {
    if attr.is_empty() {
        return;
    }
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return;
        }
    };
    let expected = if specs.is_empty() {
        format!("#[{macro_name}] takes no options")
    } else {
        let names: Vec<_> = specs.iter().map(|(n, _)| format!("`{n}`")).collect();
        format!("expected one of {}", names.join(", "))
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for meta in metas {
        let path = meta.path();
        let found = specs.iter().find(|(n, _)| {
            path.is_ident(n)
                || (*n == "crate" && path.segments.len() == 1 && path.segments[0].ident == "crate")
        });
        let Some((name, kind)) = found.copied() else {
            let shown = path
                .get_ident()
                .map_or_else(|| quote::quote!(#path).to_string(), |i| i.to_string());
            errors.push(syn::Error::new(
                path.span(),
                format!("unknown option `{shown}` for #[{macro_name}]: {expected}"),
            ));
            continue;
        };
        if seen.contains(&name) {
            errors.push(syn::Error::new(
                path.span(),
                format!("duplicate option `{name}`"),
            ));
            continue;
        }
        seen.push(name);
        let wrong = || {
            syn::Error::new(
                meta.span(),
                format!("`{name}` takes a value: {}", kind.example(name)),
            )
        };
        let Meta::NameValue(nv) = &meta else {
            errors.push(wrong());
            continue;
        };
        let value = match (&nv.value, kind) {
            (
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }),
                Kind::Str,
            ) => Value::Str(s.clone()),
            (
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }),
                Kind::Path,
            ) => match s.parse::<syn::Path>() {
                Ok(p) => Value::Path(p),
                Err(_) => {
                    errors.push(syn::Error::new(
                        s.span(),
                        format!("`{name}` must name a path, like `\"::openbox\"`"),
                    ));
                    continue;
                }
            },
            (
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }),
                Kind::Bool,
            ) => Value::Bool(b.value),
            (
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }),
                Kind::Int,
            ) => match i.base10_parse::<usize>() {
                Ok(n) if n > 0 => Value::Int(n),
                _ => {
                    errors.push(syn::Error::new(
                        i.span(),
                        format!("`{name}` must be a positive integer"),
                    ));
                    continue;
                }
            },
            _ => {
                errors.push(syn::Error::new(
                    nv.value.span(),
                    format!("`{name}` takes {}", kind.example(name)),
                ));
                continue;
            }
        };
        set(name, value);
    }
}
