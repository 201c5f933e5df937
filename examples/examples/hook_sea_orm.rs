//! SeaORM hook: `GovernedConnection` goes wherever SeaORM takes a connection — entity inserts,
//! `delete_many`, transactions — and every statement SeaORM sends through it is evaluated first,
//! with SeaORM's SQL (placeholders, never the bound values). Here a rule blocks every `DELETE`:
//! the note survives it.
//!
//! `cargo run -p openbox-examples --example hook_sea_orm` (starts a Temporal dev server unless
//! `TEMPORAL_ADDRESS` is set, and PostgreSQL at 127.0.0.1:5432, database `test`).

use std::time::Duration;

use openbox::hooks::db::sea_orm::GovernedConnection;
use openbox_examples::Example;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, TransactionTrait};
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

mod note {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "openbox_example_sea_notes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub struct Acts;

#[openbox::governed_activities]
#[activities]
impl Acts {
    /// `add:<body>` stores a note (in a transaction); `clear` deletes every note. Returns the
    /// rows changed.
    #[activity(name = "sea_orm_notes")]
    pub async fn step(_ctx: ActivityContext, action: String) -> Result<String, ActivityError> {
        let db = GovernedConnection::connect(DATABASE_URL)
            .await
            .map_err(anyhow::Error::from)?;
        let changed = match action.strip_prefix("add:") {
            Some(body) => {
                let body = body.to_owned();
                db.transaction::<_, u64, DbErr>(|txn| {
                    Box::pin(async move {
                        note::ActiveModel {
                            body: Set(body),
                            ..Default::default()
                        }
                        .insert(txn)
                        .await?;
                        Ok(1)
                    })
                })
                .await
                .map_err(anyhow::Error::from)?
            }
            None => {
                note::Entity::delete_many()
                    .exec(&db)
                    .await
                    .map_err(anyhow::Error::from)?
                    .rows_affected
            }
        };
        Ok(format!("{changed} row(s)"))
    }
}

#[workflow]
#[derive(Default)]
pub struct SeaOrmExample;

#[workflow_methods]
impl SeaOrmExample {
    #[run(name = "SeaOrmExample")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        actions: Vec<String>,
    ) -> WorkflowResult<Vec<String>> {
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build();
        let mut results = Vec::new();
        for action in actions {
            results.push(
                match ctx.execute_activity(Acts::step, action, opts.clone()).await {
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
    let ex = Example::start("hook_sea_orm", RULES).await?;
    // A fresh table, made and dropped with a plain connection (not governed).
    let plain = Database::connect(DATABASE_URL).await?;
    plain
        .execute_unprepared(
            "DROP TABLE IF EXISTS openbox_example_sea_notes; \
             CREATE TABLE openbox_example_sea_notes (id serial PRIMARY KEY, body text NOT NULL)",
        )
        .await?;
    let options = WorkerOptions::new(&ex.task_queue)
        .worker_plugin(ex.plugin().await?)
        .register_activities(Acts)
        .register_workflow::<SeaOrmExample>()?
        .build();
    let actions = vec!["add:secret-note-body".to_owned(), "clear".to_owned()];
    let outcome = ex.run_workflow(options, SeaOrmExample::run, actions).await;
    let left = note::Entity::find().count(&plain).await?;
    plain
        .execute_unprepared("DROP TABLE openbox_example_sea_notes")
        .await?;
    let results = outcome?;
    println!("results: {results:?}; {left} note(s) left");
    let hooks = ex.print_hooks().await?;
    anyhow::ensure!(results[0] == "1 row(s)", "the note was stored");
    anyhow::ensure!(results[1].starts_with("stopped"), "the DELETE was blocked");
    anyhow::ensure!(left == 1, "the database never saw the DELETE");
    anyhow::ensure!(
        hooks.len() == 3,
        "the insert at both stages, the delete at started"
    );
    anyhow::ensure!(
        !hooks
            .iter()
            .any(|e| e.body["spans"].to_string().contains("secret-note-body")),
        "a bound value reached Core in a span (the activity's input is reported, by design)"
    );
    Ok(())
}
