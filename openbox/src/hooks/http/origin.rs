//! Which requests the middleware leaves ungoverned: Core's own, and the prefixes the user
//! chose to skip. A skip is a hole in governance, so it is decided on the parsed URL — scheme,
//! host, port and a path prefix that ends on a segment boundary — never on the URL's text:
//! `http://127.0.0.1:21970/` is not Core at `http://127.0.0.1:2197`, `/apiary` is not under
//! `/api`, and a URL with userinfo (`http://core@evil/`) is never skipped.

use reqwest::Url;

/// A parsed URL prefix: origin plus path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlPrefix {
    scheme: String,
    host: String,
    port: Option<u16>,
    /// Without a trailing `/`; empty for "any path".
    path: String,
}

impl UrlPrefix {
    /// Parses `prefix` (`https://api.example.com/v1`). `None` when it is not an absolute URL
    /// with a host, or carries userinfo, a query or a fragment.
    pub(crate) fn parse(prefix: &str) -> Option<Self> {
        let url = Url::parse(prefix.trim()).ok()?;
        let host = url.host_str()?.to_owned();
        if !usable_as_prefix(&url) {
            return None;
        }
        Some(UrlPrefix {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port_or_known_default(),
            path: prefix_path(&url).to_owned(),
        })
    }

    /// Whether `url` is under this prefix.
    pub(crate) fn contains(&self, url: &Url) -> bool {
        covers((&self.scheme, Some(&self.host), self.port, &self.path), url)
    }
}

/// Whether `url` is under the already parsed `prefix`, as `UrlPrefix::parse(prefix)` would
/// judge it, without building the prefix (Core's URL is compared on every request).
pub(crate) fn is_under(prefix: &Url, url: &Url) -> bool {
    usable_as_prefix(prefix)
        && prefix.host_str().is_some()
        && covers(
            (
                prefix.scheme(),
                prefix.host_str(),
                prefix.port_or_known_default(),
                prefix_path(prefix),
            ),
            url,
        )
}

/// A prefix carries no userinfo, query or fragment.
fn usable_as_prefix(url: &Url) -> bool {
    url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
}

/// The path of a prefix, without a trailing `/` (empty: any path).
fn prefix_path(url: &Url) -> &str {
    url.path().trim_end_matches('/')
}

/// Same scheme, host and port, and a path under `path` on a segment boundary; never for a URL
/// with userinfo.
fn covers((scheme, host, port, path): (&str, Option<&str>, Option<u16>, &str), url: &Url) -> bool {
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let same_origin =
        url.scheme() == scheme && url.host_str() == host && url.port_or_known_default() == port;
    if !same_origin {
        return false;
    }
    let target = url.path();
    path.is_empty()
        || target == path
        || target
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origin_and_segment_boundary() {
        let core = UrlPrefix::parse("http://127.0.0.1:2197").unwrap();
        assert!(core.contains(&url("http://127.0.0.1:2197/api/v1/governance/evaluate")));
        assert!(!core.contains(&url("http://127.0.0.1:21970/x")));
        assert!(!core.contains(&url("http://127.0.0.1:2197@127.0.0.2:9000/x")));
        assert!(!core.contains(&url("http://user@127.0.0.1:2197/x")));
        assert!(!core.contains(&url("https://127.0.0.1:2197/x")));
        assert!(!core.contains(&url("http://127.0.0.10:2197/x")));
        let api = UrlPrefix::parse("https://Example.com/api/").unwrap();
        assert!(api.contains(&url("https://example.com:443/api")));
        assert!(api.contains(&url("https://example.com/api/v1?x=1")));
        assert!(!api.contains(&url("https://example.com/apiary")));
        assert!(!api.contains(&url("https://example.com.evil.net/api")));
        for bad in ["example.com", "http://u:p@x/", "http://x/?q=1", "", "/api"] {
            assert_eq!(UrlPrefix::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        /// A URL is skipped only when it is on Core's own origin: for arbitrary hosts, ports,
        /// paths and userinfo, `contains` agrees with a comparison of the parsed parts.
        #[test]
        fn only_cores_own_origin_is_skipped(
            host in prop_oneof![Just("127.0.0.1".to_owned()), Just("localhost".to_owned()), "[a-z]{1,8}(\\.[a-z]{1,5}){0,2}"],
            port in prop_oneof![Just(2197u16), Just(21970u16), 1u16..65535],
            scheme in prop_oneof![Just("http"), Just("https")],
            path in "(/[a-z0-9]{0,6}){0,3}",
            userinfo in prop_oneof![Just(String::new()), "[a-z0-9:]{1,12}@"],
        ) {
            let core = UrlPrefix::parse("http://127.0.0.1:2197").unwrap();
            let text = format!("{scheme}://{userinfo}{host}:{port}{path}");
            if let Ok(u) = Url::parse(&text) {
                let expected = u.scheme() == "http"
                    && u.host_str() == Some("127.0.0.1")
                    && u.port_or_known_default() == Some(2197)
                    && u.username().is_empty()
                    && u.password().is_none();
                prop_assert_eq!(core.contains(&u), expected, "{}", text);
            }
        }

        /// Comparing against an already parsed prefix URL judges as parsing it into a prefix
        /// would, for prefixes with and without paths, userinfo, queries and fragments.
        #[test]
        fn a_parsed_prefix_judges_like_its_text(
            prefix_path in "(/[a-z]{0,4}){0,2}/?",
            prefix_tail in prop_oneof![Just(""), Just("?q=1"), Just("#f")],
            prefix_user in prop_oneof![Just(""), Just("u@"), Just("u:p@")],
            host in prop_oneof![Just("core"), Just("other")],
            port in prop_oneof![Just(2197u16), Just(80u16)],
            path in "(/[a-z]{0,4}){0,3}",
            userinfo in prop_oneof![Just(""), Just("x@")],
        ) {
            let text = format!("http://{prefix_user}core:2197{prefix_path}{prefix_tail}");
            let target = format!("http://{userinfo}{host}:{port}{path}");
            if let (Ok(prefix), Ok(u)) = (Url::parse(&text), Url::parse(&target)) {
                let expected = UrlPrefix::parse(&text).is_some_and(|p| p.contains(&u));
                prop_assert_eq!(is_under(&prefix, &u), expected, "{} under {}", target, text);
            }
        }
    }
}
