//! `#[governed_workflow]`: placed above `#[workflow_methods]`, it sees the impl before Temporal's
//! macro rewrites it, declares the workflow and its signals' argument types to the plugin, and
//! leaves the impl (with `#[workflow_methods]` still on it) unchanged.
//!
//! parse ([`parse_item`]) → validate ([`validate`], [`signal`] per handler) → emit.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ImplItem, ImplItemFn, ItemImpl, Meta};

use crate::errors::Errors;
use crate::options::{self, CRATE};
use crate::types::{is_attr, last_segment_is, parse_item};

const CONTEXTS: [&str; 3] = [
    "WorkflowContext",
    "SyncWorkflowContext",
    "WorkflowContextView",
];

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let krate = options::parse("governed_workflow", attr, &[CRATE], &[], &mut errors).krate();
    let place = "a `#[workflow_methods]` impl";
    let Some(imp) = parse_item::<ItemImpl>(&item, "governed_workflow", place, &mut errors) else {
        return errors.emit_with(item);
    };
    validate(&imp, &mut errors);
    if !errors.is_empty() {
        return errors.emit_with(item);
    }
    let signals: Vec<TokenStream> = imp
        .items
        .iter()
        .filter_map(|it| match it {
            ImplItem::Fn(m) => signal(&krate, m, &mut errors),
            _ => None,
        })
        .collect();
    if !errors.is_empty() {
        return errors.emit_with(item);
    }
    let self_ty = &imp.self_ty;
    quote! {
        #imp

        #krate::__private::inventory::submit! {
            #krate::__private::WorkflowDecl {
                workflow_type: <#self_ty>::name,
                signals: &[#(#signals),*],
                input_check: #krate::__private::workflow_input_check::<#self_ty>,
            }
        }
    }
}

/// Where the attribute can work: directly above `#[workflow_methods]`, on a non-generic impl.
fn validate(imp: &ItemImpl, errors: &mut Errors) {
    if !imp.attrs.iter().any(|a| is_attr(a, "workflow_methods")) {
        errors.push(syn::Error::new(
            imp.impl_token.span,
            "#[governed_workflow] must be placed directly above `#[workflow_methods]` on the workflow's impl \
             (on a plain impl, or below `#[workflow_methods]`, there is no workflow to govern)",
        ));
    } else if !imp.generics.params.is_empty() {
        errors.push(syn::Error::new(
            imp.generics.span(),
            "#[governed_workflow] does not support generic workflows",
        ));
    }
}

/// The declaration of a `#[signal]` handler: its name and how its argument is reported.
fn signal(krate: &syn::Path, m: &ImplItemFn, errors: &mut Errors) -> Option<TokenStream> {
    let signal_attr = m.attrs.iter().find(|a| is_attr(a, "signal"))?;
    let name: TokenStream = match custom_name(signal_attr) {
        Ok(Some(expr)) => quote!(#expr),
        Ok(None) => {
            let n = m.sig.ident.to_string();
            quote!(#n)
        }
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let input_ty = m
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(pt) => Some(&*pt.ty),
            FnArg::Receiver(_) => None,
        })
        .find(|ty| !CONTEXTS.iter().any(|c| last_segment_is(ty, c)));
    let to_json = match input_ty {
        Some(ty) => quote_spanned!(ty.span()=> #krate::__private::signal_json::<#ty>),
        None => quote!(#krate::__private::signal_json::<()>),
    };
    Some(quote! {
        #krate::__private::SignalDecl { name: #name, to_json: #to_json }
    })
}

/// `name = <expr>` of `#[signal(name = …)]`, if given.
fn custom_name(attr: &syn::Attribute) -> syn::Result<Option<Expr>> {
    let Meta::List(list) = &attr.meta else {
        return Ok(None);
    };
    let mut name = None;
    list.parse_nested_meta(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse::<Expr>()?);
        } else if meta.input.peek(syn::Token![=]) {
            let _: Expr = meta.value()?.parse()?;
        }
        Ok(())
    })?;
    Ok(name)
}
