//! `#[governed_activities]`: placed above `#[activities]`, it sees the impl before Temporal's
//! macro rewrites it and declares every activity method to the plugin by its exact activity
//! definition (the marker constant `#[activities]` generates), with a codec for all of its
//! arguments, whatever their number and types. The impl itself is left unchanged.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl};

use crate::activity::ActivityArgs;
use crate::errors::Errors;
use crate::options::{self, CRATE, Value};
use crate::types::item_kind;

fn is_attr(attr: &syn::Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut krate = options::default_crate();
    options::parse(
        "governed_activities",
        attr,
        &[CRATE],
        &mut errors,
        |_, value| {
            if let Value::Path(p) = value {
                krate = p;
            }
        },
    );
    let imp: ItemImpl = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            let what = item_kind(&item);
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span());
            errors.push(syn::Error::new(
                span,
                format!("#[governed_activities] goes on an `#[activities]` impl, not on {what}"),
            ));
            return errors.emit_with(item);
        }
    };
    if !imp.attrs.iter().any(|a| is_attr(a, "activities")) {
        errors.push(syn::Error::new(
            imp.impl_token.span,
            "#[governed_activities] must be placed directly above `#[activities]` on the impl \
             (on a plain impl, or below `#[activities]`, there are no activities to declare)",
        ));
        return errors.emit_with(item);
    }
    if !imp.generics.params.is_empty() {
        errors.push(syn::Error::new(
            imp.generics.span(),
            "#[governed_activities] does not support generic impls",
        ));
        return errors.emit_with(item);
    }
    if !errors.is_empty() {
        return errors.emit_with(item);
    }

    let self_ty = &imp.self_ty;
    let mut decls = Vec::new();
    for it in &imp.items {
        let ImplItem::Fn(m) = it else { continue };
        if !m.attrs.iter().any(|a| is_attr(a, "activity")) {
            continue;
        }
        let method = &m.sig.ident;
        // The method's own `#[governed_activity(…)]` options apply; its errors are reported by
        // that attribute, not twice.
        let mut ignored = Errors::default();
        let tokens = m
            .attrs
            .iter()
            .find(|a| is_attr(a, "governed_activity"))
            .and_then(|a| match &a.meta {
                syn::Meta::List(list) => Some(list.tokens.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let mut method_args = ActivityArgs::parse(tokens, &mut ignored);
        method_args.krate = krate.clone();
        let settings = method_args.settings();
        let name_fn = format_ident!("__openbox_activity_type_{}", method);
        decls.push(quote! {
            #[allow(non_snake_case)]
            fn #name_fn() -> &'static str {
                #krate::__private::activity_type_name(&<#self_ty>::#method)
            }
            #krate::__private::inventory::submit! {
                #krate::__private::ActivityTypeDecl {
                    activity_type: #name_fn,
                    settings: #settings,
                    codec: #krate::__private::codec_of_definition(&<#self_ty>::#method),
                }
            }
        });
    }
    quote! {
        #imp

        const _: () = {
            #(#decls)*
        };
    }
}
