//! async-openai: its client sends through any tower service it is given
//! (`Client::with_http_service`, async-openai's `middleware` feature); [`GovernedOpenAiService`]
//! is one that sends through the governed reqwest client, so every request of the client —
//! chat completions whole and streamed, embeddings, files, … — is governed like any request of
//! the middleware.
//!
//! ```no_run
//! use async_openai::Client;
//! use async_openai::config::OpenAIConfig;
//! use openbox::hooks::http::openai::GovernedOpenAiService;
//!
//! # fn build() -> Result<(), reqwest::Error> {
//! let client = Client::with_config(OpenAIConfig::new().with_api_base("http://127.0.0.1:8000/v1"))
//!     .with_http_service(GovernedOpenAiService::new()?);
//! # let _ = client; Ok(()) }
//! ```
//!
//! `Client::with_http_client(reqwest::Client)` takes a plain client, which no middleware can
//! reach: requests of a client built that way are **not** governed.

use std::task::{Context, Poll};

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::future::BoxFuture;
use reqwest_middleware::ClientWithMiddleware;

use crate::governance::scope::ActivityScope;

/// A tower service for async-openai's `Client::with_http_service` that sends every request
/// through a governed `reqwest_middleware` client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GovernedOpenAiService {
    client: ClientWithMiddleware,
}

impl GovernedOpenAiService {
    /// Sends through [`super::client`]: a reqwest client with the default
    /// [`super::OpenBoxMiddleware`], which follows redirects itself.
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self::with_client(
            super::client(reqwest::Client::builder())?,
        ))
    }

    /// Sends through `client`, which should carry an [`super::OpenBoxMiddleware`] (with
    /// settings of your choosing): without one, nothing is governed.
    pub fn with_client(client: ClientWithMiddleware) -> Self {
        GovernedOpenAiService { client }
    }
}

impl tower_service::Service<HttpRequestFactory> for GovernedOpenAiService {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let client = self.client.clone();
        let send = async move {
            let request = request.build().await?;
            client.execute(request).await.map_err(|e| match e {
                reqwest_middleware::Error::Reqwest(e) => OpenAIError::Reqwest(e),
                // A governance stop (its `HookError` inside) or another middleware's error.
                reqwest_middleware::Error::Middleware(e) => OpenAIError::Boxed(e.into()),
            })
        };
        // The activity is known where the call is made; the future may be polled elsewhere
        // (under a buffering layer, say), so it carries the activity with it.
        match ActivityScope::current() {
            Some(scope) => Box::pin(scope.run(send)),
            None => Box::pin(send),
        }
    }
}
