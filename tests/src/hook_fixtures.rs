//! Activities that exercise every hook wrapper, and a workflow that runs them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use openbox::hooks::db::DbTarget;
use openbox::hooks::db::postgres::GovernedClient;
use openbox::hooks::db::redis::GovernedRedis;
use openbox::hooks::db::sqlite::GovernedConnection;
use openbox::hooks::db::sqlx::GovernedPool;
use openbox::hooks::http::OpenBoxMiddleware;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

use crate::services::{MYSQL_URL, POSTGRES_URL, REDIS_URL};

/// The credential the test client sends: it must never appear in an event.
pub const CLIENT_AUTHORIZATION: &str = "Bearer user-secret-token-4242";
/// The cookie the test client sends: it must never appear in an event.
pub const CLIENT_COOKIE: &str = "session=user-cookie-7777";
/// The value the database steps bind as a statement parameter (not an activity input, so it
/// can only reach Core through a hook): it must never appear in an event.
pub const BOUND_SECRET: &str = "bound-parameter-value-31337";
/// What the file steps write (not an activity input): it must never appear in a hook.
pub const FILE_CONTENT: &str = "file-content-never-sent-9999";
/// An argument value the process steps pass as `--api-key=…`: it must never appear in a hook.
pub const PROCESS_ARG_SECRET: &str = "process-arg-secret-5150";
/// An environment value the process steps set: it must never appear in a hook.
pub const PROCESS_ENV_SECRET: &str = "process-env-secret-8086";
/// The bearer token the MCP steps send: it must never appear in a hook.
pub const MCP_TOKEN: &str = "mcp-bearer-token-1357";
/// The credential the gRPC steps send as metadata: it must never appear in a hook.
pub const GRPC_SECRET: &str = "grpc-metadata-secret-6060";

/// One operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HookStep {
    /// A GET through the middleware, then — only if it returned a response (`?` on its error) —
    /// a GET with a plain, ungoverned client. The result is both statuses.
    HttpThen {
        /// The first URL.
        first: String,
        /// The second URL.
        second: String,
    },
    /// A GET through the middleware whose body is read chunk by chunk: `chunks` of them at
    /// most, then the response is dropped. With `max_heap_growth`, the live heap is checked after
    /// every chunk and the result ends with the largest growth seen, in MiB.
    HttpChunks {
        /// The URL.
        url: String,
        /// Chunks read at most (`u32::MAX`: to the end).
        chunks: u32,
        /// Whether to measure the heap (the test binary must count it).
        measure_heap: bool,
    },
    /// An HTTP request through the middleware.
    Http {
        method: String,
        url: String,
        body: Option<String>,
    },
    /// sqlx on PostgreSQL: insert `note` into `table`.
    SqlxPostgres { table: String },
    /// sqlx on MariaDB.
    SqlxMysql { table: String },
    /// sqlx on SQLite.
    SqlxSqlite { file: String, table: String },
    /// tokio-postgres.
    TokioPostgres { table: String },
    /// rusqlite.
    Rusqlite { file: String, table: String },
    /// redis SET.
    Redis { key: String },
    /// diesel: `sql_query` inserting `BOUND_SECRET` into `table`, then a write and a read
    /// through the query builder (see [`crate::orm::diesel::insert`]); in a sync body when the plan
    /// says so.
    Diesel {
        db: crate::orm::OrmDb,
        table: String,
    },
    /// diesel-async on PostgreSQL: `sql_query` inserting `BOUND_SECRET` into `table`, then a
    /// write and a read through the query builder in a transaction (see
    /// [`crate::orm::diesel_async::insert`]).
    DieselAsync { table: String },
    /// SeaORM: a raw statement inserting `BOUND_SECRET` into `table`, then an entity insert and
    /// count in a transaction (see [`crate::orm::sea::insert`]).
    SeaOrm {
        db: crate::orm::OrmDb,
        table: String,
    },
    /// Write a file (async).
    WriteFile { path: String },
    /// Read a file (async).
    ReadFile { path: String },
    /// Write a file (sync API).
    WriteFileSync { path: String },
    /// A command through `openbox::process` (async): `output()` when `collect` (the result is
    /// `exit <code> <stdout>`), else `status()` (`exit <code>`). With `secrets`,
    /// `--api-key=PROCESS_ARG_SECRET` is appended and `OBX_PROCESS_TOKEN` is set to
    /// `PROCESS_ENV_SECRET`.
    Process {
        program: String,
        args: Vec<String>,
        collect: bool,
        secrets: bool,
    },
    /// A command through `openbox::process` started with `spawn()`, stdout piped and read by
    /// the step itself, then `wait()` (`exit <code> <stdout>`), or, without `wait`, the child
    /// dropped (`dropped <stdout>`).
    ProcessSpawn {
        program: String,
        args: Vec<String>,
        wait: bool,
    },
    /// A gRPC call through a tonic channel wrapped in the OpenBox tower layer (see
    /// [`crate::grpc::call`]), its metadata carrying `GRPC_SECRET`.
    Grpc {
        url: String,
        method: String,
        text: String,
    },
    /// An HTTP request through hyper-util's client wrapped in the OpenBox tower layer, with
    /// `authorization: CLIENT_AUTHORIZATION` and, with a body, `content-type: application/json`.
    /// The result is the status and the body.
    Hyper {
        method: String,
        url: String,
        body: Option<String>,
    },
    /// A tool call through rmcp's client on a governed transport (see [`crate::mcp::call`]),
    /// with `MCP_TOKEN` as its bearer token.
    Mcp {
        url: String,
        tool: String,
        arguments: String,
    },
    /// A governed MCP client built and kept by one step, used by the next (another activity):
    /// see [`crate::mcp::keep_or_use`].
    McpKept { url: String },
    /// A chat completion of `prompt` through rig's OpenAI client on the governed client (see
    /// [`crate::llm::rig_completion`]).
    Rig {
        base: String,
        prompt: String,
        stream: bool,
    },
    /// A chat completion of `prompt` through async-openai on the governed service (see
    /// [`crate::llm::openai_completion`]).
    OpenAi {
        base: String,
        prompt: String,
        stream: bool,
    },
    /// A message published through the governed wrapper of a broker (see
    /// [`crate::brokers::publish`]), carrying `MESSAGE_SECRET` in a header and its payload.
    Publish {
        broker: crate::brokers::Broker,
        destination: String,
    },
    /// A command through `openbox::process::sync`, `output()`.
    ProcessSync { program: String, args: Vec<String> },
    /// A `#[traced]` async function returning `Result`.
    Traced { text: String },
    /// A `#[traced]` sync function not returning `Result`.
    TracedSync { x: i64 },
    /// An HTTP request through the middleware, with the client and headers chosen; the
    /// result is the status and, if `show_body`, the response body.
    Request {
        method: String,
        url: String,
        client: ClientKind,
        headers: Vec<(String, String)>,
        body: Option<String>,
        show_body: bool,
    },
    /// sqlx on PostgreSQL: `sql` through `execute`, with `BOUND_SECRET` bound to `$1`; a
    /// driver error is the result `driver error <SQLSTATE>` (its text may hold the value).
    SqlxExecute { sql: String },
    /// tokio-postgres: as [`HookStep::SqlxExecute`].
    TokioPostgresExecute { sql: String },
    /// A raw redis command (`args[0]` is the command), through the governed connection.
    RedisCommand { args: Vec<String> },
    /// SQL text through one governed wrapper: as a batch (`sqlx::raw_sql`, `batch_execute`,
    /// `execute_batch`), or as one statement (`sqlx::query`, `execute`) without parameters.
    /// The result is `ok`, or `driver error <code or message>`.
    Sql {
        /// The wrapper.
        via: SqlVia,
        /// The text.
        sql: String,
        /// Sent as a batch.
        batch: bool,
    },
}

/// A governed SQL wrapper and the database behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlVia {
    /// sqlx on the machine's PostgreSQL.
    SqlxPostgres,
    /// sqlx on the machine's MariaDB.
    SqlxMysql,
    /// sqlx on a SQLite file.
    SqlxSqlite { file: String },
    /// tokio-postgres on the machine's PostgreSQL.
    TokioPostgres,
    /// rusqlite on a SQLite file.
    Rusqlite { file: String },
    /// diesel on a governed connection.
    Diesel { db: crate::orm::OrmDb },
    /// diesel-async on a governed connection to the machine's PostgreSQL.
    DieselAsync,
    /// SeaORM on a governed connection.
    SeaOrm { db: crate::orm::OrmDb },
}

/// Governed sqlx pools of one connection on the machine's servers.
async fn postgres_pool() -> sqlx::Result<GovernedPool<sqlx::Postgres>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(POSTGRES_URL)
        .await?;
    Ok(GovernedPool::postgres(pool))
}

async fn mysql_pool() -> sqlx::Result<GovernedPool<sqlx::MySql>> {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(MYSQL_URL)
        .await?;
    Ok(GovernedPool::mysql(pool))
}

async fn sqlite_pool(file: &str) -> sqlx::Result<GovernedPool<sqlx::Sqlite>> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{file}"))
        .await?;
    Ok(GovernedPool::sqlite(pool))
}

/// A governed tokio-postgres client on the machine's PostgreSQL, and its connection's task
/// (abort it when done).
async fn tokio_postgres_client() -> Result<
    (
        GovernedClient,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ),
    tokio_postgres::Error,
> {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await?;
    let conn_task = tokio::spawn(connection);
    Ok((
        GovernedClient::new(client, "test", "127.0.0.1", 5432),
        conn_task,
    ))
}

/// Runs `sql` through the wrapper `via` (see [`HookStep::Sql`]).
async fn run_sql(via: SqlVia, sql: String, batch: bool) -> anyhow::Result<String> {
    fn driver(e: impl std::fmt::Display) -> String {
        format!("driver error {e}")
    }
    async fn sqlx_run<DB>(
        db: &GovernedPool<DB>,
        sql: String,
        batch: bool,
    ) -> Result<(), sqlx::Error>
    where
        DB: sqlx::Database,
        for<'a> &'a sqlx::Pool<DB>: sqlx::Executor<'a, Database = DB>,
        DB::QueryResult: openbox::hooks::db::sqlx::RowsAffected,
        for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    {
        if batch {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(db).await?;
        } else {
            sqlx::query(AssertSqlSafe(sql)).execute(db).await?;
        }
        Ok(())
    }
    let outcome = match via {
        SqlVia::SqlxPostgres => sqlx_run(&postgres_pool().await?, sql, batch).await,
        SqlVia::SqlxMysql => sqlx_run(&mysql_pool().await?, sql, batch).await,
        SqlVia::SqlxSqlite { file } => sqlx_run(&sqlite_pool(&file).await?, sql, batch).await,
        SqlVia::TokioPostgres => {
            let (db, conn_task) = tokio_postgres_client().await?;
            let result = if batch {
                db.batch_execute(&sql).await
            } else {
                db.execute(&sql, &[]).await.map(drop)
            };
            drop(db);
            conn_task.abort();
            return Ok(match result {
                Ok(()) => "ok".into(),
                Err(openbox::hooks::db::DbError::Driver(e)) => driver(e),
                Err(e) => return Err(e.into()),
            });
        }
        SqlVia::Diesel { db } => {
            return Ok(match crate::orm::diesel::run(&db, &sql, batch)? {
                Ok(()) => "ok".into(),
                Err(e) => driver(e),
            });
        }
        SqlVia::DieselAsync => {
            return Ok(match crate::orm::diesel_async::run(&sql, batch).await? {
                Ok(()) => "ok".into(),
                Err(e) => driver(e),
            });
        }
        SqlVia::SeaOrm { db } => {
            return Ok(match crate::orm::sea::run(&db, &sql, batch).await? {
                Ok(()) => "ok".into(),
                Err(e) => driver(e),
            });
        }
        SqlVia::Rusqlite { file } => {
            let db = GovernedConnection::open(&file)?;
            let result = if batch {
                db.execute_batch(&sql)
            } else {
                db.execute(&sql, []).map(drop)
            };
            return Ok(match result {
                Ok(()) => "ok".into(),
                Err(openbox::hooks::db::DbError::Driver(e)) => driver(e),
                Err(e) => return Err(e.into()),
            });
        }
    };
    Ok(match outcome {
        Ok(()) => "ok".into(),
        Err(sqlx::Error::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(e.into());
        }
        Err(e) => driver(e),
    })
}

/// Which client an HTTP step uses (always wrapped with the OpenBox middleware).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientKind {
    /// `reqwest::Client::new()`: reqwest follows redirects itself.
    Following,
    /// Redirects left to the middleware (`Policy::none()`); sent with `client.request(..)`.
    Manual,
    /// As `Manual`, but the request is built as a `reqwest::Request` and sent with `execute`.
    Execute,
}

impl HookStep {
    /// An async-body HTTP step: `method` to `base` + `path`, with `body` if given.
    pub fn http(base: &str, method: &str, path: &str, body: Option<&str>) -> (bool, HookStep) {
        (
            false,
            HookStep::Http {
                method: method.into(),
                url: format!("{base}{path}"),
                body: body.map(str::to_owned),
            },
        )
    }
}

static TRACED_RUNS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn traced_ran(key: &str) {
    *TRACED_RUNS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(key.to_owned())
        .or_default() += 1;
}

/// How many times the body of a traced function ran with this argument.
pub fn traced_runs(key: &str) -> usize {
    TRACED_RUNS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(key).copied())
        .unwrap_or(0)
}

/// A traced async function.
#[openbox::traced(name = "score_text", max_arg_length = 200)]
pub async fn score_text(text: &str, weight: u32) -> Result<u32, anyhow::Error> {
    traced_ran(text);
    Ok(text.len() as u32 * weight)
}

/// A traced sync function that cannot return an error.
#[openbox::traced]
pub fn double(x: i64) -> i64 {
    traced_ran(&format!("double:{x}"));
    x * 2
}

/// One request through hyper-util's client under the OpenBox tower layer.
async fn hyper_request(method: &str, url: &str, body: Option<String>) -> anyhow::Result<String> {
    use http_body_util::{BodyExt, Full};
    use tower_layer::Layer;
    use tower_service::Service;

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let mut service = openbox::hooks::http::tower::OpenBoxLayer::default().layer(client);
    let mut request = tonic::codegen::http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", CLIENT_AUTHORIZATION);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
    futures::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let response = service
        .call(request)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let status = response.status().as_u16();
    let text = response
        .into_body()
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .to_bytes();
    Ok(format!("{status} {}", String::from_utf8_lossy(&text)))
}

async fn run_step(step: HookStep) -> anyhow::Result<String> {
    Ok(match step {
        HookStep::HttpThen { first, second } => {
            let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(OpenBoxMiddleware::default())
                .build();
            let a = client.get(&first).send().await?.status().as_u16();
            let b = reqwest::get(&second).await?.status().as_u16();
            format!("{a} then {b}")
        }
        HookStep::HttpChunks {
            url,
            chunks,
            measure_heap,
        } => {
            let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(OpenBoxMiddleware::default())
                .build();
            let before = openbox_heap_counter::live_bytes();
            let mut resp = client.get(&url).send().await?;
            let status = resp.status().as_u16();
            let (mut kept, mut total, mut read, mut peak) = (Vec::new(), 0u64, 0u32, 0i64);
            while read < chunks {
                let Some(chunk) = resp.chunk().await? else {
                    break;
                };
                read += 1;
                total += chunk.len() as u64;
                if kept.len() < 4096 {
                    kept.extend_from_slice(&chunk[..chunk.len().min(4096 - kept.len())]);
                }
                if measure_heap {
                    peak = peak.max(openbox_heap_counter::live_bytes() - before);
                }
            }
            drop(resp);
            let mut out = format!("{status} {total} bytes: {}", String::from_utf8_lossy(&kept));
            if measure_heap {
                out = format!("{out} | heap growth {} MiB", peak >> 20);
            }
            out
        }
        HookStep::Http { method, url, body } => {
            let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(OpenBoxMiddleware::default())
                .build();
            let mut req = client
                .request(method.parse()?, &url)
                .header("authorization", CLIENT_AUTHORIZATION)
                .header("cookie", CLIENT_COOKIE);
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(b);
            }
            let resp = req.send().await?;
            format!("{} {}", resp.status().as_u16(), resp.text().await?)
        }
        HookStep::SqlxPostgres { table } => {
            let db = postgres_pool().await?;
            let sql = format!("INSERT INTO {table} (note) VALUES ($1)");
            let r = sqlx::query(AssertSqlSafe(sql))
                .bind(BOUND_SECRET)
                .execute(&db)
                .await?;
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&db)
                .await?;
            format!("inserted {} of {n}", r.rows_affected())
        }
        HookStep::SqlxMysql { table } => {
            let db = mysql_pool().await?;
            let sql = format!("INSERT INTO {table} (note) VALUES (?)");
            let r = sqlx::query(AssertSqlSafe(sql))
                .bind(BOUND_SECRET)
                .execute(&db)
                .await?;
            format!("inserted {}", r.rows_affected())
        }
        HookStep::SqlxSqlite { file, table } => {
            let db = sqlite_pool(&file).await?;
            let mut tx = db.pool().begin().await?;
            let sql = format!("INSERT INTO {table} (note) VALUES (?)");
            let r = sqlx::query(AssertSqlSafe(sql))
                .bind(BOUND_SECRET)
                .execute(db.with(&mut *tx))
                .await?;
            tx.commit().await?;
            format!("inserted {}", r.rows_affected())
        }
        HookStep::TokioPostgres { table } => {
            let (db, conn_task) = tokio_postgres_client().await?;
            let n = db
                .execute(
                    &format!("INSERT INTO {table} (note) VALUES ($1)"),
                    &[&BOUND_SECRET],
                )
                .await?;
            drop(db);
            conn_task.abort();
            format!("inserted {n}")
        }
        HookStep::Rusqlite { file, table } => {
            let db = GovernedConnection::open(&file)?;
            let n = db.execute(
                &format!("INSERT INTO {table} (note) VALUES (?1)"),
                [BOUND_SECRET],
            )?;
            format!("inserted {n}")
        }
        HookStep::Redis { key } => {
            let conn = redis::Client::open(REDIS_URL)?
                .get_multiplexed_async_connection()
                .await?;
            let mut db = GovernedRedis::new(conn, "127.0.0.1", 6379);
            let _: () = db.set(&key, BOUND_SECRET).await?;
            let back: Option<String> = db.get(&key).await?;
            format!("stored {}", back.is_some())
        }
        HookStep::WriteFile { path } => {
            openbox::fs::write(&path, FILE_CONTENT.as_bytes()).await?;
            "written".to_owned()
        }
        HookStep::ReadFile { path } => openbox::fs::read_to_string(&path).await?,
        HookStep::WriteFileSync { path } => {
            openbox::fs::sync::write(&path, FILE_CONTENT.as_bytes())?;
            "written".to_owned()
        }
        HookStep::Process {
            program,
            args,
            collect,
            secrets,
        } => {
            let mut command = openbox::process::Command::new(program);
            command.args(args);
            if secrets {
                command
                    .arg(format!("--api-key={PROCESS_ARG_SECRET}"))
                    .env("OBX_PROCESS_TOKEN", PROCESS_ENV_SECRET);
            }
            if collect {
                let out = command.output().await?;
                let code = out.status.code().unwrap_or(-1);
                format!("exit {code} {}", String::from_utf8_lossy(&out.stdout))
            } else {
                let status = command.status().await?;
                format!("exit {}", status.code().unwrap_or(-1))
            }
        }
        HookStep::Grpc { url, method, text } => {
            crate::grpc::call(&url, &method, &text, GRPC_SECRET).await?
        }
        HookStep::Mcp {
            url,
            tool,
            arguments,
        } => crate::mcp::call(&url, MCP_TOKEN, &tool, &arguments).await?,
        HookStep::Publish {
            broker,
            destination,
        } => crate::brokers::publish(&broker, &destination).await?,
        HookStep::Rig {
            base,
            prompt,
            stream,
        } => crate::llm::rig_completion(&base, &prompt, stream).await?,
        HookStep::OpenAi {
            base,
            prompt,
            stream,
        } => crate::llm::openai_completion(&base, &prompt, stream).await?,
        HookStep::McpKept { url } => crate::mcp::keep_or_use(&url, MCP_TOKEN).await?,
        HookStep::Hyper { method, url, body } => hyper_request(&method, &url, body).await?,
        HookStep::ProcessSpawn {
            program,
            args,
            wait,
        } => {
            use tokio::io::AsyncReadExt;
            let mut child = openbox::process::Command::new(program)
                .args(args)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .await?;
            let mut text = String::new();
            if let Some(mut out) = child.stdout.take() {
                out.read_to_string(&mut text).await?;
            }
            if !wait {
                drop(child);
                return Ok(format!("dropped {text}"));
            }
            let status = child.wait().await?;
            format!("exit {} {text}", status.code().unwrap_or(-1))
        }
        HookStep::ProcessSync { .. } => anyhow::bail!("a sync step: run it in a sync body"),
        HookStep::Traced { text } => score_text(&text, 3).await?.to_string(),
        HookStep::TracedSync { x } => double(x).to_string(),
        HookStep::Request {
            method,
            url,
            client,
            headers,
            body,
            show_body,
        } => {
            let inner = match client {
                ClientKind::Following => reqwest::Client::new(),
                ClientKind::Manual | ClientKind::Execute => reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
            };
            let http = reqwest_middleware::ClientBuilder::new(inner)
                .with(OpenBoxMiddleware::default())
                .build();
            let resp = if client == ClientKind::Execute {
                let mut req = reqwest::Request::new(method.parse()?, reqwest::Url::parse(&url)?);
                for (k, v) in &headers {
                    req.headers_mut().insert(
                        reqwest::header::HeaderName::from_bytes(k.as_bytes())?,
                        v.parse()?,
                    );
                }
                *req.body_mut() = body.map(Into::into);
                http.execute(req).await?
            } else {
                let mut req = http.request(method.parse()?, &url);
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                if let Some(b) = body {
                    req = req.body(b);
                }
                req.send().await?
            };
            let status = resp.status().as_u16();
            let text = resp.text().await?;
            if show_body {
                format!("{status} {text}")
            } else {
                status.to_string()
            }
        }
        HookStep::SqlxExecute { sql } => {
            let db = postgres_pool().await?;
            match sqlx::query(AssertSqlSafe(sql))
                .bind(BOUND_SECRET)
                .execute(&db)
                .await
            {
                Ok(r) => format!("affected {}", r.rows_affected()),
                Err(sqlx::Error::Database(e)) => {
                    format!("driver error {}", e.code().unwrap_or_default())
                }
                Err(e) => return Err(e.into()),
            }
        }
        HookStep::TokioPostgresExecute { sql } => {
            let (db, conn_task) = tokio_postgres_client().await?;
            let result = db.execute(&sql, &[&BOUND_SECRET]).await;
            drop(db);
            conn_task.abort();
            match result {
                Ok(n) => format!("affected {n}"),
                Err(openbox::hooks::db::DbError::Driver(e)) => format!(
                    "driver error {}",
                    e.as_db_error().map(|d| d.code().code()).unwrap_or_default()
                ),
                Err(e) => return Err(e.into()),
            }
        }
        HookStep::Sql { via, sql, batch } => run_sql(via, sql, batch).await?,
        HookStep::Diesel { db, table } => crate::orm::diesel::insert(&db, &table)?,
        HookStep::DieselAsync { table } => crate::orm::diesel_async::insert(&table).await?,
        HookStep::SeaOrm { db, table } => crate::orm::sea::insert(&db, &table).await?,
        HookStep::RedisCommand { args } => {
            let conn = redis::Client::open(REDIS_URL)?
                .get_multiplexed_async_connection()
                .await?;
            let mut db = GovernedRedis::new(conn, "127.0.0.1", 6379);
            let mut cmd = redis::cmd(&args[0]);
            for a in &args[1..] {
                cmd.arg(a);
            }
            match cmd.query_async::<redis::Value>(&mut db).await {
                Ok(v) => format!("{v:?}"),
                Err(e) => format!("redis error: {:?}", e.kind()),
            }
        }
    })
}

/// The hook activities.
pub struct HookActivities;

// Not `#[governed_activities]`: the steps carry the tests' secrets as activity input, and the
// hook tests check what the hooks send, not what input capture sends.
#[activities]
impl HookActivities {
    /// Runs a step in an async body governed by the plugin.
    #[activity(name = "hook_step")]
    pub async fn step(_ctx: ActivityContext, step: HookStep) -> Result<String, ActivityError> {
        Ok(run_step(step).await?)
    }

    /// Runs a step in a sync body annotated with #[governed_activity] (blocking thread).
    #[activity(name = "hook_step_sync")]
    #[openbox::governed_activity]
    pub fn step_sync(_ctx: ActivityContext, step: HookStep) -> Result<String, ActivityError> {
        Ok(match step {
            HookStep::Rusqlite { file, table } => {
                let db = GovernedConnection::open(&file).map_err(anyhow::Error::from)?;
                let n = db
                    .execute(
                        &format!("INSERT INTO {table} (note) VALUES (?1)"),
                        [BOUND_SECRET],
                    )
                    .map_err(anyhow::Error::from)?;
                format!("inserted {n}")
            }
            HookStep::Diesel { db, table } => crate::orm::diesel::insert(&db, &table)?,
            HookStep::WriteFileSync { path } => {
                openbox::fs::sync::write(&path, FILE_CONTENT.as_bytes())
                    .map_err(anyhow::Error::from)?;
                "written".to_owned()
            }
            HookStep::TracedSync { x } => double(x).to_string(),
            HookStep::ProcessSync { program, args } => {
                let out = openbox::process::sync::Command::new(program)
                    .args(args)
                    .output()
                    .map_err(anyhow::Error::from)?;
                let code = out.status.code().unwrap_or(-1);
                format!("exit {code} {}", String::from_utf8_lossy(&out.stdout))
            }
            other => return Err(anyhow::anyhow!("not a sync step: {other:?}").into()),
        })
    }
}

/// What a [`HookWorkflow`] runs: each step, in a sync body when the flag is set.
pub type HookPlan = Vec<(bool, HookStep)>;

/// Runs hook steps, one activity each; records errors as `ERR:<type>:<message>`.
#[workflow]
#[derive(Default)]
pub struct HookWorkflow;

#[workflow_methods]
impl HookWorkflow {
    /// Runs the plan.
    #[run(name = "HookWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        plan: HookPlan,
    ) -> WorkflowResult<Vec<String>> {
        let mut out = Vec::new();
        for (sync, step) in plan {
            let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
                .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
                .build();
            let result = if sync {
                ctx.execute_activity(HookActivities::step_sync, step, opts)
                    .await
            } else {
                ctx.execute_activity(HookActivities::step, step, opts).await
            };
            out.push(match result {
                Ok(v) => v,
                Err(e) => {
                    use temporalio_common::error::IncomingError;
                    match e.cause() {
                        Some(IncomingError::Application(af)) => {
                            format!(
                                "ERR:{}:{}",
                                af.type_name().unwrap_or("?"),
                                e.cause()
                                    .map(|c| c.failure().message.clone())
                                    .unwrap_or_default()
                            )
                        }
                        _ => format!("ERR:{e}"),
                    }
                }
            });
        }
        Ok(out)
    }
}

/// The target of the tests' PostgreSQL, for direct assertions.
pub fn postgres_target() -> DbTarget {
    DbTarget::new("postgresql")
        .name("test")
        .server("127.0.0.1", 5432)
}
