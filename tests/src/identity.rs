//! For the identity tests: fresh RSA keys, an Okta agent's configuration and its registration
//! at the dev Core, and a proxy in front of the dev Core that tampers with what the SDK sends.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::RsaKeyPair;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openbox::{ErrorPolicy, OktaAgentIdentity, OpenBoxConfig};
use openbox_dev::okta::OktaAgentRegistration;

/// The ids every test agent has.
pub const AGENT_ID: &str = "5b0d3c9e-7a51-4f8e-9d0c-2f6a1e4b8c73";
/// Its Okta id.
pub const OKTA_AGENT_ID: &str = "wlp8x5q7mvH86KvFJ0g4";
/// Its audience.
pub const AUDIENCE: &str = "https://core.test/api/v2";

/// A new 2048-bit RSA key as unencrypted PKCS#8 PEM.
pub fn new_rsa_key_pem() -> String {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generated");
    let der = key.as_der().expect("PKCS#8 encoding");
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// The configuration of the test agent signing with `pem`, for Core at `url`.
pub fn okta_config(url: &str, policy: ErrorPolicy, pem: &str) -> OpenBoxConfig {
    crate::core::config_builder_for(url, policy, Duration::from_secs(5))
        .okta_agent_private_key(pem)
        .openbox_agent_id(AGENT_ID)
        .organization_id("org_01HZXK3Q9V")
        .deployment_id("dep_test")
        .okta_agent_id(OKTA_AGENT_ID)
        .okta_agent_key_id("kid-test")
        .agent_proof_audience(AUDIENCE)
        .build()
        .expect("valid Okta test config")
}

/// How Core registers the agent of `identity`: its ids and its public key.
pub fn registration_of(identity: &OktaAgentIdentity) -> OktaAgentRegistration {
    serde_json::from_value(serde_json::json!({
        "openbox_agent_id": identity.openbox_agent_id(),
        "organization_id": identity.organization_id(),
        "deployment_id": identity.deployment_id(),
        "assertion_audience": identity.agent_proof_audience(),
        "okta": {"external_agent_id": identity.okta_agent_id()},
        "jwks": {"keys": [identity.public_jwk()]},
    }))
    .expect("a registration")
}

/// What the proxy does to each governance request it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Adds a space to the end of the body (still JSON, other bytes).
    Body,
    /// Sends the request twice, as captured, and answers with the second answer (a replay).
    Replay,
}

/// A proxy between the SDK and the dev Core that tampers with every request.
pub struct TamperingProxy {
    /// `http://127.0.0.1:<port>`: the Core URL to configure.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

struct Forward {
    target: String,
    tamper: Tamper,
    http: reqwest::Client,
}

impl TamperingProxy {
    /// Starts in front of `target` (the dev Core's URL).
    pub async fn start(target: &str, tamper: Tamper) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Forward {
            target: target.trim_end_matches('/').to_owned(),
            tamper,
            http: reqwest::Client::new(),
        });
        let app = Router::new().fallback(any(forward)).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TamperingProxy { url, task }
    }
}

impl Drop for TamperingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(f): State<Arc<Forward>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default()
        .to_vec();
    if f.tamper == Tamper::Body && !body.is_empty() {
        body.push(b' ');
    }
    let url = format!("{}{}", f.target, parts.uri);
    let send = || {
        let mut request = f.http.request(parts.method.clone(), &url);
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        request.body(Bytes::from(body.clone())).send()
    };
    if f.tamper == Tamper::Replay {
        let _ = send().await;
    }
    match send().await {
        Ok(answer) => {
            let status = answer.status();
            let bytes = answer.bytes().await.unwrap_or_default();
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .unwrap_or_default()
        }
        Err(_) => Response::builder()
            .status(502)
            .body(Body::empty())
            .unwrap_or_default(),
    }
}

/// The public key of `pem` as the JWK `kid`.
pub fn public_jwk_of(pem: &str, kid: &str) -> openbox_dev::okta::Jwk {
    use aws_lc_rs::signature::KeyPair;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).expect("PEM body");
    let key = RsaKeyPair::from_pkcs8(&der).expect("an RSA key");
    let public = key.public_key();
    openbox_dev::okta::Jwk {
        kty: "RSA".into(),
        kid: kid.into(),
        n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    }
}

/// How Core registers the service account whose key is `pem`, its tokens living
/// `token_lifetime_seconds`.
pub fn workload_registration(
    pem: &str,
    token_lifetime_seconds: i64,
) -> openbox_dev::workload::WorkloadRegistration {
    serde_json::from_value(serde_json::json!({
        "client_id": "svc-openbox-test",
        "jwk": public_jwk_of(pem, "wk-test"),
        "token_lifetime_seconds": token_lifetime_seconds,
        "service_account_id": "2f1e0a8c-5b7d-4c3e-9a61-0d2b7e4f8c90",
        "activation_version": "0d2b7e4f-8c90-4c3e-9a61-2f1e0a8c5b7d",
    }))
    .expect("a workload registration")
}

/// The configuration of a worker with the workload key `pem`, for Core at `url`.
pub fn workload_config(url: &str, policy: ErrorPolicy, pem: &str) -> OpenBoxConfig {
    crate::core::config_builder_for(url, policy, Duration::from_secs(5))
        .workload_private_key(pem)
        .build()
        .expect("valid workload test config")
}
