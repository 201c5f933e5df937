//! `key = value` options of the attributes, with every error reported (unknown, duplicate,
//! wrong value type), each at its own span.

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
}

impl Kind {
    fn example(self, name: &str) -> String {
        match self {
            Kind::Str => format!("`{name} = \"...\"`"),
            Kind::Bool => format!("`{name} = false`"),
            Kind::Int => format!("`{name} = 500`"),
        }
    }
}

/// A parsed option value.
#[derive(Clone)]
pub(crate) enum Value {
    Str(syn::LitStr),
    Bool(bool),
    Int(usize),
}

/// The options given to one attribute.
#[derive(Default)]
pub(crate) struct Options {
    values: Vec<(&'static str, Value)>,
}

impl Options {
    pub(crate) fn str(&self, name: &str) -> Option<syn::LitStr> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
    }

    pub(crate) fn bool(&self, name: &str, default: bool) -> bool {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                Value::Bool(b) => Some(*b),
                _ => None,
            })
            .unwrap_or(default)
    }
}

impl Options {
    pub(crate) fn int(&self, name: &str) -> Option<usize> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            })
    }
}

/// Parses `attr` against `specs`; problems go to `errors`, and the valid options are returned.
pub(crate) fn parse(
    macro_name: &str,
    attr: TokenStream,
    specs: &[(&'static str, Kind)],
    errors: &mut Errors,
) -> Options {
    let mut options = Options::default();
    if attr.is_empty() {
        return options;
    }
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return options;
        }
    };
    let expected = if specs.is_empty() {
        format!("#[{macro_name}] takes no options")
    } else {
        let names: Vec<_> = specs.iter().map(|(n, _)| format!("`{n}`")).collect();
        format!("expected one of {}", names.join(", "))
    };
    for meta in metas {
        let path = meta.path();
        let Some((name, kind)) = specs.iter().find(|(n, _)| path.is_ident(n)).copied() else {
            let shown = path
                .get_ident()
                .map_or_else(|| quote::quote!(#path).to_string(), |i| i.to_string());
            errors.push(syn::Error::new(
                path.span(),
                format!("unknown option `{shown}` for #[{macro_name}]: {expected}"),
            ));
            continue;
        };
        if options.values.iter().any(|(n, _)| *n == name) {
            errors.push(syn::Error::new(
                path.span(),
                format!("duplicate option `{name}`"),
            ));
            continue;
        }
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
        options.values.push((name, value));
    }
    options
}
