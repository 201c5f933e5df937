//! `#[governed_activities]`: placed above `#[activities]`, it sees the impl before Temporal's
//! macro rewrites it and declares every activity method to the plugin by its exact activity
//! definition (the marker constant `#[activities]` generates), with a codec for all of its
//! arguments, whatever their number and types. The impl itself is left unchanged.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl};

use crate::activity::OPTIONS;
use crate::errors::Errors;
use crate::options;
use crate::types::item_kind;

fn is_attr(attr: &syn::Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    options::parse("governed_activities", attr, &[], &mut errors);
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
        let opts = m
            .attrs
            .iter()
            .find(|a| is_attr(a, "governed_activity"))
            .map(|a| match &a.meta {
                syn::Meta::List(list) => options::parse(
                    "governed_activity",
                    list.tokens.clone(),
                    OPTIONS,
                    &mut ignored,
                ),
                _ => options::Options::default(),
            })
            .unwrap_or_default();
        let capture_input = opts.bool("capture_input", true);
        let capture_output = opts.bool("capture_output", true);
        let approval = opts.bool("approval", true);
        let name_fn = format_ident!("__openbox_activity_type_{}", method);
        decls.push(quote! {
            #[allow(non_snake_case)]
            fn #name_fn() -> &'static str {
                ::openbox::__private::activity_type_name(&<#self_ty>::#method)
            }
            ::openbox::__private::inventory::submit! {
                ::openbox::__private::ActivityTypeDecl {
                    activity_type: #name_fn,
                    settings: ::openbox::__private::ActivitySettings {
                        capture_input: #capture_input,
                        capture_output: #capture_output,
                        approval: #approval,
                    },
                    codec: ::openbox::__private::codec_of_definition(&<#self_ty>::#method),
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
