//! Cutting text to a length, in characters, in the forms Core receives.

/// How a cut text ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// `...[truncated, <N> total chars]`: bodies and statements.
    WithTotal,
    /// As [`Cut::WithTotal`] for a text that is the prefix of a longer one: `<N>` is the whole
    /// one's length in characters, or, when that is not known,
    /// `...[truncated, total length unknown]`.
    #[cfg(feature = "http")]
    PrefixOf(Option<u64>),
    /// `...[truncated]`: traced arguments and results.
    Marked,
    /// Nothing added: error messages.
    Plain,
}

/// `text` cut to `max` characters (never inside a character), ending as `how` says; unchanged
/// when it is not longer.
pub(crate) fn truncate(text: &str, max: usize, how: Cut) -> String {
    let Some((end, _)) = text.char_indices().nth(max) else {
        return text.to_owned();
    };
    let head = &text[..end];
    match how {
        Cut::WithTotal => format!("{head}...[truncated, {} total chars]", text.chars().count()),
        #[cfg(feature = "http")]
        Cut::PrefixOf(Some(total)) => format!("{head}...[truncated, {total} total chars]"),
        #[cfg(feature = "http")]
        Cut::PrefixOf(None) => format!("{head}...[truncated, total length unknown]"),
        Cut::Marked => format!("{head}...[truncated]"),
        Cut::Plain => head.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(truncate("abc", 5, Cut::WithTotal), "abc");
        assert_eq!(
            truncate("héllo wörld", 5, Cut::WithTotal),
            "héllo...[truncated, 11 total chars]"
        );
        assert_eq!(
            truncate("héllo wörld", 5, Cut::Marked),
            "héllo...[truncated]"
        );
        assert_eq!(truncate("héllo wörld", 5, Cut::Plain), "héllo");
    }

    #[cfg(feature = "http")]
    #[test]
    fn a_prefix_states_the_whole_length_or_that_it_is_unknown() {
        assert_eq!(
            truncate("héllo wörld", 5, Cut::PrefixOf(Some(1 << 30))),
            "héllo...[truncated, 1073741824 total chars]"
        );
        assert_eq!(
            truncate("héllo wörld", 5, Cut::PrefixOf(None)),
            "héllo...[truncated, total length unknown]"
        );
        assert_eq!(truncate("héllo", 5, Cut::PrefixOf(None)), "héllo");
    }
}
