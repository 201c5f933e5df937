//! `openbox-dev`: run a local OpenBox Core, and answer its approval requests.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use openbox_dev::duration::parse_duration;
use openbox_dev::{DevCore, Faults, RuleSet};
use serde_json::{Value, json};

/// A local development OpenBox Core: rules file, event log, approvals, fault injection.
#[derive(Parser)]
#[command(name = "openbox-dev", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Core API (and the dev API) until Ctrl-C.
    Serve(Box<Serve>),
    /// Approve a pending approval request of a running dev Core.
    Approve(Decide),
    /// Reject a pending approval request of a running dev Core.
    Reject(Decide),
    /// List the approval requests of a running dev Core.
    Approvals {
        #[command(flatten)]
        server: Server,
        /// Only those still pending.
        #[arg(long)]
        pending: bool,
    },
    /// Check a rules file and print its rules.
    Check {
        /// The rules file (.toml or .json).
        rules: PathBuf,
    },
}

#[derive(Args)]
struct Serve {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8086)]
    port: u16,
    /// Rules file (.toml or .json); without one, everything is allowed.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Append every request to this JSONL file.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Accept only this API key (repeatable); default: any obx_test_* / obx_live_* key.
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// Approval requests expire after this long (e.g. 10m).
    #[arg(long, value_parser = parse_duration)]
    approval_expires_in: Option<std::time::Duration>,
    /// Requests kept in memory for the dev API.
    #[arg(long, default_value_t = 10_000)]
    keep_events: usize,
    /// Delay every governance answer (e.g. 250ms).
    #[arg(long, value_parser = parse_duration)]
    fault_delay: Option<std::time::Duration>,
    /// Share of governance requests answered with --fault-error-status.
    #[arg(long, default_value_t = 0.0)]
    fault_error_rate: f64,
    /// HTTP status of injected errors.
    #[arg(long, default_value_t = 500)]
    fault_error_status: u16,
    /// Share answered 200 with a garbage body.
    #[arg(long, default_value_t = 0.0)]
    fault_garbage_rate: f64,
    /// Share answered 200 with an unknown verdict.
    #[arg(long, default_value_t = 0.0)]
    fault_unknown_verdict_rate: f64,
    /// Share whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    fault_reset_rate: f64,
    /// Status forced on the key check (e.g. 401).
    #[arg(long)]
    fault_validate_status: Option<u16>,
    /// Seconds the clock checking Okta agent assertions runs ahead (negative: behind).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    fault_clock_offset_seconds: i64,
    /// Also answer the dev API and web page under this host name (repeatable); loopback names
    /// are always answered.
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Require this key on the dev API (needed with a non-loopback --host).
    #[arg(long, env = "OPENBOX_DEV_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Verify signed requests: the agent DID they must carry (with --agent-public-key).
    #[arg(long, requires = "agent_public_key")]
    agent_did: Option<String>,
    /// The agent's Ed25519 public key, standard base64 (with --agent-did).
    #[arg(long, requires = "agent_did")]
    agent_public_key: Option<String>,
    /// Verify Okta AI-agent assertions (agent identity v2): a JSON file registering the agent
    /// — `openbox_agent_id`, `organization_id`, `deployment_id`, `assertion_audience`,
    /// `okta.external_agent_id` and `jwks` (its RSA public keys by `kid`).
    #[arg(long, value_name = "FILE", conflicts_with = "agent_did")]
    okta_agent: Option<std::path::PathBuf>,
    /// Offer the workload identity (agent identity v3): a JSON file registering the service
    /// account — `client_id`, `jwk` (its RSA public key with `kid`), optionally
    /// `token_lifetime_seconds` (300), `identity_source`, `audience`, `service_account_id`,
    /// `activation_version`.
    #[arg(long, value_name = "FILE", conflicts_with = "agent_did")]
    workload: Option<std::path::PathBuf>,
    /// The Okta agent and workload identity registered are candidates: active only once an
    /// identity transition to them is proven (`POST /api/dev/transitions` prepares one); the
    /// API key alone stays accepted.
    #[arg(long)]
    identities_pending: bool,
}

#[derive(Args)]
struct Server {
    /// The running dev Core [default: $OPENBOX_API_URL, $OPENBOX_URL or http://127.0.0.1:8086].
    #[arg(long)]
    url: Option<String>,
    /// Its admin key, when it was started with one.
    #[arg(long, env = "OPENBOX_DEV_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
}

impl Server {
    /// A request to the dev API: marked as a tool's (`X-OpenBox-Dev`), with the admin key.
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let req = reqwest::Client::new()
            .request(method, url)
            .header(openbox_dev::guard::DEV_HEADER, "cli");
        match &self.admin_key {
            Some(key) => req.header(openbox_dev::guard::ADMIN_KEY_HEADER, key),
            None => req,
        }
    }

    fn url(&self) -> String {
        self.url
            .clone()
            .or_else(|| std::env::var("OPENBOX_API_URL").ok())
            .or_else(|| std::env::var("OPENBOX_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8086".into())
            .trim_end_matches('/')
            .to_owned()
    }
}

#[derive(Args)]
struct Decide {
    /// The approval request id (see `openbox-dev approvals`).
    id: String,
    /// A note recorded with the decision.
    #[arg(long)]
    reason: Option<String>,
    /// Reject with a patch: the JSON input the run restarts with (`null`: the same input).
    #[arg(long, value_name = "JSON")]
    new_input: Option<String>,
    #[command(flatten)]
    server: Server,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "openbox_dev=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Approve(d) => decide(d, "approve").await,
        Command::Reject(d) => decide(d, "reject").await,
        Command::Approvals { server, pending } => list(server, pending).await,
        Command::Check { rules } => {
            let rules = RuleSet::load(&rules).map_err(|e| e.to_string())?;
            for rule in rules.rules() {
                println!("{:<18} {}", rule.verdict, rule.name);
            }
            println!("{} rule(s) OK", rules.rules().len());
            Ok(())
        }
    }
}

async fn serve(args: Serve) -> Result<(), String> {
    let faults = Faults {
        delay_ms: args.fault_delay.map_or(0, |d| d.as_millis() as u64),
        error_rate: args.fault_error_rate,
        error_status: args.fault_error_status,
        garbage_rate: args.fault_garbage_rate,
        unknown_verdict_rate: args.fault_unknown_verdict_rate,
        reset_rate: args.fault_reset_rate,
        validate_status: args.fault_validate_status,
        clock_offset_seconds: args.fault_clock_offset_seconds,
        expire_workload_tokens: false,
        token_endpoint_status: None,
    };
    let mut builder = DevCore::builder()
        .addr(SocketAddr::new(args.host, args.port))
        .keep_events(args.keep_events)
        .faults(faults);
    if let Some(path) = &args.rules {
        builder = builder.rules_file(path).map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.events {
        builder = builder.event_log(path);
    }
    if !args.api_keys.is_empty() {
        builder = builder.api_keys(args.api_keys);
    }
    if let Some(d) = args.approval_expires_in {
        builder = builder.approval_expires_in(d);
    }
    for host in args.allow_hosts {
        builder = builder.allow_host(host);
    }
    if let Some(key) = args.admin_key {
        builder = builder.admin_key(key);
    }
    if let (Some(did), Some(key)) = (args.agent_did, args.agent_public_key) {
        builder = builder.agent(did, key);
    }
    if let Some(path) = args.okta_agent {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let registration = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not an Okta agent registration: {e}", path.display()))?;
        builder = builder.okta_agent(registration);
    }
    if let Some(path) = args.workload {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let registration = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a workload registration: {e}", path.display()))?;
        builder = builder.workload(registration);
    }
    if args.identities_pending {
        builder = builder.identities_pending();
    }
    let core = builder.start().await.map_err(|e| e.to_string())?;
    // Write errors are ignored: a closed stdout (a caller that read the first line and went
    // away) must not take the server down.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "openbox-dev listening on {}", core.url());
        let _ = writeln!(out, "  OPENBOX_API_URL={}", core.url());
        let _ = writeln!(out, "  web page: {}/", core.url());
        if let Some(path) = &args.events {
            let _ = writeln!(out, "  event log: {}", path.display());
        }
        let _ = out.flush();
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    core.stop().await;
    Ok(())
}

async fn decide(d: Decide, action: &str) -> Result<(), String> {
    let url = format!("{}/api/dev/approvals/{}/{action}", d.server.url(), d.id);
    let mut body = json!({"reason": d.reason, "by": "cli"});
    if let Some(text) = &d.new_input {
        if action != "reject" {
            return Err("--new-input goes with reject".to_owned());
        }
        let new_input: Value =
            serde_json::from_str(text).map_err(|e| format!("--new-input is not JSON: {e}"))?;
        body["patch"] = json!({ "new_input": new_input });
    }
    let answer = request(d.server.request(reqwest::Method::POST, &url).json(&body)).await?;
    println!(
        "{} {}: {}",
        answer["id"].as_str().unwrap_or(&d.id),
        answer["state"].as_str().unwrap_or("?"),
        answer["activity_type"].as_str().unwrap_or("")
    );
    Ok(())
}

async fn list(server: Server, pending_only: bool) -> Result<(), String> {
    let url = format!("{}/api/dev/approvals", server.url());
    let answer = request(server.request(reqwest::Method::GET, &url)).await?;
    let items = answer.as_array().cloned().unwrap_or_default();
    let shown: Vec<&Value> = items
        .iter()
        .filter(|a| !pending_only || (a["state"] == "pending" && a["expired"] != true))
        .collect();
    if shown.is_empty() {
        println!("no approval requests");
    }
    for a in shown {
        let state = if a["expired"] == true {
            "expired"
        } else {
            a["state"].as_str().unwrap_or("?")
        };
        println!(
            "{:<8} {:<9} {} {} activity {} ({}) expires {}",
            a["id"].as_str().unwrap_or("?"),
            state,
            a["workflow_id"].as_str().unwrap_or("?"),
            a["run_id"].as_str().unwrap_or("?"),
            a["activity_id"].as_str().unwrap_or("?"),
            a["activity_type"].as_str().unwrap_or("?"),
            a["expires_at"].as_str().unwrap_or("never"),
        );
    }
    Ok(())
}

async fn request(req: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the dev Core: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(body["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}")))
    }
}
