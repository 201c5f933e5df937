//! Small syntax helpers shared by the macros.

use proc_macro2::{Span, TokenStream};
use syn::visit::Visit;
use syn::{GenericArgument, PathArguments, Type};

use crate::errors::Errors;

/// `true` when `attr` is `#[name]` or `#[path::to::name]`.
pub(crate) fn is_attr(attr: &syn::Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// The span of an item's first token (where a misplaced attribute's error points).
pub(crate) fn first_token_span(item: &TokenStream) -> Span {
    item.clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

/// The item an attribute is on, as `T`; otherwise the error `#[{macro_name}] goes on {place},
/// not on <what it is>` at its first token.
pub(crate) fn parse_item<T: syn::parse::Parse>(
    item: &TokenStream,
    macro_name: &str,
    place: &str,
    errors: &mut Errors,
) -> Option<T> {
    match syn::parse2(item.clone()) {
        Ok(parsed) => Some(parsed),
        Err(_) => {
            let what = item_kind(item);
            errors.push(syn::Error::new(
                first_token_span(item),
                format!("#[{macro_name}] goes on {place}, not on {what}"),
            ));
            None
        }
    }
}

/// `true` when `ty` is a path (or a reference to one) whose last segment is `name`.
pub(crate) fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == name),
        Type::Reference(r) => last_segment_is(&r.elem, name),
        _ => false,
    }
}

/// `T` of `Result<T, E>` when `E`'s last segment is `error`.
pub(crate) fn result_ok_type(ty: &Type, error: &str) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let ok = types.next()?;
    let err = types.next()?;
    last_segment_is(err, error).then(|| ok.clone())
}

/// `true` when `Self` appears anywhere in `ty`.
pub(crate) fn mentions_self(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_ident(&mut self, i: &'ast proc_macro2::Ident) {
            if i == "Self" {
                self.0 = true;
            }
        }
    }
    let mut f = Finder(false);
    f.visit_type(ty);
    f.0
}

/// "a struct", "a free function", … for messages about misplaced attributes.
pub(crate) fn item_kind(item: &TokenStream) -> &'static str {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(_)) => "a free function",
        Ok(syn::Item::Struct(_)) => "a struct",
        Ok(syn::Item::Enum(_)) => "an enum",
        Ok(syn::Item::Impl(_)) => "an impl block",
        Ok(syn::Item::Trait(_)) => "a trait",
        Ok(syn::Item::Mod(_)) => "a module",
        Ok(syn::Item::Const(_) | syn::Item::Static(_)) => "a constant",
        Ok(_) => "this item",
        Err(_) => match syn::parse2::<syn::ImplItem>(item.clone()) {
            Ok(syn::ImplItem::Const(_)) => "an associated constant",
            Ok(syn::ImplItem::Type(_)) => "an associated type",
            _ => "this item",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn helpers() {
        let t: Type = parse_quote!(Result<Receipt, temporalio_sdk::activities::ActivityError>);
        assert!(result_ok_type(&t, "ActivityError").is_some());
        let t: Type = parse_quote!(Result<Receipt, anyhow::Error>);
        assert!(result_ok_type(&t, "ActivityError").is_none());
        assert!(last_segment_is(
            &parse_quote!(&mut SyncWorkflowContext<Self>),
            "SyncWorkflowContext"
        ));
        assert!(mentions_self(&parse_quote!(Vec<Self>)));
        assert!(!mentions_self(&parse_quote!(Vec<String>)));
        assert_eq!(
            item_kind(&quote::quote!(
                struct S;
            )),
            "a struct"
        );
    }
}
