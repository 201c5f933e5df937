//! [`Command`] for sync activity bodies, mirroring `std::process::Command`: the evaluations
//! block the calling thread (a sync body runs on a blocking thread). Governed when the activity
//! is `#[governed_activity]`, as for the other sync wrappers.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

use super::ProcessCall;

/// A command to run, governed: [`std::process::Command`] with the same builder methods, whose
/// `spawn`, `output` and `status` are evaluated by Core first.
#[derive(Debug)]
pub struct Command {
    inner: std::process::Command,
    env_clear: bool,
    report_output: bool,
}

impl Command {
    command_builder!(std::process::Command);

    fn started(&self) -> std::io::Result<Option<ProcessCall>> {
        let Some(call) = ProcessCall::begin(&self.inner, self.env_clear, self.report_output) else {
            return Ok(None);
        };
        call.call.started_blocking(call.started_span())?;
        Ok(Some(call))
    }

    /// Starts the command once Core allowed it; its end is reported when the [`Child`] is
    /// waited for.
    pub fn spawn(&mut self) -> std::io::Result<Child> {
        let call = self.started()?;
        match self.inner.spawn() {
            Ok(inner) => Ok(Child::new(inner, call)),
            Err(e) => Err(report_failure(call, e)),
        }
    }

    /// Runs the command once Core allowed it and collects its output, which `completed`
    /// reports.
    pub fn output(&mut self) -> std::io::Result<Output> {
        let call = self.started()?;
        finish(call, self.inner.output(), |o| (o.status, Some(o)))
    }

    /// Runs the command once Core allowed it and waits for its exit status.
    pub fn status(&mut self) -> std::io::Result<ExitStatus> {
        let call = self.started()?;
        finish(call, self.inner.status(), |s| (*s, None))
    }
}

/// Reports how a command ended; a BLOCK at `completed` is the caller's error.
fn finish<T>(
    call: Option<ProcessCall>,
    ended: std::io::Result<T>,
    outcome: impl Fn(&T) -> (ExitStatus, Option<&Output>),
) -> std::io::Result<T> {
    let Some(call) = call else { return ended };
    match ended {
        Ok(value) => {
            call.call
                .completed_blocking(call.completed_span(Ok(outcome(&value))))?;
            Ok(value)
        }
        Err(e) => Err(report_failure(Some(call), e)),
    }
}

fn report_failure(call: Option<ProcessCall>, e: std::io::Error) -> std::io::Error {
    match call {
        Some(call) => match call.call.completed_blocking(call.completed_span(Err(&e))) {
            Ok(()) => e,
            Err(stop) => stop.into(),
        },
        None => e,
    }
}

child_common!(std::process, "[`std::process::Child`]");

impl Child {
    /// The OS process id.
    pub fn id(&self) -> Option<u32> {
        self.inner.as_ref().map(std::process::Child::id)
    }

    /// Kills the child (its end is reported when it is waited for).
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.running()?.kill()
    }

    /// Waits for the child to exit (closing its stdin first, as std does) and reports its exit
    /// status: a BLOCK at `completed` is this call's error.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        drop(self.stdin.take());
        let status = self.running()?.wait();
        finish(self.call.take(), status, |s| (*s, None))
    }

    /// Collects the child's piped stdout and stderr (those the caller has not taken), waits for
    /// it, and reports its exit status and output.
    pub fn wait_with_output(mut self) -> std::io::Result<Output> {
        let Some(mut inner) = self.inner.take() else {
            return Err(std::io::Error::other("the child was already waited for"));
        };
        inner.stdin = self.stdin.take();
        inner.stdout = self.stdout.take();
        inner.stderr = self.stderr.take();
        finish(self.call.take(), inner.wait_with_output(), |o| {
            (o.status, Some(o))
        })
    }
}
