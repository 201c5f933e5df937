//! `#[traced]`: a tracing span around any function, and, inside a governed activity, the
//! `function_call` hook: `started` before the body (a BLOCK means it never runs) and
//! `completed` after it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::errors::Errors;
use crate::item::MaybeFn;
use crate::options::{self, CRATE, Kind, Value};
use crate::types::item_kind;

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
        let mut args = TracedArgs {
            name: None,
            capture_args: true,
            capture_result: true,
            max_arg_length: 2000,
            krate: options::default_crate(),
        };
        let specs = [
            ("name", Kind::Str),
            ("capture_args", Kind::Bool),
            ("capture_result", Kind::Bool),
            ("max_arg_length", Kind::Int),
            CRATE,
        ];
        options::parse("traced", attr, &specs, errors, |name, value| {
            match (name, value) {
                ("name", Value::Str(s)) => args.name = Some(s),
                ("capture_args", Value::Bool(b)) => args.capture_args = b,
                ("capture_result", Value::Bool(b)) => args.capture_result = b,
                ("max_arg_length", Value::Int(n)) => args.max_arg_length = n,
                ("crate", Value::Path(p)) => args.krate = p,
                _ => {}
            }
        });
        args
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

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = TracedArgs::parse(attr, &mut errors);
    let mut func: MaybeFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let what = item_kind(&item);
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |t| t.span());
            errors.push(syn::Error::new(
                span,
                format!("#[traced] goes on a function, not on {what}"),
            ));
            return errors.emit_with(item);
        }
    };
    if let Some(c) = &func.sig.constness {
        errors.push(syn::Error::new(
            c.span(),
            "#[traced] cannot trace a `const fn`",
        ));
    }
    if !errors.is_empty() {
        return errors.emit_with(quote!(#func));
    }

    let TracedArgs {
        name,
        capture_args,
        capture_result,
        max_arg_length,
        krate,
    } = args;
    let name = name.map_or_else(|| func.sig.ident.to_string(), |s| s.value());

    // Arguments: captured by name; patterns are renamed and bound again inside the body.
    let mut captured = Vec::new();
    let mut rebinds = Vec::new();
    for (i, input) in func.sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(pt) = input else { continue };
        let ty = (*pt.ty).clone();
        match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                let ident = pi.ident.clone();
                captured.push((ident, ty));
            }
            pat => {
                let ident = format_ident!("__openbox_arg{i}");
                rebinds.push(quote!(let #pat = #ident;));
                *pt.pat = syn::parse_quote!(#ident);
                captured.push((ident, ty));
            }
        }
    }
    let captures = captured.iter().map(|(ident, ty)| {
        quote_spanned!(ty.span()=> (&#krate::__private::traced::Capture(&#ident)).capture_serialize_or_debug())
    });
    let args_closure = if capture_args {
        quote!(|| ::std::vec![#(#captures),*])
    } else {
        quote!(::std::vec::Vec::new)
    };

    let (ret_ty, is_result) = match &func.sig.output {
        ReturnType::Type(_, ty) => ((**ty).clone(), returns_result(ty)),
        ReturnType::Default => (syn::parse_quote!(()), false),
    };
    let (annotation, annotation_ret) = if has_impl_trait(&ret_ty) {
        (quote!(), quote!())
    } else {
        (quote!(: #ret_ty), quote!(-> #ret_ty))
    };
    let on_stop = if is_result {
        quote!(return ::core::result::Result::Err(#krate::__private::traced::stopped(__openbox_e));)
    } else {
        quote!(#krate::__private::traced::stopped_panic(__openbox_e);)
    };
    // Spanned at the return type, so a result that is neither `Serialize` nor `Debug` is
    // reported there.
    let ret_span = ret_ty.span();
    let capture_value = |v: TokenStream| quote_spanned!(ret_span=> ::core::option::Option::Some((&#krate::__private::traced::Capture(#v)).capture_serialize_or_debug()));
    let error_text = quote! {
        ::core::option::Option::Some((&#krate::__private::traced::ErrorText(__e)).openbox_error_text())
    };
    let none = quote!(::core::option::Option::None);
    let outcome = match (capture_result, is_result) {
        (true, true) => {
            let ok = capture_value(quote!(__v));
            quote! {
                match &__openbox_result {
                    ::core::result::Result::Ok(__v) => (#ok, #none),
                    ::core::result::Result::Err(__e) => (#none, #error_text),
                }
            }
        }
        (false, true) => quote! {
            match &__openbox_result {
                ::core::result::Result::Ok(_) => (#none, #none),
                ::core::result::Result::Err(__e) => (#none, #error_text),
            }
        },
        (true, false) => {
            let value = capture_value(quote!(&__openbox_result));
            quote!((#value, #none))
        }
        (false, false) => quote!((#none, #none)),
    };
    let body = &func.body;
    let block = quote!({ #body });
    let prelude = quote! {
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
    };
    let new_body = if func.sig.asyncness.is_some() {
        quote! {
            #prelude
            if let ::core::option::Option::Some(__openbox_c) = &__openbox_call {
                if let ::core::result::Result::Err(__openbox_e) = __openbox_c.started(#args_closure).await {
                    #on_stop
                }
            }
            let __openbox_result #annotation = #krate::__private::tracing::Instrument::instrument(
                async move { #(#rebinds)* #block },
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
    } else {
        quote! {
            #prelude
            if let ::core::option::Option::Some(__openbox_c) = &__openbox_call {
                if let ::core::result::Result::Err(__openbox_e) = __openbox_c.started_blocking(#args_closure) {
                    #on_stop
                }
            }
            #[allow(clippy::redundant_closure_call)]
            let __openbox_result #annotation = __openbox_span.in_scope(move || #annotation_ret { #(#rebinds)* #block });
            if let ::core::option::Option::Some(__openbox_c) = __openbox_call {
                let (__openbox_r, __openbox_err) = #outcome;
                if let ::core::result::Result::Err(__openbox_e) = __openbox_c.completed_blocking(__openbox_r, __openbox_err) {
                    #on_stop
                }
            }
            __openbox_result
        }
    };
    func.with_body(new_body)
}
