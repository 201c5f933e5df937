//! A function whose body is kept as tokens: the macros wrap a body they never need to parse,
//! so a syntax error inside it is reported once, by the compiler, at its place — instead of the
//! whole attribute failing and the function disappearing (then every use of it errors too).

use proc_macro2::TokenStream;
use quote::{ToTokens, TokenStreamExt};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Visibility, braced, token};

/// `#[attrs] vis sig { body }`, for free functions and methods alike.
pub(crate) struct MaybeFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub brace: token::Brace,
    pub body: TokenStream,
}

impl Parse for MaybeFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let content;
        let brace = braced!(content in input);
        let body: TokenStream = content.parse()?;
        Ok(MaybeFn {
            attrs,
            vis,
            sig,
            brace,
            body,
        })
    }
}

impl ToTokens for MaybeFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.append_all(&self.attrs);
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.brace
            .surround(tokens, |inner| inner.extend(self.body.clone()));
    }
}

impl MaybeFn {
    /// The same function with `body` instead.
    pub(crate) fn with_body(&self, body: TokenStream) -> TokenStream {
        let MaybeFn {
            attrs, vis, sig, ..
        } = self;
        quote::quote! { #(#attrs)* #vis #sig { #body } }
    }
}
