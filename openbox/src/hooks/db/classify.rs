//! What a SQL text does, read by a real parser in the connection's dialect.
//!
//! A text may hold several statements (`batch_execute`, `execute_batch`, `raw_sql`), and a
//! statement may write where its first word says it reads: a data-modifying CTE
//! (`WITH d AS (DELETE … RETURNING *) SELECT …`), `SELECT … INTO new_table`, `EXPLAIN ANALYZE
//! DELETE …` (which runs the delete), or a `SELECT` of a function that changes something
//! (`setval`, `lo_unlink`, `pg_advisory_lock`, `GET_LOCK`, …: [`writing_function`]). Each
//! statement is classified by the most consequential thing it does, and the text by its most
//! consequential statement ([`Tier`]): `DROP`/`TRUNCATE` > other DDL > `DELETE` > `UPDATE`/`MERGE`
//! > `INSERT` > other writes > reads > transaction control.
//!
//! Text the parser cannot read is `UNKNOWN`, which counts as a write: the fail-safe side. So is
//! a text longer than [`MAX_PARSED_BYTES`]. When a PostgreSQL or MySQL text holds a backslash, it
//! is also read with the other backslash convention (`standard_conforming_strings = off`,
//! `NO_BACKSLASH_ESCAPES`), since a server set that way would see other statements in it; the
//! more consequential reading wins.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{LazyLock, Mutex};

use sqlparser::ast::{Expr, Select, Statement, TableFactor, Visit, Visitor};
use sqlparser::derive_dialect;
use sqlparser::dialect::{GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// The operation of text that could not be read.
pub(crate) const UNKNOWN: &str = "UNKNOWN";

/// Longest text parsed (a bulk insert of this size parses in about 0.1 s); longer text is
/// `UNKNOWN`.
pub(crate) const MAX_PARSED_BYTES: usize = 1 << 20;

/// Texts up to this size are remembered with their classification (statements are mostly
/// the same few texts with different bound values).
const MAX_CACHED_BYTES: usize = 4096;
/// Classifications remembered at most (then the memory starts over).
const MAX_CACHED: usize = 1024;

/// The SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
    /// Anything else: a permissive generic grammar.
    Generic,
}

impl Dialect {
    /// The dialect of a `db_system` name.
    pub(crate) fn of_system(system: &str) -> Dialect {
        match system.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pg" | "cockroachdb" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::MySql,
            "sqlite" | "sqlite3" => Dialect::Sqlite,
            _ => Dialect::Generic,
        }
    }
}

derive_dialect!(
    PostgresWithBackslashEscapes,
    PostgreSqlDialect,
    preserve_type_id = true,
    overrides = { supports_string_literal_backslash_escape = true }
);
derive_dialect!(
    MySqlWithoutBackslashEscapes,
    MySqlDialect,
    preserve_type_id = true,
    overrides = { supports_string_literal_backslash_escape = false }
);

/// What a SQL text does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Classification {
    /// The most consequential operation: what `db_operation` and the span name say.
    pub(crate) operation: &'static str,
    /// Each statement's operation, in order (one entry for text that could not be read).
    pub(crate) statements: Vec<&'static str>,
}

impl Classification {
    fn unknown() -> Self {
        Classification {
            operation: UNKNOWN,
            statements: vec![UNKNOWN],
        }
    }

    /// Whether the text can change something, as the span's destructiveness is judged from
    /// `db_operation` (what `fail_closed_destructive` stops).
    #[cfg(test)]
    fn writes(&self) -> bool {
        !crate::wire::SQL_READ_OPERATIONS.contains(&self.operation)
    }

    fn of_statements(statements: Vec<&'static str>) -> Self {
        let operation = statements
            .iter()
            .copied()
            .reduce(more_consequential)
            .unwrap_or(UNKNOWN);
        Classification {
            operation,
            statements: if statements.is_empty() {
                vec![UNKNOWN]
            } else {
                statements
            },
        }
    }
}

/// How consequential an operation is; the higher the more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`: they commit or undo what was
    /// allowed, and change nothing themselves.
    Transaction,
    /// `SELECT`, `SHOW`, `DESCRIBE`, `EXPLAIN`.
    Read,
    /// Anything else that is not listed: it may change something (`UNKNOWN`, `SET`, `CALL`,
    /// `COPY`, `LOCK`, `PRAGMA`, `VACUUM`, …).
    OtherWrite,
    /// `INSERT`.
    Insert,
    /// `UPDATE`, `MERGE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `CREATE`, `ALTER`, `GRANT`, `REVOKE`, `RENAME`, `COMMENT`.
    Schema,
    /// `DROP`, `TRUNCATE`.
    Destroy,
}

impl Tier {
    /// The tier of an operation name.
    pub(crate) fn of(operation: &str) -> Tier {
        match operation {
            "BEGIN" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => Tier::Transaction,
            "SELECT" | "SHOW" | "DESCRIBE" | "EXPLAIN" => Tier::Read,
            "INSERT" => Tier::Insert,
            "UPDATE" | "MERGE" => Tier::Update,
            "DELETE" => Tier::Delete,
            "CREATE" | "ALTER" | "GRANT" | "REVOKE" | "RENAME" | "COMMENT" => Tier::Schema,
            "DROP" | "TRUNCATE" => Tier::Destroy,
            _ => Tier::OtherWrite,
        }
    }
}

/// The more consequential of two operations; the first on a tie.
fn more_consequential(a: &'static str, b: &'static str) -> &'static str {
    if Tier::of(b) > Tier::of(a) { b } else { a }
}

/// Classifies `sql` as `dialect` reads it.
pub(crate) fn classify(sql: &str, dialect: Dialect) -> Classification {
    if sql.len() > MAX_PARSED_BYTES {
        return Classification::unknown();
    }
    if sql.len() > MAX_CACHED_BYTES {
        return classify_uncached(sql, dialect);
    }
    // One memory per dialect, looked up by the text itself (no allocation on a hit).
    type Memory = Mutex<HashMap<Box<str>, Classification>>;
    static CACHE: LazyLock<[Memory; 4]> = LazyLock::new(Default::default);
    let cache = &CACHE[dialect as usize];
    let lock = || {
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(hit) = lock().get(sql) {
        return hit.clone();
    }
    let classified = classify_uncached(sql, dialect);
    let mut map = lock();
    if map.len() >= MAX_CACHED {
        map.clear();
    }
    map.insert(sql.into(), classified.clone());
    classified
}

fn classify_uncached(sql: &str, dialect: Dialect) -> Classification {
    let primary = parse_guarded(sql, dialect, false);
    let alternative = match dialect {
        Dialect::Postgres | Dialect::MySql if sql.contains('\\') => {
            Some(parse_guarded(sql, dialect, true))
        }
        _ => None,
    };
    match alternative {
        Some(other) if Tier::of(other.operation) > Tier::of(primary.operation) => other,
        _ => primary,
    }
}

/// [`parse`], where a panic of the parser (a bug there, on some input) is `UNKNOWN`: the
/// caller's statement is judged as a write, it does not crash.
fn parse_guarded(sql: &str, dialect: Dialect, flip_backslashes: bool) -> Classification {
    std::panic::catch_unwind(|| parse(sql, dialect, flip_backslashes))
        .unwrap_or_else(|_| Classification::unknown())
}

/// Parses `sql`; `flip_backslashes` reads backslashes in strings the other way.
fn parse(sql: &str, dialect: Dialect, flip_backslashes: bool) -> Classification {
    let parsed = match (dialect, flip_backslashes) {
        (Dialect::Postgres, false) => Parser::parse_sql(&PostgreSqlDialect {}, sql),
        (Dialect::Postgres, true) => Parser::parse_sql(&PostgresWithBackslashEscapes::new(), sql),
        (Dialect::MySql, flip) => {
            // MariaDB runs the text of `/*M! … */` comments as MySQL runs `/*! … */`.
            let sql = sql.replace("/*M!", " /*!");
            if flip {
                Parser::parse_sql(&MySqlWithoutBackslashEscapes::new(), &sql)
            } else {
                Parser::parse_sql(&MySqlDialect {}, &sql)
            }
        }
        (Dialect::Sqlite, _) => Parser::parse_sql(&SQLiteDialect {}, sql),
        (Dialect::Generic, _) => Parser::parse_sql(&GenericDialect {}, sql),
    };
    match parsed {
        Ok(statements) => Classification::of_statements(
            statements
                .iter()
                .map(|s| statement_operation(s, dialect))
                .collect(),
        ),
        Err(_) => Classification::unknown(),
    }
}

/// The most consequential operation of one statement, nested statements, `INTO` targets and
/// function calls included.
fn statement_operation(statement: &Statement, dialect: Dialect) -> &'static str {
    if let Statement::Explain {
        analyze: false,
        options,
        ..
    } = statement
        && !options
            .iter()
            .flatten()
            .any(|o| o.name.value.eq_ignore_ascii_case("analyze"))
    {
        // A plain EXPLAIN does not run the statement it explains.
        return "EXPLAIN";
    }
    let mut effects = Effects {
        dialect,
        operation: "EXPLAIN",
        seen: false,
    };
    let _ = statement.visit(&mut effects);
    effects.operation
}

/// Walks a statement, keeping the most consequential operation met.
struct Effects {
    dialect: Dialect,
    operation: &'static str,
    /// Whether the first (outermost) statement was met.
    seen: bool,
}

impl Effects {
    fn raise(&mut self, operation: &'static str) {
        if self.seen {
            self.operation = more_consequential(self.operation, operation);
        } else {
            self.operation = operation;
            self.seen = true;
        }
    }
}

impl Visitor for Effects {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        self.raise(own_operation(statement));
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.into.is_some() {
            // PostgreSQL and SQLite create a table; MySQL sets variables.
            self.raise(match self.dialect {
                Dialect::MySql => "SET",
                _ => "CREATE",
            });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr
            && let Some(op) = function_operation(&f.name, self.dialect)
        {
            self.raise(op);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let name = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => name,
            _ => return ControlFlow::Continue(()),
        };
        if let Some(op) = function_operation(name, self.dialect) {
            self.raise(op);
        }
        ControlFlow::Continue(())
    }
}

fn function_operation(name: &sqlparser::ast::ObjectName, dialect: Dialect) -> Option<&'static str> {
    let last = name.0.last()?.as_ident()?;
    writing_function(&last.value, dialect)
}

/// The operation of a statement by its own kind, without what it contains.
fn own_operation(statement: &Statement) -> &'static str {
    match statement {
        Statement::Query(_) => "SELECT",
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Merge(_) => "MERGE",
        Statement::StartTransaction { .. } => "BEGIN",
        Statement::Commit { .. } => "COMMIT",
        Statement::Rollback { .. } => "ROLLBACK",
        Statement::Savepoint { .. } => "SAVEPOINT",
        Statement::ReleaseSavepoint { .. } => "RELEASE",
        Statement::Explain { .. } => "EXPLAIN",
        Statement::ExplainTable { .. } => "DESCRIBE",
        other => leading_keyword(other),
    }
}

/// The first word of the statement as the parser prints it (`CREATE`, `DROP`, `SHOW`, `SET`,
/// `VACUUM`, …), from a fixed vocabulary.
fn leading_keyword(statement: &Statement) -> &'static str {
    const KNOWN: [&str; 34] = [
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "GRANT",
        "REVOKE",
        "RENAME",
        "COMMENT",
        "SHOW",
        "DESCRIBE",
        "SET",
        "RESET",
        "CALL",
        "COPY",
        "LOCK",
        "UNLOCK",
        "PRAGMA",
        "VACUUM",
        "ANALYZE",
        "EXECUTE",
        "PREPARE",
        "DEALLOCATE",
        "DECLARE",
        "FETCH",
        "CLOSE",
        "LISTEN",
        "UNLISTEN",
        "NOTIFY",
        "USE",
        "ATTACH",
        "DETACH",
        "KILL",
        "DISCARD",
        "REFRESH",
    ];
    let text = statement.to_string();
    let word = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    KNOWN
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(word))
        // A statement kind outside the vocabulary may change anything.
        .unwrap_or(UNKNOWN)
}

/// The operation a call of function `name` is reported as, if it is one known to change
/// something in `dialect` (the list is in the [module documentation](super)). Matched by name,
/// case-insensitive; any other dialect uses every list.
pub(crate) fn writing_function(name: &str, dialect: Dialect) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let lists: &[&[(&str, &'static str)]] = match dialect {
        Dialect::Postgres => &[POSTGRES_WRITING_FUNCTIONS],
        Dialect::MySql => &[MYSQL_WRITING_FUNCTIONS],
        Dialect::Sqlite => &[SQLITE_WRITING_FUNCTIONS],
        Dialect::Generic => &[
            POSTGRES_WRITING_FUNCTIONS,
            MYSQL_WRITING_FUNCTIONS,
            SQLITE_WRITING_FUNCTIONS,
        ],
    };
    lists
        .iter()
        .flat_map(|l| l.iter())
        .find(|(f, _)| *f == name)
        .map(|(_, op)| *op)
}

const POSTGRES_WRITING_FUNCTIONS: &[(&str, &str)] = &[
    ("nextval", "UPDATE"),
    ("setval", "UPDATE"),
    ("lo_put", "UPDATE"),
    ("lowrite", "UPDATE"),
    ("lo_truncate", "UPDATE"),
    ("lo_truncate64", "UPDATE"),
    ("lo_import", "INSERT"),
    ("lo_create", "INSERT"),
    ("lo_creat", "INSERT"),
    ("lo_from_bytea", "INSERT"),
    ("pg_logical_emit_message", "INSERT"),
    ("lo_unlink", "DELETE"),
    ("pg_file_unlink", "DELETE"),
    ("lo_export", "COPY"),
    ("pg_file_write", "COPY"),
    ("pg_file_rename", "COPY"),
    ("pg_advisory_lock", "LOCK"),
    ("pg_advisory_lock_shared", "LOCK"),
    ("pg_advisory_xact_lock", "LOCK"),
    ("pg_advisory_xact_lock_shared", "LOCK"),
    ("pg_try_advisory_lock", "LOCK"),
    ("pg_try_advisory_lock_shared", "LOCK"),
    ("pg_try_advisory_xact_lock", "LOCK"),
    ("pg_try_advisory_xact_lock_shared", "LOCK"),
    ("pg_advisory_unlock", "LOCK"),
    ("pg_advisory_unlock_shared", "LOCK"),
    ("pg_advisory_unlock_all", "LOCK"),
    ("set_config", "SET"),
    ("pg_notify", "NOTIFY"),
    ("dblink", "EXECUTE"),
    ("dblink_exec", "EXECUTE"),
    ("dblink_connect", "EXECUTE"),
    ("dblink_connect_u", "EXECUTE"),
    ("dblink_send_query", "EXECUTE"),
    ("dblink_open", "EXECUTE"),
    ("query_to_xml", "EXECUTE"),
    ("query_to_xmlschema", "EXECUTE"),
    ("query_to_xml_and_xmlschema", "EXECUTE"),
    ("pg_terminate_backend", "EXECUTE"),
    ("pg_cancel_backend", "EXECUTE"),
    ("pg_reload_conf", "EXECUTE"),
    ("pg_rotate_logfile", "EXECUTE"),
    ("pg_promote", "EXECUTE"),
    ("pg_switch_wal", "EXECUTE"),
    ("pg_create_restore_point", "EXECUTE"),
    ("pg_create_physical_replication_slot", "EXECUTE"),
    ("pg_create_logical_replication_slot", "EXECUTE"),
    ("pg_drop_replication_slot", "EXECUTE"),
    ("pg_backup_start", "EXECUTE"),
    ("pg_backup_stop", "EXECUTE"),
    ("pg_stat_reset", "EXECUTE"),
    ("pg_stat_reset_shared", "EXECUTE"),
    ("pg_stat_statements_reset", "EXECUTE"),
];

const MYSQL_WRITING_FUNCTIONS: &[(&str, &str)] = &[
    ("nextval", "UPDATE"),
    ("setval", "UPDATE"),
    ("get_lock", "LOCK"),
    ("release_lock", "LOCK"),
    ("release_all_locks", "LOCK"),
    ("sys_exec", "EXECUTE"),
    ("sys_eval", "EXECUTE"),
];

const SQLITE_WRITING_FUNCTIONS: &[(&str, &str)] = &[
    ("load_extension", "EXECUTE"),
    ("fts3_tokenizer", "EXECUTE"),
    ("writefile", "COPY"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SQL_READ_OPERATIONS;
    use proptest::prelude::*;

    fn op(sql: &str, dialect: Dialect) -> &'static str {
        classify(sql, dialect).operation
    }

    #[test]
    fn single_statements() {
        use Dialect::*;
        for (sql, dialect, want) in [
            ("SELECT 1", Postgres, "SELECT"),
            (
                "  select * from t where id = $1 for update",
                Postgres,
                "SELECT",
            ),
            ("INSERT INTO t (a) VALUES ($1)", Postgres, "INSERT"),
            ("insert into t values (?1, :a, @b, $c)", Sqlite, "INSERT"),
            ("REPLACE INTO t VALUES (?)", MySql, "INSERT"),
            ("UPDATE t SET a = ? WHERE id = ?", MySql, "UPDATE"),
            ("DELETE FROM t", Sqlite, "DELETE"),
            ("/* c */ delete from t", Postgres, "DELETE"),
            ("-- c\n delete from t", Sqlite, "DELETE"),
            ("CREATE TABLE x (a INT)", Postgres, "CREATE"),
            ("DROP TABLE x", MySql, "DROP"),
            ("TRUNCATE t", Postgres, "TRUNCATE"),
            ("ALTER TABLE t ADD COLUMN b INT", Postgres, "ALTER"),
            ("BEGIN", Postgres, "BEGIN"),
            ("START TRANSACTION", MySql, "BEGIN"),
            ("COMMIT", Sqlite, "COMMIT"),
            ("SAVEPOINT a", Postgres, "SAVEPOINT"),
            ("RELEASE SAVEPOINT a", Postgres, "RELEASE"),
            ("SHOW TABLES", MySql, "SHOW"),
            ("DESCRIBE t", MySql, "DESCRIBE"),
            ("EXPLAIN DELETE FROM t", Postgres, "EXPLAIN"),
            ("EXPLAIN ANALYZE DELETE FROM t", Postgres, "DELETE"),
            ("EXPLAIN (ANALYZE) DELETE FROM t", Postgres, "DELETE"),
            ("SET ROLE admin", Postgres, "SET"),
            ("CALL p()", Postgres, "CALL"),
            ("VACUUM", Postgres, "VACUUM"),
            ("LOCK TABLES t WRITE", MySql, "LOCK"),
            ("DO $$ BEGIN DELETE FROM t; END $$", Postgres, UNKNOWN),
            ("not sql at all", Postgres, UNKNOWN),
            ("", Postgres, UNKNOWN),
            (";", Sqlite, UNKNOWN),
        ] {
            assert_eq!(op(sql, dialect), want, "{sql:?} as {dialect:?}");
        }
    }

    #[test]
    fn writes_hidden_inside_a_statement() {
        use Dialect::*;
        for (sql, dialect, want) in [
            ("WITH x AS (SELECT 1) DELETE FROM t", Postgres, "DELETE"),
            ("WITH x AS (SELECT 1) DELETE FROM t", Sqlite, "DELETE"),
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                Postgres,
                "DELETE",
            ),
            (
                "SELECT * FROM (WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM u) s",
                Postgres,
                "UPDATE",
            ),
            ("SELECT * INTO TEMP t2 FROM t", Postgres, "CREATE"),
            ("SELECT a INTO @v FROM t", MySql, "SET"),
            ("SELECT setval('s', 1)", Postgres, "UPDATE"),
            ("SELECT pg_catalog.SETVAL('s', 1)", Postgres, "UPDATE"),
            ("SELECT \"nextval\"('s')", Postgres, "UPDATE"),
            (
                "SELECT a FROM t WHERE b = lo_unlink(42)",
                Postgres,
                "DELETE",
            ),
            ("SELECT * FROM lo_import('/etc/passwd')", Postgres, "INSERT"),
            ("SELECT pg_advisory_lock(1)", Postgres, "LOCK"),
            ("SELECT set_config('role', 'admin', false)", Postgres, "SET"),
            (
                "SELECT dblink_exec('conn', 'DROP TABLE t')",
                Postgres,
                "EXECUTE",
            ),
            ("SELECT GET_LOCK('a', 1)", MySql, "LOCK"),
            ("SELECT SETVAL(s, 100)", MySql, "UPDATE"),
            ("SELECT load_extension('x')", Sqlite, "EXECUTE"),
            (
                "SELECT count(*), lower(a), now() FROM t",
                Postgres,
                "SELECT",
            ),
            // Only PostgreSQL's functions count for PostgreSQL.
            ("SELECT get_lock('a', 1)", Postgres, "SELECT"),
        ] {
            assert_eq!(op(sql, dialect), want, "{sql:?} as {dialect:?}");
        }
    }

    #[test]
    fn a_batch_is_its_most_consequential_statement() {
        let c = classify("SELECT 1; DELETE FROM t;", Dialect::Sqlite);
        assert_eq!(c.operation, "DELETE");
        assert_eq!(c.statements, ["SELECT", "DELETE"]);
        assert!(c.writes());
        let c = classify("BEGIN; DELETE FROM t; COMMIT;", Dialect::Postgres);
        assert_eq!(
            (c.operation, c.statements.as_slice()),
            ("DELETE", &["BEGIN", "DELETE", "COMMIT"][..])
        );
        for (sql, want) in [
            ("INSERT INTO a VALUES (1); UPDATE a SET x = 1", "UPDATE"),
            ("UPDATE a SET x = 1; DELETE FROM a", "DELETE"),
            ("DELETE FROM a; CREATE TABLE b (x INT)", "CREATE"),
            ("CREATE TABLE b (x INT); DROP TABLE a", "DROP"),
            ("SELECT 1; SET search_path = x", "SET"),
            ("BEGIN; SELECT 1; COMMIT", "SELECT"),
            ("SELECT 1; SELECT 2", "SELECT"),
        ] {
            assert_eq!(op(sql, Dialect::Postgres), want, "{sql}");
        }
        let read = classify("BEGIN; SELECT 1; COMMIT", Dialect::Postgres);
        assert!(!read.writes());
    }

    /// Texts a server would read as more statements than a naive reading sees.
    #[test]
    fn what_the_server_runs_is_what_is_classified() {
        // MySQL runs the text of executable comments; `--1` is not a comment there.
        assert_eq!(op("SELECT 1; /*!DELETE FROM t*/", Dialect::MySql), "DELETE");
        assert_eq!(
            op("SELECT 1 /*M! ; DELETE FROM t */", Dialect::MySql),
            "DELETE"
        );
        assert_eq!(op("SELECT 1 --1; DELETE FROM t", Dialect::MySql), "DELETE");
        // PostgreSQL with standard_conforming_strings = off, MySQL with NO_BACKSLASH_ESCAPES.
        assert_eq!(
            op("SELECT 'a\\''; DELETE FROM t; --'", Dialect::Postgres),
            "DELETE"
        );
        assert_eq!(
            op("SELECT 'a\\'; DELETE FROM t; --'", Dialect::Postgres),
            "DELETE"
        );
        assert_eq!(
            op("SELECT 'a\\'; DELETE FROM t; -- '", Dialect::MySql),
            "DELETE"
        );
        // Dollar quotes and nested comments are text, not statements.
        assert_eq!(
            op("SELECT $$ ; DELETE FROM t; $$", Dialect::Postgres),
            "SELECT"
        );
        assert_eq!(
            op("/* /* */ DELETE FROM t; */ SELECT 1", Dialect::Postgres),
            "SELECT"
        );
    }

    #[test]
    fn dialects_by_system_name() {
        assert_eq!(Dialect::of_system("postgresql"), Dialect::Postgres);
        assert_eq!(Dialect::of_system("MariaDB"), Dialect::MySql);
        assert_eq!(Dialect::of_system("sqlite"), Dialect::Sqlite);
        assert_eq!(Dialect::of_system("mssql"), Dialect::Generic);
    }

    #[test]
    fn too_long_to_parse_is_unknown() {
        let mut sql = String::from("SELECT 1");
        sql.push_str(&" ".repeat(MAX_PARSED_BYTES));
        assert_eq!(classify(&sql, Dialect::Postgres), Classification::unknown());
        assert!(classify(&sql, Dialect::Postgres).writes());
    }

    #[test]
    fn the_read_list_is_exactly_the_tiers_that_change_nothing() {
        for op in SQL_READ_OPERATIONS {
            assert!(Tier::of(op) <= Tier::Read, "{op}");
        }
        for op in [
            UNKNOWN, "INSERT", "UPDATE", "MERGE", "DELETE", "CREATE", "DROP", "SET", "CALL",
            "PRAGMA", "LOCK", "EXECUTE", "COPY", "NOTIFY",
        ] {
            assert!(
                !SQL_READ_OPERATIONS.contains(&op) && Tier::of(op) > Tier::Read,
                "{op}"
            );
        }
    }

    fn dialects() -> impl Strategy<Value = Dialect> {
        prop::sample::select(vec![
            Dialect::Postgres,
            Dialect::MySql,
            Dialect::Sqlite,
            Dialect::Generic,
        ])
    }

    /// Statements that write, in forms the parser reads.
    fn writes() -> impl Strategy<Value = String> {
        let table = "t_[a-z0-9_]{0,8}";
        prop_oneof![
            table.prop_map(|t| format!("DELETE FROM {t}")),
            table.prop_map(|t| format!("UPDATE {t} SET a = 1")),
            table.prop_map(|t| format!("INSERT INTO {t} (a) VALUES (1)")),
            table.prop_map(|t| format!("DROP TABLE {t}")),
            table.prop_map(|t| format!("CREATE TABLE {t} (a INT)")),
            table.prop_map(|t| format!("WITH x AS (SELECT 1) DELETE FROM {t}")),
        ]
    }

    /// Statements that only read.
    fn reads() -> impl Strategy<Value = String> {
        let table = "t_[a-z0-9_]{0,8}";
        prop_oneof![
            Just("SELECT 1".to_owned()),
            table.prop_map(|t| format!("SELECT a, count(*) FROM {t} GROUP BY a")),
            table.prop_map(|t| format!("SELECT * FROM {t} WHERE a = 'x; DELETE FROM y'")),
            Just("BEGIN".to_owned()),
            Just("COMMIT".to_owned()),
        ]
    }

    proptest! {
        /// Arbitrary text never panics, and is either read or judged a write.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}", dialect in dialects()) {
            let c = classify(&text, dialect);
            prop_assert!(!c.statements.is_empty());
            prop_assert_eq!(c.writes(), Tier::of(c.operation) > Tier::Read);
        }

        /// Text made of SQL-ish tokens never panics either.
        #[test]
        fn sql_like_text_never_panics(
            words in prop::collection::vec(prop::sample::select(vec![
                "SELECT", "DELETE", "FROM", "t", "WITH", "AS", "(", ")", ";", "'", "\"", "--",
                "/*", "*/", "/*!", "$$", "\\", "INTO", "setval", "1", ",", "\n", "EXPLAIN",
                "ANALYZE", "RETURNING", "*",
            ]), 0..40),
            dialect in dialects(),
        ) {
            let _ = classify(&words.join(" "), dialect);
        }

        /// No text holding a statement the parser sees as a write is classed as a read,
        /// wherever it sits in a batch.
        #[test]
        fn a_write_is_never_a_read(
            before in prop::collection::vec(reads(), 0..3),
            write in writes(),
            after in prop::collection::vec(reads(), 0..3),
            dialect in dialects(),
        ) {
            let batch: Vec<String> = before.into_iter().chain([write]).chain(after).collect();
            let sql = batch.join("; ");
            let c = classify(&sql, dialect);
            prop_assert!(c.writes(), "{} -> {:?}", sql, c);
        }

        /// A batch of reads is a read, and lists each statement.
        #[test]
        fn reads_stay_reads(batch in prop::collection::vec(reads(), 1..4), dialect in dialects()) {
            let sql = batch.join("; ");
            let c = classify(&sql, dialect);
            prop_assert!(!c.writes(), "{} -> {:?}", sql, c);
            prop_assert_eq!(c.statements.len(), batch.len());
        }
    }
}
