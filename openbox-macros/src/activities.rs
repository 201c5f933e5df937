//! `#[governed_activities]`: placed above `#[activities]`, it sees the impl before Temporal's
//! macro rewrites it and declares every activity method to the plugin by its exact activity
//! definition (the marker constant `#[activities]` generates), with a codec for all of its
//! arguments, whatever their number and types. The impl itself is left unchanged.
//!
//! parse ([`parse_item`]) → validate ([`validate`]) → emit ([`declaration`] per method).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{ImplItem, ImplItemFn, ItemImpl};

use crate::activity::ActivityArgs;
use crate::errors::Errors;
use crate::options::{self, CRATE};
use crate::types::{is_attr, parse_item};

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let krate = options::parse("governed_activities", attr, &[CRATE], &[], &mut errors).krate();
    let place = "an `#[activities]` impl";
    let Some(imp) = parse_item::<ItemImpl>(&item, "governed_activities", place, &mut errors) else {
        return errors.emit_with(item);
    };
    validate(&imp, &mut errors);
    if !errors.is_empty() {
        return errors.emit_with(item);
    }
    let decls = imp
        .items
        .iter()
        .filter_map(|it| match it {
            ImplItem::Fn(m) if m.attrs.iter().any(|a| is_attr(a, "activity")) => Some(m),
            _ => None,
        })
        .map(|m| declaration(&krate, &imp.self_ty, m));
    quote! {
        #imp

        const _: () = {
            #(#decls)*
        };
    }
}

/// Where the attribute can work: directly above `#[activities]`, on a non-generic impl.
fn validate(imp: &ItemImpl, errors: &mut Errors) {
    if !imp.attrs.iter().any(|a| is_attr(a, "activities")) {
        errors.push(syn::Error::new(
            imp.impl_token.span,
            "#[governed_activities] must be placed directly above `#[activities]` on the impl \
             (on a plain impl, or below `#[activities]`, there are no activities to declare)",
        ));
    } else if !imp.generics.params.is_empty() {
        errors.push(syn::Error::new(
            imp.generics.span(),
            "#[governed_activities] does not support generic impls",
        ));
    }
}

/// The registry entry of one activity method, with its own `#[governed_activity(…)]` options
/// (whose errors that attribute reports, not this one).
fn declaration(krate: &syn::Path, self_ty: &syn::Type, m: &ImplItemFn) -> TokenStream {
    let method = &m.sig.ident;
    let tokens = m
        .attrs
        .iter()
        .find(|a| is_attr(a, "governed_activity"))
        .and_then(|a| match &a.meta {
            syn::Meta::List(list) => Some(list.tokens.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut method_args = ActivityArgs::parse(tokens, &mut Errors::default());
    method_args.krate = krate.clone();
    let settings = method_args.settings();
    let name_fn = format_ident!("__openbox_activity_type_{}", method);
    quote! {
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
    }
}
