//! Collects every error of one expansion, so the user sees them all at once.

use proc_macro2::TokenStream;

/// The errors found so far.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// `compile_error!`s for every error, followed by `fallback` — the item as written, so that
    /// one mistake does not cascade into errors about code that no longer exists.
    pub(crate) fn emit_with(self, fallback: TokenStream) -> TokenStream {
        let errors = self.0.map(|e| e.to_compile_error()).unwrap_or_default();
        quote::quote!(#errors #fallback)
    }
}
