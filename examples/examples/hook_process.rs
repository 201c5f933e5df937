//! Commands: `openbox::process::Command` mirrors `tokio::process::Command`; a command is
//! evaluated before it starts (program, arguments with secrets masked, working directory,
//! environment variable names) and after it ends (exit status, captured output). Here a rule
//! blocks every `rm`: the directory it would delete is still there afterwards.
//!
//! `cargo run -p openbox-examples --example hook_process` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set).

use std::time::Duration;

use openbox_examples::Example;
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

const RULES: &str = r#"
[[rules]]
name = "no rm"
verdict = "block"
reason = "agents do not delete files"
match = { "spans.0.stage" = "started", "spans.0.attributes.process.executable.name" = "rm" }
"#;

/// A credential the activity fetches (from a vault, say) and passes on a command line and in
/// the environment: Core only ever sees `[REDACTED]` and the variable's name.
const API_TOKEN: &str = "sk-example0123456789abcdef";

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// Runs `argv` (program first; `{token}` in an argument is replaced by the credential) and
    /// returns its standard output.
    #[activity(name = "run_command")]
    pub async fn step(_ctx: ActivityContext, argv: Vec<String>) -> Result<String, ActivityError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("no program"))?;
        let out = openbox::process::Command::new(program)
            .args(args.iter().map(|a| a.replace("{token}", API_TOKEN)))
            .env("DEPLOY_TOKEN", API_TOKEN)
            .output()
            .await
            .map_err(anyhow::Error::from)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

#[workflow]
#[derive(Default)]
pub struct ProcessExample;

#[workflow_methods]
impl ProcessExample {
    #[run(name = "ProcessExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        commands: Vec<Vec<String>>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for argv in commands {
            results.push(
                match ctx.execute_activity(Acts::step, argv, opts.clone()).await {
                    Ok(out) => out,
                    Err(e) => format!("stopped: {e}"),
                },
            );
        }
        Ok(results)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_process", RULES).await?;
    let scratch = std::env::temp_dir().join(format!("openbox-example-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let commands = vec![
        [
            "sh",
            "-c",
            "echo deploying to $1",
            "sh",
            "staging",
            "--token={token}",
        ]
        .map(String::from)
        .to_vec(),
        vec!["rm".into(), "-rf".into(), scratch.display().to_string()],
    ];
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<ProcessExample>()?
        .build();
    let results = ex
        .run_workflow(options, ProcessExample::run, commands)
        .await?;
    println!("results: {results:?}");
    let hooks = ex.print_hooks().await?;
    let still_there = scratch.exists();
    let _ = std::fs::remove_dir(&scratch);
    anyhow::ensure!(still_there, "the blocked rm ran");
    anyhow::ensure!(
        results[0] == "deploying to staging",
        "the allowed command did not run"
    );
    anyhow::ensure!(
        !hooks.iter().any(|e| e.body.to_string().contains(API_TOKEN)),
        "the token reached Core"
    );
    Ok(())
}
