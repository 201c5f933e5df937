//! Governed processes: a command is evaluated before it starts — a BLOCK means it never starts —
//! and after it ends, with its exit status and, when the caller collects them, a bounded capture
//! of its output. [`Command`] mirrors `tokio::process::Command`; [`sync::Command`] mirrors
//! `std::process::Command` for sync activity bodies. Outside a governed activity they are plain
//! commands.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let out = openbox::process::Command::new("git")
//!     .args(["log", "-1", "--format=%H"])
//!     .current_dir("/srv/repo")
//!     .output()
//!     .await?;
//! # let _ = out; Ok(()) }
//! ```
//!
//! # What Core receives
//!
//! A `function_call` span (the hook type Core's contract has for work that is neither HTTP, a
//! database nor a file), shaped as OpenBox's own agent hooks report a shell command: name and
//! `function` `ShellExecution`, `module` `openbox::process`, kind `INTERNAL`, and
//!
//! * attributes `shell.command` (the command line, quoted as a POSIX shell would need it),
//!   `shell.cwd` (when set), `process.executable.name` and `process.command_args` — what Core's
//!   classifier reads for a shell command;
//! * at `started`, `args`: `{"args": [program, arguments…], "kwargs": {"cwd": …, "env": [names
//!   set], "env_clear": bool, "env_removed": [names]}}` — environment variable *names* only,
//!   never their values; each argument is cut to 16 384 characters, and past 256 arguments the
//!   rest are counted;
//! * at `completed`, `result`: `{"exit_code": …, "success": …}` (plus `"signal"` when a signal
//!   ended it, and `"stdout"` / `"stderr"` when the caller collected them with `output()` or
//!   `wait_with_output()` — never for inherited pipes; keys in alphabetical order), and `error`
//!   (`exit status: 1`, or why it could not start) when it did not succeed.
//!
//! Arguments, the command line and captured output are masked before they leave the process: a
//! value under a sensitive name (`--password=…`, `--token …`, `API_KEY=…`,
//! `Authorization: Bearer …`), URL userinfo and sensitive query values, and words shaped like
//! well-known credentials (`sk-…`, `ghp_…`, `AKIA…`, JWTs). Names are judged by the same rule
//! as HTTP headers and query parameters (plus `redact_keys`, which also names flags such as `p`
//! for `-p` and `-pSECRET`); `user:password` after `-u` or `--user` is masked too. Output is
//! cut to 65 536 characters per stream; `report_output(false)` sends none.
//!
//! Every command counts as able to change something: with Core unreachable,
//! `fail_closed_destructive` stops it. A governance stop is an `io::Error` of kind
//! `PermissionDenied` whose inner error is the [`HookError`](crate::hooks::HookError).

/// The builder methods `tokio::process::Command` and `std::process::Command` share, written once
/// for [`Command`] and [`sync::Command`] (each wraps its library's command as `inner`).
macro_rules! command_builder {
    ($inner:ty) => {
        /// A command running `program` (looked up in `PATH` unless it is a path).
        pub fn new(program: impl AsRef<OsStr>) -> Self {
            Command {
                inner: <$inner>::new(program),
                env_clear: false,
                report_output: true,
            }
        }

        /// Adds an argument.
        pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
            self.inner.arg(arg);
            self
        }

        /// Adds arguments.
        pub fn args<I, S>(&mut self, args: I) -> &mut Self
        where
            I: IntoIterator<Item = S>,
            S: AsRef<OsStr>,
        {
            self.inner.args(args);
            self
        }

        /// Sets an environment variable (Core sees its name, never its value).
        pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
            self.inner.env(key, val);
            self
        }

        /// Sets environment variables (Core sees their names, never their values).
        pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
        where
            I: IntoIterator<Item = (K, V)>,
            K: AsRef<OsStr>,
            V: AsRef<OsStr>,
        {
            self.inner.envs(vars);
            self
        }

        /// Removes an environment variable.
        pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
            self.inner.env_remove(key);
            self
        }

        /// Starts from an empty environment.
        pub fn env_clear(&mut self) -> &mut Self {
            self.inner.env_clear();
            self.env_clear = true;
            self
        }

        /// Sets the working directory.
        pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
            self.inner.current_dir(dir);
            self
        }

        /// Sets the child's standard input.
        pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
            self.inner.stdin(cfg);
            self
        }

        /// Sets the child's standard output.
        pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
            self.inner.stdout(cfg);
            self
        }

        /// Sets the child's standard error.
        pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
            self.inner.stderr(cfg);
            self
        }

        /// Whether collected output is sent to Core (on by default; masked and cut either way).
        pub fn report_output(&mut self, on: bool) -> &mut Self {
            self.report_output = on;
            self
        }
    };
}

/// What the governed children of both APIs share: the library's child (`inner`, `None` once
/// `wait_with_output` consumed the `Child`), the call whose end is still to be reported, the
/// child's pipes as public fields, and a drop that reports an unwaited child in the background.
macro_rules! child_common {
    ($($lib:ident)::+, $doc:literal) => {
        #[doc = concat!("A running governed command: ", $doc, " whose end is reported to Core.")]
        #[derive(Debug)]
        pub struct Child {
            inner: Option<$($lib)::+::Child>,
            call: Option<ProcessCall>,
            /// The child's stdin, when piped.
            pub stdin: Option<$($lib)::+::ChildStdin>,
            /// The child's stdout, when piped.
            pub stdout: Option<$($lib)::+::ChildStdout>,
            /// The child's stderr, when piped.
            pub stderr: Option<$($lib)::+::ChildStderr>,
        }

        impl Child {
            fn new(mut inner: $($lib)::+::Child, call: Option<ProcessCall>) -> Self {
                Child {
                    stdin: inner.stdin.take(),
                    stdout: inner.stdout.take(),
                    stderr: inner.stderr.take(),
                    inner: Some(inner),
                    call,
                }
            }

            fn running(&mut self) -> std::io::Result<&mut $($lib)::+::Child> {
                self.inner
                    .as_mut()
                    .ok_or_else(|| std::io::Error::other("the child was already waited for"))
            }
        }

        impl Drop for Child {
            fn drop(&mut self) {
                if let Some(call) = self.call.take() {
                    let span = call.unwaited_span();
                    call.call.completed_detached(span);
                }
            }
        }
    };
}

use super::words as redact;
pub mod sync;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

use serde_json::{Map, Value, json};

use crate::hooks::HookCall;
use crate::secrets::SensitiveNames;
use crate::wire::{FunctionCallSpan, HookSpan, SpanKind};

/// The span name and `function` of a governed command, as OpenBox's own agent hooks name it.
const FUNCTION: &str = "ShellExecution";
/// The `module` of a governed command's span.
const MODULE: &str = "openbox::process";
/// Longest captured text of one output stream, in characters (as for HTTP bodies).
const MAX_OUTPUT_CHARS: usize = 65_536;
/// Longest `args` text and `shell.command`, in characters.
const MAX_ARGS_CHARS: usize = 65_536;
/// Longest single argument reported, in characters.
const MAX_ARG_CHARS: usize = 16_384;
/// Most arguments reported; the rest are counted.
const MAX_ARGS: usize = 256;

/// What a command reports, read from the command as it is about to start.
struct Invocation {
    program: String,
    args: Vec<String>,
    cwd: Option<String>,
    env_set: Vec<String>,
    env_removed: Vec<String>,
    env_clear: bool,
}

impl Invocation {
    fn of(command: &std::process::Command, env_clear: bool) -> Self {
        let text = |s: &OsStr| s.to_string_lossy().into_owned();
        let (mut env_set, mut env_removed) = (Vec::new(), Vec::new());
        for (name, value) in command.get_envs() {
            match value {
                Some(_) => env_set.push(text(name)),
                None => env_removed.push(text(name)),
            }
        }
        env_set.sort();
        env_removed.sort();
        Invocation {
            program: text(command.get_program()),
            args: command.get_args().map(text).collect(),
            cwd: command.get_current_dir().map(|d| d.display().to_string()),
            env_set,
            env_removed,
            env_clear,
        }
    }
}

/// The program and its (masked) arguments as reported: each argument cut to
/// [`MAX_ARG_CHARS`], at most [`MAX_ARGS`] of them and then a count of the rest, so that a
/// long script or an `xargs`-sized list keeps the evaluation small. Masked before it is cut, so
/// that no cut leaves a secret unrecognised.
fn reported_argv(program: &str, masked: Vec<String>) -> Vec<String> {
    let total = masked.len();
    let cut = |a: String| {
        if a.len() > MAX_ARG_CHARS {
            crate::text::truncate(&a, MAX_ARG_CHARS, crate::text::Cut::Marked)
        } else {
            a
        }
    };
    let mut argv: Vec<String> = std::iter::once(program.to_owned())
        .chain(masked.into_iter().take(MAX_ARGS).map(cut))
        .collect();
    if total > MAX_ARGS {
        argv.push(format!("...[{} more arguments]", total - MAX_ARGS));
    }
    argv
}

/// One governed command: its hook call and how its outcome is reported.
pub(crate) struct ProcessCall {
    call: HookCall,
    names: SensitiveNames,
    report_output: bool,
    args_text: String,
}

impl ProcessCall {
    /// The call for `command`, or `None` outside a governed activity.
    fn begin(
        command: &std::process::Command,
        env_clear: bool,
        report_output: bool,
    ) -> Option<Self> {
        let call = HookCall::begin(FUNCTION, SpanKind::Internal, None)?;
        let names = call.scope.sensitive_names().clone();
        let inv = Invocation::of(command, env_clear);
        let argv = reported_argv(&inv.program, redact::args(&inv.args, &names));
        let mut attributes = Map::new();
        let command_line = redact::command_line(&argv[0], &argv[1..]);
        attributes.insert(
            "shell.command".into(),
            crate::text::truncate(&command_line, MAX_ARGS_CHARS, crate::text::Cut::Marked).into(),
        );
        if let Some(cwd) = &inv.cwd {
            attributes.insert("shell.cwd".into(), cwd.clone().into());
        }
        let executable = Path::new(&inv.program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| inv.program.clone());
        attributes.insert("process.executable.name".into(), executable.into());
        attributes.insert("process.command_args".into(), json!(argv));
        let args = json!({
            "args": argv,
            "kwargs": {
                "cwd": inv.cwd,
                "env": inv.env_set,
                "env_removed": inv.env_removed,
                "env_clear": inv.env_clear,
            },
        });
        let args_text = crate::text::truncate(
            &super::traced::python_json(&args),
            MAX_ARGS_CHARS,
            crate::text::Cut::Marked,
        );
        Some(ProcessCall {
            call: call.with_attributes(attributes),
            names,
            report_output,
            args_text,
        })
    }

    fn span(
        &self,
        args: Option<String>,
        result: Option<String>,
        error: Option<String>,
    ) -> HookSpan {
        HookSpan::FunctionCall(FunctionCallSpan {
            function: FUNCTION.to_owned(),
            module: MODULE.to_owned(),
            args,
            result,
            error,
        })
    }

    fn started_span(&self) -> HookSpan {
        self.span(Some(self.args_text.clone()), None, None)
    }

    /// The `completed` span of a command that ended with `status` (and wrote `output`, when it
    /// was collected), or could not start or be waited for (`Err`).
    fn completed_span(
        &self,
        outcome: Result<(ExitStatus, Option<&Output>), &std::io::Error>,
    ) -> HookSpan {
        match outcome {
            Err(e) => self.span(None, None, Some(e.to_string())),
            Ok((status, output)) => {
                let mut result = Map::new();
                result.insert("exit_code".into(), json!(status.code()));
                result.insert("success".into(), status.success().into());
                #[cfg(unix)]
                if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
                    result.insert("signal".into(), signal.into());
                }
                if let Some(output) = output.filter(|_| self.report_output) {
                    result.insert("stdout".into(), self.captured(&output.stdout).into());
                    result.insert("stderr".into(), self.captured(&output.stderr).into());
                }
                let error = (!status.success()).then(|| status.to_string());
                let text = super::traced::python_json(&Value::Object(result));
                self.span(None, Some(text), error)
            }
        }
    }

    /// The `completed` span of a child dropped before it was waited for.
    fn unwaited_span(&self) -> HookSpan {
        self.span(None, Some(r#"{"waited": false}"#.to_owned()), None)
    }

    /// An output stream as it may reach Core: cut, then masked (the marker states the whole
    /// stream's length).
    fn captured(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let Some((end, _)) = text.char_indices().nth(MAX_OUTPUT_CHARS) else {
            return redact::text(&text, &self.names);
        };
        format!(
            "{}...[truncated, {} total chars]",
            redact::text(&text[..end], &self.names),
            text.chars().count()
        )
    }
}

/// A command to run, governed: [`tokio::process::Command`] with the same builder methods, whose
/// `spawn`, `output` and `status` are evaluated by Core first.
#[derive(Debug)]
pub struct Command {
    inner: tokio::process::Command,
    env_clear: bool,
    report_output: bool,
}

impl Command {
    command_builder!(tokio::process::Command);

    /// Kills the child when its [`Child`] is dropped.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Self {
        self.inner.kill_on_drop(kill);
        self
    }

    /// The call, evaluated at `started`: `Err` when the command must not start.
    async fn started(&self) -> std::io::Result<Option<ProcessCall>> {
        let Some(call) =
            ProcessCall::begin(self.inner.as_std(), self.env_clear, self.report_output)
        else {
            return Ok(None);
        };
        call.call.started(call.started_span()).await?;
        Ok(Some(call))
    }

    /// Starts the command once Core allowed it. Its end is reported when the [`Child`] is
    /// waited for (or, without a verdict that can stop anything, when it is dropped).
    pub async fn spawn(&mut self) -> std::io::Result<Child> {
        let call = self.started().await?;
        match self.inner.spawn() {
            Ok(inner) => Ok(Child::new(inner, call)),
            Err(e) => Err(report_failure(call, e).await),
        }
    }

    /// Runs the command once Core allowed it and collects its output (stdout and stderr piped
    /// unless set otherwise), which `completed` reports.
    pub async fn output(&mut self) -> std::io::Result<Output> {
        let call = self.started().await?;
        finish(call, self.inner.output().await, |o| (o.status, Some(o))).await
    }

    /// Runs the command once Core allowed it (stdio inherited unless set otherwise) and waits
    /// for its exit status, which `completed` reports.
    pub async fn status(&mut self) -> std::io::Result<ExitStatus> {
        let call = self.started().await?;
        finish(call, self.inner.status().await, |s| (*s, None)).await
    }
}

/// Reports how a command ended; a BLOCK at `completed` is the caller's error.
async fn finish<T>(
    call: Option<ProcessCall>,
    ended: std::io::Result<T>,
    outcome: impl Fn(&T) -> (ExitStatus, Option<&Output>),
) -> std::io::Result<T> {
    let Some(call) = call else { return ended };
    match ended {
        Ok(value) => {
            let span = call.completed_span(Ok(outcome(&value)));
            call.call.completed(span).await?;
            Ok(value)
        }
        Err(e) => Err(report_failure(Some(call), e).await),
    }
}

/// Reports a command that could not start or be waited for; the error returned is Core's stop
/// when it gave one, else `e`.
async fn report_failure(call: Option<ProcessCall>, e: std::io::Error) -> std::io::Error {
    match call {
        Some(call) => match call.call.completed(call.completed_span(Err(&e))).await {
            Ok(()) => e,
            Err(stop) => stop.into(),
        },
        None => e,
    }
}

child_common!(tokio::process, "[`tokio::process::Child`]");

impl std::fmt::Debug for ProcessCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessCall")
            .field("call", &self.call)
            .finish()
    }
}

impl Child {
    /// The OS process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.inner.as_ref().and_then(tokio::process::Child::id)
    }

    /// Asks the OS to kill the child (its end is reported when it is waited for).
    pub fn start_kill(&mut self) -> std::io::Result<()> {
        self.running()?.start_kill()
    }

    /// Kills the child and waits for it; its end is reported.
    pub async fn kill(&mut self) -> std::io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Waits for the child to exit (closing its stdin first, as tokio does) and reports its
    /// exit status: a BLOCK at `completed` is this call's error.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        drop(self.stdin.take());
        let status = self.running()?.wait().await;
        finish(self.call.take(), status, |s| (*s, None)).await
    }

    /// Collects the child's piped stdout and stderr (those the caller has not taken), waits for
    /// it, and reports its exit status and output.
    pub async fn wait_with_output(mut self) -> std::io::Result<Output> {
        let Some(mut inner) = self.inner.take() else {
            return Err(std::io::Error::other("the child was already waited for"));
        };
        inner.stdin = self.stdin.take();
        inner.stdout = self.stdout.take();
        inner.stderr = self.stderr.take();
        let output = inner.wait_with_output().await;
        finish(self.call.take(), output, |o| (o.status, Some(o))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_argument_lists_are_bounded() {
        let many: Vec<String> = (0..MAX_ARGS + 5).map(|i| i.to_string()).collect();
        let argv = reported_argv("xargs", many);
        assert_eq!(argv.len(), 1 + MAX_ARGS + 1);
        assert_eq!(argv[0], "xargs");
        assert_eq!(argv.last().unwrap(), "...[5 more arguments]");
        let long = reported_argv("sh", vec!["x".repeat(MAX_ARG_CHARS + 1)]);
        assert_eq!(
            long[1],
            format!("{}...[truncated]", "x".repeat(MAX_ARG_CHARS))
        );
        assert_eq!(reported_argv("true", vec![]), ["true"]);
    }
}
