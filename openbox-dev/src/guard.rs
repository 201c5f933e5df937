//! What keeps the dev Core safe to leave running on a developer's machine: its own API (which
//! grants approvals, reloads rules, sets faults and shows every logged request) answers only
//! requests that a web page the developer happens to visit cannot forge.
//!
//! * **DNS rebinding.** A page on `evil.example` whose name resolves to 127.0.0.1 talks to the
//!   dev Core as same-origin, but its requests carry `Host: evil.example`: only loopback names
//!   (and the hosts allowed with `--allow-host`) are answered.
//! * **Cross-site requests.** A page can send a bodiless or form `POST` to any address without
//!   the browser asking first. Every state-changing call must carry `Content-Type:
//!   application/json` or the `X-OpenBox-Dev` header — both make a browser ask (CORS preflight),
//!   which the dev Core never grants — and an `Origin`, when present, must be allowed too.
//! * **Other machines.** Listening on a non-loopback address needs an admin key, which every
//!   call of the dev API must then carry (`X-OpenBox-Admin-Key`, or `?key=` for the live stream
//!   that a browser opens without headers).
//!
//! The Core contract endpoints (`/api/v1/…`) are not guarded here: they check the API key.

use std::collections::HashSet;
use std::net::IpAddr;

use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, ORIGIN};
use hyper::{Method, StatusCode};

/// The header a script of the dev Core's own page (or a tool) adds to state-changing calls.
pub const DEV_HEADER: &str = "x-openbox-dev";
/// The header carrying the admin key.
pub const ADMIN_KEY_HEADER: &str = "x-openbox-admin-key";

/// The dev API's checks.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed_hosts: HashSet<String>,
    admin_key: Option<String>,
}

/// Why a request to the dev API is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 or 401.
    pub status: StatusCode,
    /// Said to the client.
    pub message: &'static str,
}

/// `true` for `localhost`, `*.localhost` and loopback addresses.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host part of a `Host` header value (`[::1]:8086` → `[::1]`, `a.b:80` → `a.b`).
fn host_of(authority: &str) -> &str {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

impl Guard {
    /// Loopback names, `allowed_hosts`, and `admin_key` required when given.
    pub fn new(
        allowed_hosts: impl IntoIterator<Item = impl Into<String>>,
        admin_key: Option<String>,
    ) -> Self {
        Guard {
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
            admin_key: admin_key.filter(|k| !k.is_empty()),
        }
    }

    /// Whether an admin key is required.
    pub fn has_admin_key(&self) -> bool {
        self.admin_key.is_some()
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        is_loopback_host(&host)
            || self
                .allowed_hosts
                .contains(host.trim_start_matches('[').trim_end_matches(']'))
    }

    /// Checks a request to the dev API or the web page. `asset` is `true` for the page and its
    /// static files, which need no admin key (they hold no data).
    pub fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
        asset: bool,
    ) -> Result<(), Refusal> {
        let forbidden = |message| {
            Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message,
            })
        };
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        if !host.is_some_and(|h| self.host_allowed(host_of(h))) {
            return forbidden(
                "Host not allowed: the dev Core answers loopback names only (start it with --allow-host <name> to add one)",
            );
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let allowed = origin
                .to_str()
                .ok()
                .and_then(|o| reqwest::Url::parse(o).ok())
                .and_then(|u| u.host_str().map(|h| self.host_allowed(h)))
                .unwrap_or(false);
            if !allowed {
                return forbidden("Origin not allowed: the dev API is not for other web sites");
            }
        }
        let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if changes_state {
            let json = headers
                .get(CONTENT_TYPE)
                .and_then(|c| c.to_str().ok())
                .is_some_and(|c| {
                    c.split(';')
                        .next()
                        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
                });
            if !json && !headers.contains_key(DEV_HEADER) {
                return forbidden(
                    "a state-changing call needs Content-Type: application/json or the X-OpenBox-Dev header",
                );
            }
        }
        if let Some(key) = &self.admin_key
            && !asset
        {
            let given = headers
                .get(ADMIN_KEY_HEADER)
                .and_then(|k| k.to_str().ok())
                .map(str::to_owned)
                .or_else(|| {
                    query.and_then(|q| {
                        url::form_urlencoded::parse(q.as_bytes())
                            .find(|(k, _)| k == "key")
                            .map(|(_, v)| v.into_owned())
                    })
                });
            if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), key.as_bytes())) {
                return Err(Refusal {
                    status: StatusCode::UNAUTHORIZED,
                    message: "the dev API needs the admin key (X-OpenBox-Admin-Key)",
                });
            }
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn hosts() {
        for h in [
            "localhost:8086",
            "127.0.0.1:8086",
            "[::1]:8086",
            "127.1.2.3",
            "app.localhost",
        ] {
            assert!(is_loopback_host(host_of(h)), "{h}");
        }
        for h in [
            "evil.example:8086",
            "10.0.0.1",
            "localhost.evil.example",
            "",
        ] {
            assert!(!is_loopback_host(host_of(h)), "{h}");
        }
    }

    #[test]
    fn checks() {
        let g = Guard::default();
        let post = Method::POST;
        let ok = |h: &[(&str, &str)]| g.check(&post, &headers(h), None, false);
        assert!(
            ok(&[
                ("host", "127.0.0.1:1"),
                ("content-type", "application/json")
            ])
            .is_ok()
        );
        assert!(ok(&[("host", "localhost:1"), (DEV_HEADER, "1")]).is_ok());
        // A bodiless cross-site POST, a form POST, a rebinding host, a foreign origin.
        assert!(ok(&[("host", "127.0.0.1:1")]).is_err());
        assert!(
            ok(&[
                ("host", "127.0.0.1:1"),
                ("content-type", "application/x-www-form-urlencoded")
            ])
            .is_err()
        );
        assert!(
            ok(&[
                ("host", "evil.example:1"),
                ("content-type", "application/json")
            ])
            .is_err()
        );
        assert!(ok(&[]).is_err());
        assert!(
            ok(&[
                ("host", "127.0.0.1:1"),
                ("content-type", "application/json"),
                ("origin", "https://evil.example")
            ])
            .is_err()
        );
        assert!(
            ok(&[
                ("host", "127.0.0.1:1"),
                ("content-type", "application/json"),
                ("origin", "http://127.0.0.1:1")
            ])
            .is_ok()
        );
        assert!(
            g.check(
                &Method::GET,
                &headers(&[("host", "127.0.0.1:1")]),
                None,
                false
            )
            .is_ok()
        );

        let keyed = Guard::new(["devbox.lan"], Some("k3y".into()));
        let get = |h: &[(&str, &str)], q: Option<&str>, asset| {
            keyed.check(&Method::GET, &headers(h), q, asset)
        };
        assert!(
            get(&[("host", "devbox.lan:8086")], None, true).is_ok(),
            "the page itself"
        );
        assert_eq!(
            get(&[("host", "devbox.lan:8086")], None, false)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert!(
            get(
                &[("host", "devbox.lan"), (ADMIN_KEY_HEADER, "k3y")],
                None,
                false
            )
            .is_ok()
        );
        assert!(get(&[("host", "devbox.lan")], Some("key=k3y"), false).is_ok());
        assert!(get(&[("host", "devbox.lan")], Some("key=nope"), false).is_err());
    }
}
