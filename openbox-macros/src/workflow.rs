//! `#[governed_workflow]`: placed above `#[workflow_methods]`, it sees the impl before Temporal's
//! macro rewrites it, declares the workflow and its signals' argument types to the plugin, and
//! leaves the impl (with `#[workflow_methods]` still on it) unchanged.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ImplItem, ItemImpl, Meta};

use crate::errors::Errors;
use crate::options::{self, CRATE, Value};
use crate::types::{item_kind, last_segment_is};

const CONTEXTS: [&str; 3] = [
    "WorkflowContext",
    "SyncWorkflowContext",
    "WorkflowContextView",
];

fn is_attr(attr: &syn::Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut krate = options::default_crate();
    options::parse(
        "governed_workflow",
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
                format!("#[governed_workflow] goes on a `#[workflow_methods]` impl, not on {what}"),
            ));
            return errors.emit_with(item);
        }
    };
    if !imp.attrs.iter().any(|a| is_attr(a, "workflow_methods")) {
        errors.push(syn::Error::new(
            imp.impl_token.span,
            "#[governed_workflow] must be placed directly above `#[workflow_methods]` on the workflow's impl \
             (on a plain impl, or below `#[workflow_methods]`, there is no workflow to govern)",
        ));
        return errors.emit_with(item);
    }
    if !imp.generics.params.is_empty() {
        errors.push(syn::Error::new(
            imp.generics.span(),
            "#[governed_workflow] does not support generic workflows",
        ));
        return errors.emit_with(item);
    }

    let mut signals = Vec::new();
    for it in &imp.items {
        let ImplItem::Fn(m) = it else { continue };
        let Some(signal_attr) = m.attrs.iter().find(|a| is_attr(a, "signal")) else {
            continue;
        };
        let name: TokenStream = match custom_name(signal_attr) {
            Ok(Some(expr)) => quote!(#expr),
            Ok(None) => {
                let n = m.sig.ident.to_string();
                quote!(#n)
            }
            Err(e) => {
                errors.push(e);
                continue;
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
        signals.push(quote! {
            #krate::__private::SignalDecl { name: #name, to_json: #to_json }
        });
    }
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
