//! Hook evaluation bodies and their span objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::constant::{ActivityStartedTag, AlwaysNull, HookTrigger, WorkflowTelemetry};
use super::event::ActivityIdentity;

/// A hook evaluation: the activity's envelope plus exactly one span describing the operation.
///
/// Core's contract keeps `event_type: "ActivityStarted"` for hooks of both stages; the stage and
/// the hook type live inside `spans[0]`. `activity_input` is the input *as Core
/// last saw it*, i.e. redacted when guardrails redacted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookEvaluation {
    /// Always `workflow-telemetry`.
    pub source: WorkflowTelemetry,
    /// Always `ActivityStarted`.
    pub event_type: ActivityStartedTag,
    /// The activity attempt the operation belongs to.
    #[serde(flatten)]
    pub activity: Arc<ActivityIdentity>,
    /// The activity's (possibly redacted) input.
    pub activity_input: Arc<Vec<Value>>,
    /// Always `null`.
    pub activity_output: AlwaysNull,
    /// Exactly one span: the operation being evaluated.
    pub spans: [Span; 1],
    /// Always `1`.
    pub span_count: SpanCountOne,
    /// Always `true`.
    pub hook_trigger: HookTrigger,
    /// When this evaluation was made (`2026-11-24T02:58:37.635Z`).
    pub timestamp: String,
}

impl HookEvaluation {
    /// Builds the body for one operation span of an activity attempt.
    pub fn new(
        activity: Arc<ActivityIdentity>,
        activity_input: Arc<Vec<Value>>,
        span: Span,
        timestamp: String,
    ) -> Self {
        HookEvaluation {
            source: WorkflowTelemetry,
            event_type: ActivityStartedTag,
            activity,
            activity_input,
            activity_output: AlwaysNull,
            spans: [span],
            span_count: SpanCountOne,
            hook_trigger: HookTrigger,
            timestamp,
        }
    }
}

/// `"span_count": 1` of a hook evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SpanCountOne;

impl Serialize for SpanCountOne {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(1)
    }
}

impl<'de> Deserialize<'de> for SpanCountOne {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            1 => Ok(SpanCountOne),
            n => Err(serde::de::Error::custom(format_args!(
                "span_count must be 1, found {n}"
            ))),
        }
    }
}

/// `kind` of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SpanKind {
    /// An outgoing call (HTTP, database).
    Client,
    /// In-process work (file, function).
    Internal,
}

/// `stage` of a hook evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookStage {
    /// Before the operation: a BLOCK here stops it from happening.
    Started,
    /// After the operation: a BLOCK here fails the activity.
    Completed,
}

impl HookStage {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            HookStage::Started => "started",
            HookStage::Completed => "completed",
        }
    }
}

/// `status` of a span: `{"code": "ERROR" | "UNSET", "description": error}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanStatus {
    /// `ERROR` when the operation failed, else `UNSET`.
    pub code: StatusCode,
    /// The error message, if any.
    pub description: Option<String>,
}

impl SpanStatus {
    /// The status for an operation that ended with `error` (or is still running / succeeded).
    pub fn from_error(error: Option<&str>) -> Self {
        match error {
            Some(e) => SpanStatus {
                code: StatusCode::Error,
                description: Some(e.to_owned()),
            },
            None => SpanStatus {
                code: StatusCode::Unset,
                description: None,
            },
        }
    }
}

/// `status.code` of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StatusCode {
    /// No error recorded.
    Unset,
    /// The operation failed.
    Error,
}

/// One span object: common keys, then the hook-type specific keys, then `activity_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 16 lowercase hex digits (`0000000000000000` when unknown).
    pub span_id: String,
    /// 32 lowercase hex digits: the activity's trace.
    pub trace_id: String,
    /// The parent span, normally the activity's span.
    pub parent_span_id: Option<String>,
    /// Span name (`GET`, `file.write`, `SELECT`, the function name, …).
    pub name: String,
    /// `CLIENT` for http/db, `INTERNAL` for file/function.
    pub kind: SpanKind,
    /// `started` or `completed`.
    pub stage: HookStage,
    /// Integer Unix nanoseconds.
    pub start_time: u64,
    /// Integer Unix nanoseconds; `null` at `started`.
    pub end_time: Option<u64>,
    /// Measured duration; `null` at `started` and when nothing was measured.
    pub duration_ns: Option<u64>,
    /// Span attributes as of now.
    pub attributes: Map<String, Value>,
    /// Error status.
    pub status: SpanStatus,
    /// Always `[]`.
    pub events: Vec<Value>,
    /// `hook_type` and its keys.
    #[serde(flatten)]
    pub hook: HookSpan,
    /// The activity the operation belongs to.
    pub activity_id: String,
}

/// The hook-type specific keys of a span, tagged by `hook_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "hook_type", rename_all = "snake_case")]
pub enum HookSpan {
    /// An outgoing HTTP request.
    HttpRequest(HttpRequestSpan),
    /// A file operation.
    FileOperation(FileOperationSpan),
    /// A database statement or command.
    DbQuery(DbQuerySpan),
    /// A `#[traced]` function call.
    FunctionCall(FunctionCallSpan),
}

/// HTTP methods that only read (RFC 9110's safe methods).
const SAFE_METHODS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "TRACE"];
/// SQL operations that change nothing (transaction control commits or undoes what was
/// allowed). Anything else a `db_operation` of SQL says — `UNKNOWN` included — can.
pub(crate) const SQL_READ_OPERATIONS: [&str; 9] = [
    "SELECT",
    "SHOW",
    "DESCRIBE",
    "EXPLAIN",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
];
/// Redis commands that only read.
const REDIS_READS: [&str; 44] = [
    "GET",
    "MGET",
    "EXISTS",
    "TTL",
    "PTTL",
    "TYPE",
    "STRLEN",
    "GETRANGE",
    "GETBIT",
    "BITCOUNT",
    "HGET",
    "HMGET",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HEXISTS",
    "HSTRLEN",
    "LRANGE",
    "LLEN",
    "LINDEX",
    "SMEMBERS",
    "SISMEMBER",
    "SCARD",
    "SRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZSCORE",
    "ZCARD",
    "ZRANK",
    "ZCOUNT",
    "SCAN",
    "HSCAN",
    "SSCAN",
    "ZSCAN",
    "KEYS",
    "PING",
    "ECHO",
    "INFO",
    "DBSIZE",
    "XRANGE",
    "XREVRANGE",
    "XLEN",
    "PFCOUNT",
];

impl HookSpan {
    /// Adds the attributes a `completed` span carries for this operation: for a file read or
    /// write, `file.bytes` (and `file.lines` when lines were counted), as the reference sets
    /// them once the operation is done; nothing for the other kinds, nor for a file's close.
    pub(crate) fn add_completed_attributes(&self, attributes: &mut Map<String, Value>) {
        let HookSpan::FileOperation(file) = self else {
            return;
        };
        if file.operations.is_some() {
            return; // the close, reported on the open span
        }
        if let Some(bytes) = file.bytes_read.or(file.bytes_written) {
            attributes.insert("file.bytes".into(), bytes.into());
        }
        if let Some(lines) = file.lines_count {
            attributes.insert("file.lines".into(), lines.into());
        }
    }

    /// Whether the operation can change something — what `fail_closed_destructive` stops when
    /// Core gives no verdict. Unknown operations count as destructive.
    pub fn is_destructive(&self) -> bool {
        match self {
            // Methods are case-sensitive: `get` is not `GET`, and a method not known to be
            // safe may change something.
            HookSpan::HttpRequest(h) => !SAFE_METHODS.contains(&h.http_method.as_str()),
            HookSpan::DbQuery(d) => {
                let op = d.db_operation.to_ascii_uppercase();
                if d.db_system == "redis" {
                    !REDIS_READS.contains(&op.as_str())
                } else {
                    !SQL_READ_OPERATIONS.contains(&op.as_str())
                }
            }
            HookSpan::FileOperation(f) => match f.file_operation.as_str() {
                "read" | "readline" | "readlines" | "close" => false,
                "open" => f
                    .file_mode
                    .chars()
                    .any(|c| matches!(c, 'w' | 'a' | 'x' | '+')),
                _ => true,
            },
            HookSpan::FunctionCall(_) => true,
        }
    }

    /// The `hook_type` string.
    pub const fn hook_type(&self) -> &'static str {
        match self {
            HookSpan::HttpRequest(_) => "http_request",
            HookSpan::FileOperation(_) => "file_operation",
            HookSpan::DbQuery(_) => "db_query",
            HookSpan::FunctionCall(_) => "function_call",
        }
    }

    /// The `error` key of the span.
    pub fn error(&self) -> Option<&str> {
        match self {
            HookSpan::HttpRequest(s) => s.error.as_deref(),
            HookSpan::FileOperation(s) => s.error.as_deref(),
            HookSpan::DbQuery(s) => s.error.as_deref(),
            HookSpan::FunctionCall(s) => s.error.as_deref(),
        }
    }
}

/// Header map of an HTTP span (names lower-cased; repeated headers joined with `, `).
pub type HeaderMap = BTreeMap<String, String>;

/// `http_request` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequestSpan {
    /// Plain method (`GET`), never a bytes repr.
    pub http_method: String,
    /// Full request URL.
    pub http_url: String,
    /// Request body as text, bounded.
    pub request_body: Option<String>,
    /// Request headers, sensitive values redacted.
    pub request_headers: Option<HeaderMap>,
    /// Response body as text, only for text-like content types, bounded.
    pub response_body: Option<String>,
    /// Response headers, sensitive values redacted.
    pub response_headers: Option<HeaderMap>,
    /// Response status.
    pub http_status_code: Option<u16>,
    /// `HTTP <code>` for status ≥ 400, or the transport error.
    pub error: Option<String>,
}

/// `file_operation` keys. No file content is ever sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOperationSpan {
    /// The path as given to `open`.
    pub file_path: String,
    /// The open mode (`r`, `w`, `a`, `r+`, …).
    pub file_mode: String,
    /// `open`, `read`, `readline`, `readlines`, `write`, `writelines` or `close`.
    pub file_operation: String,
    /// The I/O error, if any.
    pub error: Option<String>,
    /// Bytes read by this operation (or in total, at `close`); `null` when it reads nothing
    /// (always sent: Core's contract wants both keys on every file span).
    #[serde(default)]
    pub bytes_read: Option<u64>,
    /// Bytes written by this operation (or in total, at `close`); `null` when it writes
    /// nothing (always sent).
    #[serde(default)]
    pub bytes_written: Option<u64>,
    /// Lines read or written by a `*lines` operation; only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_count: Option<u64>,
    /// The operations made on the file, at `close`; only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
}

/// `db_query` keys. Bound parameter values are never included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbQuerySpan {
    /// `postgresql`, `mysql`, `sqlite`, `redis`, …
    pub db_system: String,
    /// Database name (or index for redis).
    pub db_name: Option<String>,
    /// Leading SQL verb or command name (`SELECT`, `INSERT`, `GET`, … or `UNKNOWN`).
    pub db_operation: String,
    /// Statement text with placeholders, or the command name and key for redis.
    pub db_statement: String,
    /// Server host (`unknown` when not known).
    pub server_address: Option<String>,
    /// Server port.
    pub server_port: Option<u16>,
    /// Rows affected/returned: `null` at `started`, an integer or `null` at `completed`
    /// (`None`: the key is left out, as a body from elsewhere may do).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_nullable"
    )]
    pub rowcount: Option<Option<u64>>,
    /// The driver error, if any.
    pub error: Option<String>,
}

/// `function_call` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCallSpan {
    /// Function name.
    pub function: String,
    /// Module path of the function.
    pub module: String,
    /// JSON text `{"args":[…],"kwargs":{}}` at `started` when arguments are captured.
    pub args: Option<String>,
    /// The result as text at `completed` when results are captured.
    pub result: Option<String>,
    /// The error, if the function failed.
    pub error: Option<String>,
}

/// Deserializes a key that, when present, may be `null`: absent → `None`, `null` → `Some(None)`.
fn present_nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destructive_operations_by_kind() {
        let http = |m: &str| {
            HookSpan::HttpRequest(HttpRequestSpan {
                http_method: m.into(),
                http_url: "https://x.test/".into(),
                request_body: None,
                request_headers: None,
                response_body: None,
                response_headers: None,
                http_status_code: None,
                error: None,
            })
        };
        let db = |system: &str, op: &str| {
            HookSpan::DbQuery(DbQuerySpan {
                db_system: system.into(),
                db_name: None,
                db_operation: op.into(),
                db_statement: String::new(),
                server_address: None,
                server_port: None,
                rowcount: None,
                error: None,
            })
        };
        let file = |op: &str, mode: &str| {
            HookSpan::FileOperation(FileOperationSpan {
                file_path: "/tmp/x".into(),
                file_mode: mode.into(),
                file_operation: op.into(),
                error: None,
                bytes_read: None,
                bytes_written: None,
                lines_count: None,
                operations: None,
            })
        };
        for (span, destructive) in [
            (http("GET"), false),
            (http("HEAD"), false),
            (http("get"), true),
            (http("head"), true),
            (http("PROPFIND"), true),
            (http("POST"), true),
            (http("DELETE"), true),
            (db("postgresql", "SELECT"), false),
            (db("postgresql", "INSERT"), true),
            (db("postgresql", "UNKNOWN"), true),
            (db("postgresql", "SAVEPOINT"), false),
            (db("postgresql", "LOCK"), true),
            (db("sqlite", "PRAGMA"), true),
            (db("mysql", "DROP"), true),
            (db("redis", "GET"), false),
            (db("redis", "SET"), true),
            (db("redis", "PIPELINE"), true),
            (file("read", "r"), false),
            (file("open", "r"), false),
            (file("open", "w"), true),
            (file("open", "r+"), true),
            (file("write", "a"), true),
            (file("close", "w"), false),
        ] {
            assert_eq!(span.is_destructive(), destructive, "{span:?}");
        }
    }
}
