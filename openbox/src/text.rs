//! Cutting text to a length, in characters, in the forms Core receives (design §7).

/// How a cut text ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// `...[truncated, <N> total chars]`: bodies and statements.
    WithTotal,
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
}
