//! `#[governed_activity]`: wraps the body of an activity method (after `#[activities]` has
//! expanded and renamed it `__<name>`) into the governed lifecycle. It declares nothing to the
//! plugin: only `#[governed_activities]` on the impl can name the activity exactly.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::errors::Errors;
use crate::item::MaybeFn;
use crate::options::{self, CRATE, Kind, Value};
use crate::types::{item_kind, last_segment_is, mentions_self, result_ok_type};

/// `#[governed_activity(…)]`'s options (also read by `#[governed_activities]`).
pub(crate) struct ActivityArgs {
    pub capture_input: bool,
    pub capture_output: bool,
    pub approval: bool,
    pub krate: syn::Path,
}

impl ActivityArgs {
    pub(crate) fn parse(attr: TokenStream, errors: &mut Errors) -> Self {
        let mut args = ActivityArgs {
            capture_input: true,
            capture_output: true,
            approval: true,
            krate: options::default_crate(),
        };
        let specs = [
            ("name", Kind::Str),
            ("capture_input", Kind::Bool),
            ("capture_output", Kind::Bool),
            ("approval", Kind::Bool),
            CRATE,
        ];
        let mut named = None;
        options::parse(
            "governed_activity",
            attr,
            &specs,
            errors,
            |name, value| match (name, value) {
                ("name", Value::Str(s)) => named = Some(s),
                ("capture_input", Value::Bool(b)) => args.capture_input = b,
                ("capture_output", Value::Bool(b)) => args.capture_output = b,
                ("approval", Value::Bool(b)) => args.approval = b,
                ("crate", Value::Path(p)) => args.krate = p,
                _ => {}
            },
        );
        if let Some(name) = named {
            errors.push(syn::Error::new(
                name.span(),
                "#[governed_activity] no longer takes `name`: put #[openbox::governed_activities] \
                 above the #[activities] impl, which knows each activity's name exactly",
            ));
        }
        args
    }

    /// The `ActivitySettings` these options make.
    pub(crate) fn settings(&self) -> TokenStream {
        let ActivityArgs {
            capture_input,
            capture_output,
            approval,
            krate,
            ..
        } = self;
        quote! {
            #krate::__private::ActivitySettings {
                capture_input: #capture_input,
                capture_output: #capture_output,
                approval: #approval,
            }
        }
    }
}

/// An argument after the context: its original pattern and type, and the name it gets.
struct Arg {
    pat: Pat,
    ty: Type,
    ident: syn::Ident,
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = ActivityArgs::parse(attr, &mut errors);
    let mut method: MaybeFn = match syn::parse2(item.clone()) {
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

    let method_name = method.sig.ident.to_string();
    let Some(bare_name) = method_name.strip_prefix("__").map(str::to_owned) else {
        errors.push(syn::Error::new(
            method.sig.ident.span(),
            "#[governed_activity] must be on an `#[activity]` method inside an `#[activities]` impl \
             (it expands after `#[activities]`, which renames activity methods to `__<name>`)",
        ));
        return errors.emit_with(item);
    };

    // One walk over the inputs: find the context, check and rename every argument after it
    // (renamed so they can be serialized, and replaced by redacted values, before the user's
    // patterns bind them).
    let ctx_ident = format_ident!("__openbox_ctx");
    let mut ctx: Option<Pat> = None;
    let mut arguments = Vec::new();
    for input in method.sig.inputs.iter_mut() {
        let FnArg::Typed(pt) = input else { continue };
        if ctx.is_none() && last_segment_is(&pt.ty, "ActivityContext") {
            ctx = Some((*pt.pat).clone());
            *pt.pat = syn::parse_quote!(#ctx_ident);
        } else if ctx.is_some() {
            if mentions_self(&pt.ty) {
                errors.push(syn::Error::new(
                    pt.ty.span(),
                    "the argument types of a #[governed_activity] cannot mention `Self`: name the type",
                ));
            }
            let ident = format_ident!("__openbox_arg{}", arguments.len());
            arguments.push(Arg {
                pat: (*pt.pat).clone(),
                ty: (*pt.ty).clone(),
                ident: ident.clone(),
            });
            *pt.pat = syn::parse_quote!(#ident);
        }
    }
    let sig = &method.sig;
    if ctx.is_none() {
        errors.push(syn::Error::new(
            sig.inputs
                .span()
                .join(sig.ident.span())
                .unwrap_or(sig.ident.span()),
            "a #[governed_activity] method needs an `ActivityContext` parameter",
        ));
    }
    let return_error = |span: Span| {
        syn::Error::new(
            span,
            "a #[governed_activity] method must return `Result<T, ActivityError>` so that governance can fail it",
        )
    };
    let output_ty = match &sig.output {
        ReturnType::Type(_, ty) => {
            let ok = result_ok_type(ty, "ActivityError");
            if ok.is_none() {
                errors.push(return_error(ty.span()));
            }
            ok
        }
        ReturnType::Default => {
            errors.push(return_error(sig.ident.span()));
            None
        }
    };
    if arguments.len() > 6 {
        errors.push(syn::Error::new(
            sig.inputs.span(),
            "activities take at most 6 arguments after `ActivityContext`",
        ));
    }
    // Whatever went wrong, the method is emitted as written: the error stays the only one.
    let (Some(ctx_pat), Some(output_ty)) = (ctx, output_ty) else {
        return errors.emit_with(item);
    };
    if !errors.is_empty() {
        return errors.emit_with(item);
    }

    let krate = &args.krate;
    let settings = args.settings();
    let idents: Vec<_> = arguments.iter().map(|a| &a.ident).collect();
    let pats: Vec<_> = arguments.iter().map(|a| &a.pat).collect();
    let tys: Vec<_> = arguments.iter().map(|a| &a.ty).collect();
    let indexes: Vec<_> = (0..arguments.len()).collect();
    // Point serde errors at the argument types (the codec below checks them once more).
    let to_json: Vec<_> = arguments
        .iter()
        .map(|a| {
            let (ty, ident) = (&a.ty, &a.ident);
            quote_spanned!(ty.span()=> #krate::__private::to_json::<#ty>(&#ident))
        })
        .collect();
    let output_check = quote_spanned!(output_ty.span()=> #krate::__private::assert_governed_value::<#output_ty>(););
    let ret = match &method.sig.output {
        ReturnType::Type(_, ty) => quote!(#ty),
        ReturnType::Default => quote!(()),
    };
    let body = &method.body;
    let spec = quote! {
        static __OPENBOX_SPEC: #krate::__private::ActivitySpec = #krate::__private::ActivitySpec {
            method: #bare_name,
            settings: #settings,
        };
    };
    let convert = quote! {
        |__openbox_values: &[#krate::__private::Value]| -> ::core::result::Result<_, ::std::string::String> {
            ::core::result::Result::Ok((
                #(#krate::__private::from_json::<#tys>(__openbox_values, #indexes)?,)*
            ))
        }
    };
    let bind_user = quote! {
        let #ctx_pat = #ctx_ident;
        #(let #pats = #idents;)*
    };
    let new_body = if method.sig.asyncness.is_some() {
        quote! {
            #output_check
            #spec
            let mut __openbox_gate = #krate::__private::ActivityGate::enter(
                &#ctx_ident,
                &__OPENBOX_SPEC,
                || ::std::vec![#(#to_json),*],
            ).await?;
            let (#(#idents,)*) = match __openbox_gate.redacted_args(#convert).await? {
                ::core::option::Option::Some(__openbox_args) => __openbox_args,
                ::core::option::Option::None => (#(#idents,)*),
            };
            let __openbox_result: #ret = __openbox_gate
                .run(#krate::__private::annotate::<#ret, _>(async move {
                    #bind_user
                    #body
                }))
                .await;
            __openbox_gate.exit(__openbox_result).await
        }
    } else {
        quote! {
            #output_check
            #spec
            let mut __openbox_gate = #krate::__private::ActivityGate::enter_blocking(
                &#ctx_ident,
                &__OPENBOX_SPEC,
                || ::std::vec![#(#to_json),*],
            )?;
            let (#(#idents,)*) = match __openbox_gate.redacted_args_blocking(#convert)? {
                ::core::option::Option::Some(__openbox_args) => __openbox_args,
                ::core::option::Option::None => (#(#idents,)*),
            };
            let __openbox_result: #ret = __openbox_gate.run_sync(move || -> #ret {
                #bind_user
                #body
            });
            __openbox_gate.exit_blocking(__openbox_result)
        }
    };
    method.with_body(new_body)
}

fn first_token_span(item: &TokenStream) -> Span {
    item.clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}
