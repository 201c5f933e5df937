//! `#[traced]`: a tracing span around any function, and, inside a governed activity, the
//! `function_call` hook: `started` before the body (a BLOCK means it never runs) and
//! `completed` after it.
//!
//! parse ([`TracedArgs::parse`], [`parse_item`]) → validate ([`validate`]) → emit ([`emit`]).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::errors::Errors;
use crate::item::MaybeFn;
use crate::options::{self, CRATE, Kind, Spec};
use crate::types::parse_item;

const OPTIONS: [Spec; 5] = [
    ("name", Kind::Str),
    ("capture_args", Kind::Bool),
    ("capture_result", Kind::Bool),
    ("max_arg_length", Kind::Int),
    CRATE,
];

/// `#[traced(…)]`'s options.
struct TracedArgs {
    name: Option<syn::LitStr>,
    capture_args: bool,
    capture_result: bool,
    max_arg_length: usize,
    krate: syn::Path,
}

impl TracedArgs {
    fn parse(attr: TokenStream, errors: &mut Errors) -> Self {
        let parsed = options::parse("traced", attr, &OPTIONS, &[], errors);
        TracedArgs {
            name: parsed.str("name"),
            capture_args: parsed.bool("capture_args", true),
            capture_result: parsed.bool("capture_result", true),
            max_arg_length: parsed.int("max_arg_length", 2000),
            krate: parsed.krate(),
        }
    }
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = TracedArgs::parse(attr, &mut errors);
    let Some(func) = parse_item::<MaybeFn>(&item, "traced", "a function", &mut errors) else {
        return errors.emit_with(item);
    };
    validate(&func, &mut errors);
    if !errors.is_empty() {
        return errors.emit_with(quote!(#func));
    }
    emit(args, func)
}

/// What cannot be traced.
fn validate(func: &MaybeFn, errors: &mut Errors) {
    if let Some(c) = &func.sig.constness {
        errors.push(syn::Error::new(
            c.span(),
            "#[traced] cannot trace a `const fn`",
        ));
    }
}

/// `true` when `ty` contains `impl Trait` (it cannot be written as a `let` type).
fn has_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    f.visit_type(ty);
    f.0
}

fn returns_result(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Result"))
}

/// The function with its body wrapped in the span and the hook.
fn emit(args: TracedArgs, mut func: MaybeFn) -> TokenStream {
    let name = args
        .name
        .as_ref()
        .map_or_else(|| func.sig.ident.to_string(), syn::LitStr::value);
    let (captured, rebinds) = rename_arguments(&mut func);
    let krate = &args.krate;
    let args_closure = if args.capture_args {
        let captures = captured.iter().map(|(ident, ty)| {
            quote_spanned!(ty.span()=> (&#krate::__private::traced::Capture(&#ident)).capture_serialize_or_debug())
        });
        quote!(|| ::std::vec![#(#captures),*])
    } else {
        quote!(::std::vec::Vec::new)
    };
    let (ret_ty, is_result) = match &func.sig.output {
        ReturnType::Type(_, ty) => ((**ty).clone(), returns_result(ty)),
        ReturnType::Default => (syn::parse_quote!(()), false),
    };
    let hook = Hook {
        prelude: prelude(&args, &name),
        args_closure,
        on_stop: if is_result {
            quote!(return ::core::result::Result::Err(#krate::__private::traced::stopped(__openbox_e));)
        } else {
            quote!(#krate::__private::traced::stopped_panic(__openbox_e);)
        },
        outcome: outcome(&args, &ret_ty, is_result),
        annotation: if has_impl_trait(&ret_ty) {
            None
        } else {
            Some(ret_ty)
        },
        body: {
            let body = &func.body;
            quote!(#(#rebinds)* { #body })
        },
    };
    let new_body = if func.sig.asyncness.is_some() {
        hook.async_body(krate)
    } else {
        hook.blocking_body()
    };
    func.with_body(new_body)
}

/// Arguments are captured by name; other patterns are renamed, and bound again in the body.
fn rename_arguments(func: &mut MaybeFn) -> (Vec<(syn::Ident, Type)>, Vec<TokenStream>) {
    let mut captured = Vec::new();
    let mut rebinds = Vec::new();
    for (i, input) in func.sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(pt) = input else { continue };
        let ty = (*pt.ty).clone();
        match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                captured.push((pi.ident.clone(), ty));
            }
            pat => {
                let ident = format_ident!("__openbox_arg{i}");
                rebinds.push(quote!(let #pat = #ident;));
                *pt.pat = syn::parse_quote!(#ident);
                captured.push((ident, ty));
            }
        }
    }
    (captured, rebinds)
}

/// The spec, the span and the call, before the body.
fn prelude(args: &TracedArgs, name: &str) -> TokenStream {
    let TracedArgs {
        capture_args,
        capture_result,
        max_arg_length,
        krate,
        ..
    } = args;
    quote! {
        #[allow(unused_imports)]
        use #krate::__private::traced::{
            CaptureDebug as _, CaptureSerialize as _, ErrorTextDebug as _, ErrorTextDisplay as _,
        };
        static __OPENBOX_TRACED: #krate::__private::traced::TracedSpec = #krate::__private::traced::TracedSpec {
            name: #name,
            module: ::core::module_path!(),
            capture_args: #capture_args,
            capture_result: #capture_result,
            max_arg_length: #max_arg_length,
        };
        let __openbox_span = #krate::__private::tracing::info_span!(
            #name,
            code.function = #name,
            code.namespace = ::core::module_path!(),
        );
        let __openbox_call = #krate::__private::traced::TracedCall::begin(&__OPENBOX_TRACED, &__openbox_span);
    }
}

/// `(result text, error text)` of `__openbox_result`, as the options capture them.
fn outcome(args: &TracedArgs, ret_ty: &Type, is_result: bool) -> TokenStream {
    let krate = &args.krate;
    // Spanned at the return type, so a result that is neither `Serialize` nor `Debug` is
    // reported there.
    let ret_span = ret_ty.span();
    let capture_value = |v: TokenStream| quote_spanned!(ret_span=> ::core::option::Option::Some((&#krate::__private::traced::Capture(#v)).capture_serialize_or_debug()));
    let error_text = quote! {
        ::core::option::Option::Some((&#krate::__private::traced::ErrorText(__e)).openbox_error_text())
    };
    let none = quote!(::core::option::Option::None);
    match (args.capture_result, is_result) {
        (capture, true) => {
            let ok = if capture {
                capture_value(quote!(__v))
            } else {
                none.clone()
            };
            quote! {
                match &__openbox_result {
                    ::core::result::Result::Ok(__v) => (#ok, #none),
                    ::core::result::Result::Err(__e) => (#none, #error_text),
                }
            }
        }
        (true, false) => {
            let value = capture_value(quote!(&__openbox_result));
            quote!((#value, #none))
        }
        (false, false) => quote!((#none, #none)),
    }
}

/// The pieces both bodies are made of.
struct Hook {
    prelude: TokenStream,
    args_closure: TokenStream,
    on_stop: TokenStream,
    outcome: TokenStream,
    /// The result's type, when it can be written (not `impl Trait`).
    annotation: Option<Type>,
    body: TokenStream,
}

impl Hook {
    fn async_body(&self, krate: &syn::Path) -> TokenStream {
        let Hook {
            prelude,
            args_closure,
            on_stop,
            outcome,
            annotation,
            body,
        } = self;
        let annotation = annotation.as_ref().map(|t| quote!(: #t));
        quote! {
            #prelude
            if let ::core::option::Option::Some(__openbox_c) = &__openbox_call {
                if let ::core::result::Result::Err(__openbox_e) = __openbox_c.started(#args_closure).await {
                    #on_stop
                }
            }
            let __openbox_result #annotation = #krate::__private::tracing::Instrument::instrument(
                async move { #body },
                __openbox_span.clone(),
            )
            .await;
            if let ::core::option::Option::Some(__openbox_c) = __openbox_call {
                let (__openbox_r, __openbox_err) = #outcome;
                if let ::core::result::Result::Err(__openbox_e) = __openbox_c.completed(__openbox_r, __openbox_err).await {
                    #on_stop
                }
            }
            __openbox_result
        }
    }

    fn blocking_body(&self) -> TokenStream {
        let Hook {
            prelude,
            args_closure,
            on_stop,
            outcome,
            annotation,
            body,
        } = self;
        let (annotation, annotation_ret) = match annotation {
            Some(t) => (quote!(: #t), quote!(-> #t)),
            None => (quote!(), quote!()),
        };
        quote! {
            #prelude
            if let ::core::option::Option::Some(__openbox_c) = &__openbox_call {
                if let ::core::result::Result::Err(__openbox_e) = __openbox_c.started_blocking(#args_closure) {
                    #on_stop
                }
            }
            #[allow(clippy::redundant_closure_call)]
            let __openbox_result #annotation = __openbox_span.in_scope(move || #annotation_ret { #body });
            if let ::core::option::Option::Some(__openbox_c) = __openbox_call {
                let (__openbox_r, __openbox_err) = #outcome;
                if let ::core::result::Result::Err(__openbox_e) = __openbox_c.completed_blocking(__openbox_r, __openbox_err) {
                    #on_stop
                }
            }
            __openbox_result
        }
    }
}
