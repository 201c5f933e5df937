//! What of a command line, or of free text such as a message's payload, may reach Core. Secrets
//! travel in words in a handful of shapes, and each is masked by the same name rule as URLs and
//! headers:
//!
//! * `--password=s3cret`, `-token=…`, `API_KEY=…` (a name, `=`, a value): the value;
//! * `--password s3cret` (a flag whose name is sensitive): the next argument;
//! * `Authorization: Bearer …` (a header, as `curl -H` takes it): everything after the name;
//! * URLs: userinfo, fragment and sensitive query values, as for HTTP requests;
//! * words shaped like well-known credentials (`sk-…`, `ghp_…`, `AKIA…`, JWTs, …) wherever they
//!   stand, even with no name before them.
//!
//! An argument holding spaces (a `sh -c` script, a header) is masked word by word with the same
//! rules. `user:password` after `-u`, `--user`, `--proxy-user` or `--http-user` is masked. A
//! flag the rule cannot recognise (`-p PASSWORD`, `-pPASSWORD`) can be made sensitive with
//! `redact_keys` (`"p"`): a listed name is matched with its dashes removed, and a listed letter
//! also masks a value attached to it.

// Commands use all of it; message payloads only the free-text masker.
#![cfg_attr(not(feature = "process"), allow(dead_code))]

use crate::secrets::{REDACTED, SensitiveNames, mask_url};

/// Authentication schemes: a word after a sensitive name that is one of these is not the secret
/// itself, the word after it is.
const AUTH_SCHEMES: [&str; 6] = ["bearer", "basic", "token", "digest", "negotiate", "apikey"];

/// Prefixes of credentials with a recognisable shape (API keys of common providers).
const SECRET_PREFIXES: [&str; 12] = [
    "sk-",
    "sk_live_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "AIza",
    "hf_",
];

/// What a word says of the word after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Nothing: judge it by itself.
    Judge,
    /// It is a secret (the value of `--password`, of `Authorization:`, after `Bearer`).
    Secret,
    /// It is a secret when it is `user:password` (the value of `-u`, `--user`).
    SecretIfPair,
}

impl Next {
    /// The word after `word` when `word` itself was masked as a secret: a scheme (`Bearer`)
    /// means the secret is still to come.
    fn after_secret(word: &str) -> Next {
        if is_auth_scheme(unquoted(word)) {
            Next::Secret
        } else {
            Next::Judge
        }
    }

    /// `word` masked as this says, or `None`: judge it by itself.
    fn mask(self, word: &str) -> Option<(String, Next)> {
        match self {
            Next::Secret => Some((REDACTED.to_owned(), Next::after_secret(word))),
            Next::SecretIfPair if unquoted(word).contains(':') => {
                Some((REDACTED.to_owned(), Next::Judge))
            }
            Next::SecretIfPair | Next::Judge => None,
        }
    }
}

/// Flags whose value is `user:password` (curl, wget, and their kin).
const USER_PASSWORD_FLAGS: [&str; 4] = ["-u", "--user", "--proxy-user", "--http-user"];

/// The arguments as they may reach Core.
pub(crate) fn args(args: &[String], names: &SensitiveNames) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut next = Next::Judge;
    for arg in args {
        let (masked, after) = match next.mask(arg) {
            Some(masked) => masked,
            None => argument(arg, names),
        };
        next = after;
        out.push(masked);
    }
    out
}

/// Text that may hold command lines or `name=value` pairs (a script, captured output): masked
/// word by word; whitespace is kept as it was.
pub(crate) fn text(text: &str, names: &SensitiveNames) -> String {
    let mut out = String::with_capacity(text.len());
    let mut next = Next::Judge;
    let mut rest = text;
    while !rest.is_empty() {
        let space = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..space]);
        rest = &rest[space..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        if word.is_empty() {
            break;
        }
        let (masked, after) = match next.mask(word) {
            Some(masked) => masked,
            None => word_masked(word, names),
        };
        next = after;
        out.push_str(&masked);
    }
    out
}

/// One argument: masked, and what it says of the next one.
fn argument(arg: &str, names: &SensitiveNames) -> (String, Next) {
    if arg.contains(char::is_whitespace) {
        return (text(arg, names), Next::Judge);
    }
    word_masked(arg, names)
}

/// A word with no whitespace: masked, and what it says of the word after it.
fn word_masked(word: &str, names: &SensitiveNames) -> (String, Next) {
    // Quotes around a word of a script (`'Authorization:`) do not change what it is.
    let bare = unquoted(word);
    let replaced = |with: &str| word.replacen(bare, with, 1);
    if looks_like_secret(bare) {
        return (REDACTED.to_owned(), Next::Judge);
    }
    if bare.contains("://")
        && let Ok(url) = url::Url::parse(bare)
    {
        let masked = mask_url(&url, names);
        // `Url` normalises (`https://x.test` gains a `/`): keep the word as written when
        // nothing was masked.
        return if masked.contains("REDACTED") || url.fragment().is_some() {
            (replaced(&masked), Next::Judge)
        } else {
            (word.to_owned(), Next::Judge)
        };
    }
    if let Some((name, value)) = bare.split_once('=') {
        if sensitive_flag(name, names)
            || (USER_PASSWORD_FLAGS.contains(&name) && value.contains(':'))
        {
            return (replaced(&format!("{name}={REDACTED}")), Next::Judge);
        }
        // `--url=https://…`, `DSN=postgres://u:pw@…`, `--header=Authorization:…`.
        let (inner, _) = word_masked(value, names);
        if inner != value {
            return (replaced(&format!("{name}={inner}")), Next::Judge);
        }
        return (word.to_owned(), Next::Judge);
    }
    if let Some(name) = bare.strip_suffix(':') {
        // A header name alone (`Authorization:` of `-H 'Authorization: Bearer x'`).
        let next = if names.is_sensitive(name) {
            Next::Secret
        } else {
            Next::Judge
        };
        return (word.to_owned(), next);
    }
    if let Some((name, value)) = bare.split_once(':')
        && !name.is_empty()
        && !value.is_empty()
        && !name.starts_with('-')
        && names.is_sensitive(name)
    {
        // `Authorization:Bearer` (no space).
        return (
            replaced(&format!("{name}:{REDACTED}")),
            Next::after_secret(value),
        );
    }
    if USER_PASSWORD_FLAGS.contains(&bare) {
        return (word.to_owned(), Next::SecretIfPair);
    }
    if let Some(flag) = attached_listed_flag(bare, names) {
        // `-pSECRET` with `p` in `redact_keys`.
        return (replaced(&format!("-{flag}{REDACTED}")), Next::Judge);
    }
    if bare.starts_with('-') && sensitive_flag(bare, names) {
        return (word.to_owned(), Next::Secret);
    }
    (word.to_owned(), Next::Judge)
}

/// The letter of `-xVALUE` when `x` is one of the user's `redact_keys`.
fn attached_listed_flag(word: &str, names: &SensitiveNames) -> Option<char> {
    let rest = word.strip_prefix('-').filter(|r| !r.starts_with('-'))?;
    let mut chars = rest.chars();
    let flag = chars.next()?;
    (!chars.as_str().is_empty() && names.is_listed(flag.encode_utf8(&mut [0; 4]))).then_some(flag)
}

/// Whether a flag (`--api-key`, `-token`, `PASSWORD`) names a secret; its dashes are not part
/// of the name.
fn sensitive_flag(flag: &str, names: &SensitiveNames) -> bool {
    let name = flag.trim_start_matches('-');
    !name.is_empty() && (names.is_sensitive(name) || names.is_listed(name))
}

fn unquoted(word: &str) -> &str {
    word.trim_matches(|c| c == '\'' || c == '"')
}

fn is_auth_scheme(word: &str) -> bool {
    AUTH_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(word))
}

/// Whether `word` has the shape of a credential: a known provider prefix followed by a long
/// token, an AWS access key id, or a JWT.
fn looks_like_secret(word: &str) -> bool {
    let tokenish = |s: &str| {
        s.len() >= 16
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if SECRET_PREFIXES
        .iter()
        .any(|p| word.starts_with(p) && tokenish(&word[p.len()..]))
    {
        return true;
    }
    let aws_key_id = (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word.len() == 20
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let jwt = word.starts_with("eyJ")
        && word.split('.').count() == 3
        && word
            .split('.')
            .all(|p| !p.is_empty() && tokenish(&format!("{p:0<16}")));
    aws_key_id || jwt
}

/// The command line as one string, each word quoted for a POSIX shell when it needs to be, so
/// that a rule can match it as the user would type it.
pub(crate) fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(shell_quoted)
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quoted(word: &str) -> std::borrow::Cow<'_, str> {
    let plain = !word.is_empty()
        && word.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b'@' | b'%' | b'+' | b','
                )
        });
    if plain {
        word.into()
    } else {
        format!("'{}'", word.replace('\'', r"'\''")).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masked(list: &[&str]) -> Vec<String> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        args(&list, &SensitiveNames::default())
    }

    #[test]
    fn each_shape_is_masked() {
        assert_eq!(
            masked(&[
                "--password=hunter2",
                "--token",
                "T0K",
                "-v",
                "API_KEY=abc",
                "name=x"
            ]),
            [
                "--password=[REDACTED]",
                "--token",
                "[REDACTED]",
                "-v",
                "API_KEY=[REDACTED]",
                "name=x"
            ]
        );
        assert_eq!(
            masked(&[
                "-H",
                "Authorization: Bearer abc.def",
                "-H",
                "Accept: text/plain"
            ]),
            [
                "-H",
                "Authorization: [REDACTED] [REDACTED]",
                "-H",
                "Accept: text/plain"
            ]
        );
        assert_eq!(
            masked(&["--header=X-Api-Key:K1", "Authorization:Bearer", "T"]),
            [
                "--header=X-Api-Key:[REDACTED]",
                "Authorization:[REDACTED]",
                "[REDACTED]"
            ]
        );
        assert_eq!(
            masked(&["https://u:pw@x.test/a?token=T&q=1#f", "https://x.test"]),
            [
                "https://REDACTED:REDACTED@x.test/a?token=[REDACTED]&q=1",
                "https://x.test"
            ]
        );
        assert_eq!(
            masked(&["--dsn=postgres://app:pw@db/x"]),
            ["--dsn=postgres://REDACTED:REDACTED@db/x"]
        );
        assert_eq!(
            masked(&[
                "deploy",
                "sk-abcdefghijklmnopqrstuv",
                "AKIAABCDEFGHIJKLMNOP",
                "ghp_short"
            ]),
            ["deploy", "[REDACTED]", "[REDACTED]", "ghp_short"]
        );
        assert_eq!(
            masked(&["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"]),
            ["[REDACTED]"]
        );
        // Harmless words stay readable.
        assert_eq!(
            masked(&[
                "git",
                "push",
                "--author=me",
                "origin",
                "main:main",
                "--key-file-format=pem"
            ]),
            [
                "git",
                "push",
                "--author=me",
                "origin",
                "main:main",
                "--key-file-format=[REDACTED]"
            ]
        );
    }

    #[test]
    fn a_script_is_masked_word_by_word() {
        assert_eq!(
            masked(&[
                "sh",
                "-c",
                "curl -H 'Authorization: Bearer abc' --password  pw https://x.test/?api_key=K\nTOKEN=t ./run"
            ]),
            [
                "sh",
                "-c",
                "curl -H 'Authorization: [REDACTED] [REDACTED] --password  [REDACTED] https://x.test/?api_key=[REDACTED]\nTOKEN=[REDACTED] ./run"
            ]
        );
    }

    #[test]
    fn output_is_masked_in_its_common_shapes() {
        let names = SensitiveNames::default();
        assert_eq!(
            text(
                "user=ann\npassword=hunter2\n{\"token\": \"t1\", \"ok\": true}\n{\"secret\":\"s2\"}\n",
                &names
            ),
            "user=ann\npassword=[REDACTED]\n{\"token\": [REDACTED] \"ok\": true}\n{\"secret\":[REDACTED]\n"
        );
    }

    #[test]
    fn user_password_values_are_masked() {
        assert_eq!(
            masked(&[
                "curl",
                "-u",
                "me:pw",
                "--user=ann:pw2",
                "--proxy-user",
                "p:x",
                "-u",
                "alice"
            ]),
            [
                "curl",
                "-u",
                "[REDACTED]",
                "--user=[REDACTED]",
                "--proxy-user",
                "[REDACTED]",
                "-u",
                "alice"
            ]
        );
        assert_eq!(
            text("curl -u 'me:pw' https://x.test", &SensitiveNames::default()),
            "curl -u [REDACTED] https://x.test"
        );
    }

    #[test]
    fn listed_names_are_flags_too() {
        let names = SensitiveNames::with_keys(["p", "pin-file"]);
        let list = ["mysql", "-p", "pw1", "-ppw2", "--pin-file", "/k", "-v"].map(String::from);
        assert_eq!(
            args(&list, &names),
            [
                "mysql",
                "-p",
                "[REDACTED]",
                "-p[REDACTED]",
                "--pin-file",
                "[REDACTED]",
                "-v"
            ]
        );
    }

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let list = ["-c", "echo 'hi' there", ""].map(String::from);
        assert_eq!(
            command_line("sh", &list),
            r#"sh -c 'echo '\''hi'\'' there' ''"#
        );
    }

    fn sensitive_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("password".to_owned()),
            Just("api_key".to_owned()),
            Just("X-Auth-Token".to_owned()),
            Just("client_secret".to_owned()),
            Just("accessKey".to_owned()),
            Just("Authorization".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever shape carries it, a secret under a sensitive name never survives.
        #[test]
        fn secrets_never_reach_core(
            name in sensitive_name(),
            secret in "[A-Za-z0-9]{12,24}",
            dashes in "-{0,2}",
            shape in 0usize..8,
            script in any::<bool>(),
        ) {
            let list: Vec<String> = match shape {
                0 => vec![format!("{dashes}{name}={secret}")],
                1 => vec![format!("-{dashes}{name}"), secret.clone()],
                2 => vec!["-H".into(), format!("{name}: {secret}")],
                3 => vec!["-H".into(), format!("{name}: Bearer {secret}")],
                4 => vec![format!("https://x.test/p?{name}={secret}&a=1")],
                5 => vec![format!("https://user:{secret}@x.test/")],
                6 => vec!["-u".into(), format!("user:{secret}")],
                _ => vec![format!("{name}:{secret}")],
            };
            let list = if script {
                vec!["sh".into(), "-c".into(), format!("run {} && echo done", list.join(" "))]
            } else {
                list
            };
            let out = args(&list, &SensitiveNames::default()).join(" ");
            prop_assert!(!out.contains(&secret), "{list:?} -> {out}");
        }

        /// Any input is masked without a panic, and words with no secret in them stay as given.
        #[test]
        fn any_argument_is_handled(list in proptest::collection::vec(".{0,40}", 0..6)) {
            let out = args(&list, &SensitiveNames::default());
            prop_assert_eq!(out.len(), list.len());
            let _ = command_line("p", &out);
            let _ = text(&list.join(" "), &SensitiveNames::default());
        }
    }
}
