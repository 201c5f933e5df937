//! Attribute macros of [`openbox`](https://docs.rs/openbox). Use them through `openbox`
//! (`openbox::governed_activity`, …), whose documentation is the manual; they expand to calls
//! into `openbox`'s hidden `__private` module.

mod activities;
mod activity;
mod errors;
mod item;
mod options;
mod traced;
mod types;
mod workflow;

use proc_macro::TokenStream;

/// Governs one activity method. See `openbox::governed_activity`.
#[proc_macro_attribute]
pub fn governed_activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    activity::expand(attr.into(), item.into()).into()
}

/// Declares every activity of an `#[activities]` impl to OpenBox. See
/// `openbox::governed_activities`.
#[proc_macro_attribute]
pub fn governed_activities(attr: TokenStream, item: TokenStream) -> TokenStream {
    activities::expand(attr.into(), item.into()).into()
}

/// Declares a workflow and its signals to OpenBox. See `openbox::governed_workflow`.
#[proc_macro_attribute]
pub fn governed_workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    workflow::expand(attr.into(), item.into()).into()
}

/// Traces a function and, inside a governed activity, governs each call. See `openbox::traced`.
#[proc_macro_attribute]
pub fn traced(attr: TokenStream, item: TokenStream) -> TokenStream {
    traced::expand(attr.into(), item.into()).into()
}
