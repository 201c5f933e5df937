//! `#[governed_activity]`: wraps the body of an activity method (after `#[activities]` has
//! expanded and renamed it `__<name>`) into the governed lifecycle, and declares the activity
//! to the plugin through a link-time registry.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItemFn, Pat, ReturnType, Type};

use crate::errors::Errors;
use crate::options::{self, Kind};
use crate::types::{item_kind, last_segment_is, mentions_self, result_ok_type};

pub(crate) const OPTIONS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("capture_input", Kind::Bool),
    ("capture_output", Kind::Bool),
    ("approval", Kind::Bool),
];

struct Arg {
    pat: Pat,
    ty: Type,
    ident: syn::Ident,
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = options::parse("governed_activity", attr, OPTIONS, &mut errors);
    let mut method: ImplItemFn = match syn::parse2(item.clone()) {
        Ok(m) => m,
        Err(_) => {
            let what = item_kind(&item);
            errors.push(syn::Error::new(
                first_token_span(&item),
                format!(
                    "#[governed_activity] goes on an activity method inside an `#[activities]` impl, not on {what}"
                ),
            ));
            return errors.emit_with(item);
        }
    };

    let sig = &method.sig;
    let method_name = sig.ident.to_string();
    let Some(bare_name) = method_name.strip_prefix("__").map(str::to_owned) else {
        errors.push(syn::Error::new(
            sig.ident.span(),
            "#[governed_activity] must be on an `#[activity]` method inside an `#[activities]` impl \
             (it expands after `#[activities]`, which renames activity methods to `__<name>`)",
        ));
        return errors.emit_with(quote!(#method));
    };

    // The context parameter and the arguments after it.
    let mut ctx: Option<(Pat, Span)> = None;
    let mut args = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(pt) = input else { continue };
        if ctx.is_none() && last_segment_is(&pt.ty, "ActivityContext") {
            ctx = Some(((*pt.pat).clone(), pt.span()));
        } else if ctx.is_some() {
            if mentions_self(&pt.ty) {
                errors.push(syn::Error::new(pt.ty.span(), "the argument types of a #[governed_activity] cannot mention `Self`: name the type"));
            }
            let ident = format_ident!("__openbox_arg{}", args.len());
            args.push(Arg {
                pat: (*pt.pat).clone(),
                ty: (*pt.ty).clone(),
                ident,
            });
        }
    }
    if ctx.is_none() {
        errors.push(syn::Error::new(
            sig.inputs
                .span()
                .join(sig.ident.span())
                .unwrap_or(sig.ident.span()),
            "a #[governed_activity] method needs an `ActivityContext` parameter",
        ));
    }
    let output_ty = match &sig.output {
        ReturnType::Type(_, ty) if result_ok_type(ty, "ActivityError").is_some() => {
            result_ok_type(ty, "ActivityError")
        }
        ReturnType::Type(_, ty) => {
            errors.push(syn::Error::new(
                ty.span(),
                "a #[governed_activity] method must return `Result<T, ActivityError>` so that governance can fail it",
            ));
            None
        }
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "a #[governed_activity] method must return `Result<T, ActivityError>` so that governance can fail it",
            ));
            None
        }
    };
    if args.len() > 6 {
        errors.push(syn::Error::new(
            sig.inputs.span(),
            "activities take at most 6 arguments after `ActivityContext`",
        ));
    }
    let (Some((ctx_pat, _)), Some(output_ty)) = (ctx, output_ty) else {
        return errors.emit_with(quote!(#method));
    };
    if !errors.is_empty() {
        return errors.emit_with(quote!(#method));
    }

    let name = options.str("name");
    let capture_input = options.bool("capture_input", true);
    let capture_output = options.bool("capture_output", true);
    let approval = options.bool("approval", true);
    let settings = quote! {
        ::openbox::__private::ActivitySettings {
            capture_input: #capture_input,
            capture_output: #capture_output,
            approval: #approval,
        }
    };

    // Rename parameters so they can be serialized (and replaced by redacted values) before
    // the user's patterns bind them.
    let ctx_ident = format_ident!("__openbox_ctx");
    let mut arg_index = 0;
    let mut seen_ctx = false;
    for input in method.sig.inputs.iter_mut() {
        let FnArg::Typed(pt) = input else { continue };
        if !seen_ctx && last_segment_is(&pt.ty, "ActivityContext") {
            seen_ctx = true;
            *pt.pat = syn::parse_quote!(#ctx_ident);
        } else if seen_ctx {
            let ident = &args[arg_index].ident;
            *pt.pat = syn::parse_quote!(#ident);
            arg_index += 1;
        }
    }

    let idents: Vec<_> = args.iter().map(|a| &a.ident).collect();
    let pats: Vec<_> = args.iter().map(|a| &a.pat).collect();
    let tys: Vec<_> = args.iter().map(|a| &a.ty).collect();
    let indexes: Vec<_> = (0..args.len()).collect();
    // Point serde errors at the argument types (the codec below checks them once more).
    let to_json: Vec<_> = args
        .iter()
        .map(|a| {
            let (ty, ident) = (&a.ty, &a.ident);
            quote_spanned!(ty.span()=> ::openbox::__private::to_json::<#ty>(&#ident))
        })
        .collect();
    let output_check = quote_spanned!(output_ty.span()=> ::openbox::__private::assert_governed_value::<#output_ty>(););
    let ret = match &method.sig.output {
        ReturnType::Type(_, ty) => quote!(#ty),
        ReturnType::Default => quote!(()),
    };
    let body = &method.block;
    let spec = quote! {
        static __OPENBOX_SPEC: ::openbox::__private::ActivitySpec = ::openbox::__private::ActivitySpec {
            method: #bare_name,
            settings: #settings,
        };
    };
    let convert = quote! {
        |__openbox_values: &[::openbox::__private::Value]| -> ::core::result::Result<_, ::std::string::String> {
            ::core::result::Result::Ok((
                #(::openbox::__private::from_json::<#tys>(__openbox_values, #indexes)?,)*
            ))
        }
    };
    let rebind_async = quote! {
        let (#(#idents,)*) = match __openbox_gate.redacted_args(#convert).await? {
            ::core::option::Option::Some(__openbox_args) => __openbox_args,
            ::core::option::Option::None => (#(#idents,)*),
        };
    };
    let rebind_sync = quote! {
        let (#(#idents,)*) = match __openbox_gate.redacted_args_blocking(#convert)? {
            ::core::option::Option::Some(__openbox_args) => __openbox_args,
            ::core::option::Option::None => (#(#idents,)*),
        };
    };
    let bind_user = quote! {
        let #ctx_pat = #ctx_ident;
        #(let #pats = #idents;)*
    };
    let new_body = if method.sig.asyncness.is_some() {
        quote! {{
            #output_check
            #spec
            let mut __openbox_gate = ::openbox::__private::ActivityGate::enter(
                &#ctx_ident,
                &__OPENBOX_SPEC,
                || ::std::vec![#(#to_json),*],
            ).await?;
            #rebind_async
            let __openbox_result: #ret = __openbox_gate
                .run(::openbox::__private::annotate::<#ret, _>(async move {
                    #bind_user
                    #body
                }))
                .await;
            __openbox_gate.exit(__openbox_result).await
        }}
    } else {
        quote! {{
            #output_check
            #spec
            let mut __openbox_gate = ::openbox::__private::ActivityGate::enter_blocking(
                &#ctx_ident,
                &__OPENBOX_SPEC,
                || ::std::vec![#(#to_json),*],
            )?;
            #rebind_sync
            let __openbox_result: #ret = __openbox_gate.run_sync(move || -> #ret {
                #bind_user
                #body
            });
            __openbox_gate.exit_blocking(__openbox_result)
        }}
    };
    method.block = match syn::parse2(new_body) {
        Ok(block) => block,
        Err(e) => return e.to_compile_error(),
    };

    let codec = match tys.len() {
        0 => quote!(::openbox::__private::codec0()),
        n => {
            let f = format_ident!("codec{n}");
            quote!(::openbox::__private::#f::<#(#tys),*>())
        }
    };
    let name_opt = match &name {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let decl_ident = format_ident!("__openbox_decl_{}", bare_name);
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #decl_ident: () = {
            ::openbox::__private::inventory::submit! {
                ::openbox::__private::ActivityDecl {
                    method: #bare_name,
                    name: #name_opt,
                    settings: #settings,
                    codec: #codec,
                }
            }
        };

        #method
    }
}

fn first_token_span(item: &TokenStream) -> Span {
    item.clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}
