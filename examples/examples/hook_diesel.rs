//! diesel hook: `GovernedConnection<PgConnection>` is a diesel connection whose every statement
//! — query builder and `sql_query` — is evaluated first, with diesel's SQL (placeholders, never
//! the bound values). diesel blocks, so that activity is a sync one, annotated with
//! `#[openbox::governed_activity]`. diesel-async's `AsyncPgConnection` is wrapped the same way
//! (`GovernedAsyncConnection`) in an async activity. Here a rule blocks every `DELETE`: the
//! notes survive it.
//!
//! `cargo run -p openbox-examples --example hook_diesel` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and PostgreSQL at 127.0.0.1:5432, database `test`).

use std::time::Duration;

use diesel::prelude::*;
use openbox::hooks::db::diesel::GovernedConnection;
use openbox_examples::Example;
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult};

const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

const RULES: &str = r#"
[[rules]]
name = "no deletes"
verdict = "block"
reason = "agents do not delete notes"
match = { "spans.0.stage" = "started", "spans.0.db_operation" = "DELETE" }
"#;

diesel::table! {
    openbox_example_notes (id) {
        id -> Integer,
        body -> Text,
    }
}

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// `add:<body>` stores a note; `clear` deletes every note. Returns the rows changed.
    #[activity(name = "diesel_notes")]
    #[openbox::governed_activity]
    pub fn step(_ctx: ActivityContext, action: String) -> Result<String, ActivityError> {
        use openbox_example_notes::dsl;
        let mut db = GovernedConnection::<PgConnection>::establish(DATABASE_URL)
            .map_err(anyhow::Error::from)?;
        let changed = match action.strip_prefix("add:") {
            Some(body) => diesel::insert_into(dsl::openbox_example_notes)
                .values(dsl::body.eq(body))
                .execute(&mut db),
            None => diesel::delete(dsl::openbox_example_notes).execute(&mut db),
        };
        Ok(format!("{} row(s)", changed.map_err(anyhow::Error::from)?))
    }

    /// The same through diesel-async, in an async body.
    #[activity(name = "diesel_async_notes")]
    pub async fn async_step(
        _ctx: ActivityContext,
        action: String,
    ) -> Result<String, ActivityError> {
        Ok(format!("{} row(s)", governed_async::change(&action).await?))
    }
}

/// diesel-async's `RunQueryDsl`, apart from diesel's blocking one in the prelude.
mod governed_async {
    use diesel::ExpressionMethods;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    use openbox::hooks::db::diesel_async::GovernedAsyncConnection;

    use super::{DATABASE_URL, openbox_example_notes::dsl};

    /// `add:<body>` stores a note; anything else deletes every note.
    pub async fn change(action: &str) -> anyhow::Result<usize> {
        let mut db = GovernedAsyncConnection::<AsyncPgConnection>::establish(DATABASE_URL).await?;
        Ok(match action.strip_prefix("add:") {
            Some(body) => {
                diesel::insert_into(dsl::openbox_example_notes)
                    .values(dsl::body.eq(body))
                    .execute(&mut db)
                    .await?
            }
            None => {
                diesel::delete(dsl::openbox_example_notes)
                    .execute(&mut db)
                    .await?
            }
        })
    }
}

#[workflow]
#[derive(Default)]
pub struct DieselExample;

#[workflow_methods]
impl DieselExample {
    #[run(name = "DieselExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        actions: Vec<String>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for action in actions {
            let sync = ctx.execute_activity(Acts::step, action.clone(), opts.clone());
            results.push(match sync.await {
                Ok(out) => out,
                Err(e) => format!("stopped: {e}"),
            });
            let governed_async = ctx.execute_activity(Acts::async_step, action, opts.clone());
            results.push(match governed_async.await {
                Ok(out) => out,
                Err(e) => format!("stopped: {e}"),
            });
        }
        Ok(results)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let ex = Example::start("hook_diesel", RULES).await?;
    // A fresh table, made and dropped with a plain connection (not governed).
    let mut plain = PgConnection::establish(DATABASE_URL)?;
    diesel::sql_query("DROP TABLE IF EXISTS openbox_example_notes").execute(&mut plain)?;
    diesel::sql_query(
        "CREATE TABLE openbox_example_notes (id serial PRIMARY KEY, body text NOT NULL)",
    )
    .execute(&mut plain)?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<DieselExample>()?
        .build();
    let actions = vec!["add:secret-note-body".to_owned(), "clear".to_owned()];
    let outcome = ex.run_workflow(options, DieselExample::run, actions).await;
    let left: i64 = {
        use openbox_example_notes::dsl;
        dsl::openbox_example_notes.count().get_result(&mut plain)?
    };
    diesel::sql_query("DROP TABLE openbox_example_notes").execute(&mut plain)?;
    let results = outcome?;
    println!("results: {results:?}; {left} note(s) left");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(
        results[..2] == ["1 row(s)", "1 row(s)"],
        "the notes were stored"
    );
    anyhow::ensure!(
        results[2..].iter().all(|r| r.starts_with("stopped")),
        "the DELETEs were blocked"
    );
    anyhow::ensure!(left == 2, "the database never saw a DELETE");
    anyhow::ensure!(
        hooks.len() == 6,
        "each insert at both stages, each delete at started"
    );
    anyhow::ensure!(
        !hooks
            .iter()
            .any(|e| e.body["spans"].to_string().contains("secret-note-body")),
        "a bound value reached Core in a span (the activity's input is reported, by design)"
    );
    Ok(())
}
