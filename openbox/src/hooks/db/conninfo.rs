//! libpq's keyword/value connection strings (`host=db port=5432 dbname=app password=…`), which
//! diesel's `PgConnection::establish` takes besides URLs: read only to find where the statements
//! go, so that nothing else in them (a password above all) is ever reported.

/// The `keyword=value` pairs of `text`, in order; values may be single-quoted, with `\'` and
/// `\\` escapes. Reading stops at the first malformed pair.
pub(crate) fn keywords(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    let skip_spaces = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_spaces(&mut chars);
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_spaces(&mut chars);
        if key.is_empty() || chars.next() != Some('=') {
            return pairs;
        }
        skip_spaces(&mut chars);
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    // An unclosed quote: libpq refuses the string.
                    None => return pairs,
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_quoted_and_spaced_values_are_read() {
        assert_eq!(
            keywords("host=db.internal port = 6543 dbname='my app' password='it''s'"),
            owned(&[
                ("host", "db.internal"),
                ("port", "6543"),
                ("dbname", "my app"),
                ("password", "it"),
            ]),
            "a quote ends the value; what follows it is not a pair"
        );
        assert_eq!(
            keywords(r"user=a\ b password='x\'y' host=h"),
            owned(&[("user", "a b"), ("password", "x'y"), ("host", "h")])
        );
        assert!(keywords("").is_empty());
        assert!(keywords("=x").is_empty());
        assert_eq!(keywords("host=h password='open").len(), 1);
    }

    proptest! {
        /// Never panics, and a pair it returns always comes from `key=`.
        #[test]
        fn any_text_is_read_without_panicking(text in "\\PC{0,80}") {
            for (key, _) in keywords(&text) {
                prop_assert!(!key.is_empty() && !key.contains('='));
            }
        }
    }
}
