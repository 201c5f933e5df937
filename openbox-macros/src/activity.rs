//! `#[governed_activity]`: wraps the body of an activity method (after `#[activities]` has
//! expanded and renamed it `__<name>`) into the governed lifecycle. It declares nothing to the
//! plugin: only `#[governed_activities]` on the impl can name the activity exactly.
//!
//! parse ([`ActivityArgs::parse`], [`parse_item`]) → validate ([`Checked::new`]) → emit
//! ([`emit`]).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::errors::Errors;
use crate::item::MaybeFn;
use crate::options::{self, CRATE, Kind, Retired, Spec};
use crate::types::{last_segment_is, mentions_self, parse_item, result_ok_type};

const OPTIONS: [Spec; 4] = [
    ("capture_input", Kind::Bool),
    ("capture_output", Kind::Bool),
    ("approval", Kind::Bool),
    CRATE,
];

const RETIRED: [Retired; 1] = [(
    "name",
    "no longer takes `name`: put #[openbox::governed_activities] above the #[activities] impl, \
     which knows each activity's name exactly",
)];

/// `#[governed_activity(…)]`'s options (also read by `#[governed_activities]`).
pub(crate) struct ActivityArgs {
    pub capture_input: bool,
    pub capture_output: bool,
    pub approval: bool,
    pub krate: syn::Path,
}

impl ActivityArgs {
    pub(crate) fn parse(attr: TokenStream, errors: &mut Errors) -> Self {
        let parsed = options::parse("governed_activity", attr, &OPTIONS, &RETIRED, errors);
        ActivityArgs {
            capture_input: parsed.bool("capture_input", true),
            capture_output: parsed.bool("capture_output", true),
            approval: parsed.bool("approval", true),
            krate: parsed.krate(),
        }
    }

    /// The `ActivitySettings` these options make.
    pub(crate) fn settings(&self) -> TokenStream {
        let ActivityArgs {
            capture_input,
            capture_output,
            approval,
            krate,
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

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = ActivityArgs::parse(attr, &mut errors);
    let place = "an activity method inside an `#[activities]` impl";
    let Some(method) = parse_item::<MaybeFn>(&item, "governed_activity", place, &mut errors) else {
        return errors.emit_with(item);
    };
    // Whatever went wrong, the method is emitted as written: the errors stay the only ones.
    match Checked::new(method, &mut errors) {
        Some(checked) if errors.is_empty() => emit(&args, checked),
        _ => errors.emit_with(item),
    }
}

/// An argument after the context: its original pattern and type, and the name it gets.
struct Arg {
    pat: Pat,
    ty: Type,
    ident: syn::Ident,
}

/// A method that can be governed, its arguments renamed so that they can be serialized (and
/// replaced by redacted values) before the user's patterns bind them.
struct Checked {
    method: MaybeFn,
    bare_name: String,
    ctx_pat: Pat,
    arguments: Vec<Arg>,
    output_ty: Type,
}

fn ctx_ident() -> syn::Ident {
    format_ident!("__openbox_ctx")
}

impl Checked {
    /// Checks the method; every problem goes to `errors`.
    fn new(mut method: MaybeFn, errors: &mut Errors) -> Option<Checked> {
        let method_name = method.sig.ident.to_string();
        let Some(bare_name) = method_name.strip_prefix("__").map(str::to_owned) else {
            errors.push(syn::Error::new(
                method.sig.ident.span(),
                "#[governed_activity] must be on an `#[activity]` method inside an `#[activities]` impl \
                 (it expands after `#[activities]`, which renames activity methods to `__<name>`)",
            ));
            return None;
        };
        let (ctx_pat, arguments) = rename_inputs(&mut method, errors);
        let output_ty = output_type(&method.sig, errors);
        if arguments.len() > 6 {
            errors.push(syn::Error::new(
                method.sig.inputs.span(),
                "activities take at most 6 arguments after `ActivityContext`",
            ));
        }
        Some(Checked {
            bare_name,
            ctx_pat: ctx_pat?,
            arguments,
            output_ty: output_ty?,
            method,
        })
    }
}

/// One walk over the inputs: the context's pattern, and every argument after it, renamed.
fn rename_inputs(method: &mut MaybeFn, errors: &mut Errors) -> (Option<Pat>, Vec<Arg>) {
    let ctx_ident = ctx_ident();
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
    if ctx.is_none() {
        let sig = &method.sig;
        errors.push(syn::Error::new(
            sig.inputs
                .span()
                .join(sig.ident.span())
                .unwrap_or(sig.ident.span()),
            "a #[governed_activity] method needs an `ActivityContext` parameter",
        ));
    }
    (ctx, arguments)
}

/// `T` of the method's `Result<T, ActivityError>`.
fn output_type(sig: &syn::Signature, errors: &mut Errors) -> Option<Type> {
    let return_error = |span: Span| {
        syn::Error::new(
            span,
            "a #[governed_activity] method must return `Result<T, ActivityError>` so that governance can fail it",
        )
    };
    match &sig.output {
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
    }
}

/// The method with its body run inside the governed lifecycle.
fn emit(args: &ActivityArgs, checked: Checked) -> TokenStream {
    let krate = &args.krate;
    let Checked {
        method,
        bare_name,
        ctx_pat,
        arguments,
        output_ty,
    } = checked;
    let settings = args.settings();
    // Spanned at the output type, so a result that cannot be reported is reported there.
    let output_check = quote_spanned!(output_ty.span()=> #krate::__private::assert_governed_value::<#output_ty>(););
    let parts = Parts {
        ctx: ctx_ident(),
        idents: arguments.iter().map(|a| a.ident.clone()).collect(),
        // Serde errors point at the argument types (the codec checks them once more).
        to_json: arguments
            .iter()
            .map(|a| {
                let (ty, ident) = (&a.ty, &a.ident);
                quote_spanned!(ty.span()=> #krate::__private::to_json::<#ty>(&#ident))
            })
            .collect(),
        prelude: quote! {
            #output_check
            static __OPENBOX_SPEC: #krate::__private::ActivitySpec = #krate::__private::ActivitySpec {
                method: #bare_name,
                settings: #settings,
            };
        },
        convert: convert(krate, &arguments),
        bind_user: {
            let ctx = ctx_ident();
            let pats = arguments.iter().map(|a| &a.pat);
            let idents = arguments.iter().map(|a| &a.ident);
            quote!(let #ctx_pat = #ctx; #(let #pats = #idents;)*)
        },
        ret: match &method.sig.output {
            ReturnType::Type(_, ty) => quote!(#ty),
            ReturnType::Default => quote!(()),
        },
        body: method.body.clone(),
    };
    let new_body = if method.sig.asyncness.is_some() {
        parts.async_body(krate)
    } else {
        parts.blocking_body(krate)
    };
    method.with_body(new_body)
}

/// The closure that decodes redacted values into the argument types.
fn convert(krate: &syn::Path, arguments: &[Arg]) -> TokenStream {
    let tys = arguments.iter().map(|a| &a.ty);
    let indexes = 0..arguments.len();
    quote! {
        |__openbox_values: &[#krate::__private::Value]| -> ::core::result::Result<_, ::std::string::String> {
            ::core::result::Result::Ok((
                #(#krate::__private::from_json::<#tys>(__openbox_values, #indexes)?,)*
            ))
        }
    }
}

/// The pieces both bodies are made of.
struct Parts {
    ctx: syn::Ident,
    idents: Vec<syn::Ident>,
    to_json: Vec<TokenStream>,
    prelude: TokenStream,
    convert: TokenStream,
    bind_user: TokenStream,
    ret: TokenStream,
    body: TokenStream,
}

impl Parts {
    fn async_body(&self, krate: &syn::Path) -> TokenStream {
        let Parts {
            ctx,
            idents,
            to_json,
            prelude,
            convert,
            bind_user,
            ret,
            body,
        } = self;
        quote! {
            #prelude
            let mut __openbox_gate = #krate::__private::ActivityGate::enter(
                &#ctx,
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
    }

    fn blocking_body(&self, krate: &syn::Path) -> TokenStream {
        let Parts {
            ctx,
            idents,
            to_json,
            prelude,
            convert,
            bind_user,
            ret,
            body,
        } = self;
        quote! {
            #prelude
            let mut __openbox_gate = #krate::__private::ActivityGate::enter_blocking(
                &#ctx,
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
    }
}
