//! Governed files: `open` is evaluated before the file is opened (a BLOCK means it is
//! never created or opened), each read and write before and after it happens, and `close` after
//! it — with byte counts, never file content. Outside a governed activity these are plain files.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let mut f = openbox::fs::File::create("/tmp/report.txt").await?;
//! f.write_all(b"quarterly numbers\n").await?;
//! f.close().await?; // or drop it: close is then reported in the background
//! let text = openbox::fs::read_to_string("/tmp/report.txt").await?;
//! # let _ = text; Ok(()) }
//! ```
//!
//! A governance stop is an `io::Error` of kind `PermissionDenied` whose inner error is the
//! [`HookError`](crate::hooks::HookError). Reads are buffered. [`sync`] has the same for
//! blocking code.

pub mod sync;

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::hooks::HookCall;
use crate::wire::{FileOperationSpan, HookSpan, SpanKind};

/// How a file is opened, reported as the reference's `open()` mode (`r`, `w`, `a`, `r+`, …).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
}

impl OpenOptions {
    /// Nothing enabled yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }
    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }
    /// Append to the end.
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }
    /// Truncate to zero length.
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }
    /// Create if missing.
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }
    /// Create, failing if it exists.
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }

    /// The reference's mode string for these options.
    pub fn mode(&self) -> String {
        let (base, plus) = if self.create_new {
            ("x", self.read)
        } else if self.append {
            ("a", self.read)
        } else if self.write && !self.read {
            ("w", false)
        } else if self.write {
            (if self.truncate { "w" } else { "r" }, true)
        } else {
            ("r", false)
        };
        format!("{base}{}", if plus { "+" } else { "" })
    }

    fn std(&self) -> std::fs::OpenOptions {
        let mut o = std::fs::OpenOptions::new();
        o.read(self.read)
            .write(self.write)
            .append(self.append)
            .truncate(self.truncate)
            .create(self.create)
            .create_new(self.create_new);
        o
    }

    /// Opens `path` with these options (evaluated first).
    pub async fn open(&self, path: impl AsRef<Path>) -> std::io::Result<File> {
        File::open_with(
            path.as_ref(),
            self.mode(),
            tokio::fs::OpenOptions::from(self.std()),
        )
        .await
    }
}

/// What a file hook reports: path, mode, totals and the operations made.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileState {
    pub path: String,
    pub mode: String,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub operations: Vec<String>,
}

impl FileState {
    pub(crate) fn new(path: &Path, mode: String) -> Self {
        FileState {
            path: path.display().to_string(),
            mode,
            ..FileState::default()
        }
    }

    pub(crate) fn span(&self, op: &str, error: Option<String>) -> HookSpan {
        HookSpan::FileOperation(FileOperationSpan {
            file_path: self.path.clone(),
            file_mode: self.mode.clone(),
            file_operation: op.to_owned(),
            error,
            bytes_read: None,
            bytes_written: None,
            lines_count: None,
            operations: None,
        })
    }

    pub(crate) fn counted(
        &self,
        op: &str,
        read: Option<u64>,
        written: Option<u64>,
        lines: Option<u64>,
    ) -> HookSpan {
        let HookSpan::FileOperation(mut s) = self.span(op, None) else {
            unreachable!("built above")
        };
        s.bytes_read = read;
        s.bytes_written = written;
        s.lines_count = lines;
        HookSpan::FileOperation(s)
    }

    pub(crate) fn close_span(&self) -> HookSpan {
        let HookSpan::FileOperation(mut s) = self.span("close", None) else {
            unreachable!("built above")
        };
        s.bytes_read = Some(self.bytes_read);
        s.bytes_written = Some(self.bytes_written);
        s.operations = Some(self.operations.clone());
        HookSpan::FileOperation(s)
    }

    pub(crate) fn did(&mut self, op: &str) {
        if !self.operations.iter().any(|o| o == op) {
            self.operations.push(op.to_owned());
        }
    }

    /// The hook call of operation `op`, if the file's open was governed (`open_governed`).
    pub(crate) fn operation_call(&self, op: &str, open_governed: bool) -> Option<HookCall> {
        if !open_governed {
            return None;
        }
        HookCall::begin(format!("file.{op}"), SpanKind::Internal, None)
            .map(|c| c.with_attributes(self.operation_attributes(op)))
    }

    /// The attributes of an operation's span: the path and the operation (the open span has
    /// the path and the mode); `completed` adds `file.bytes` (see [`HookSpan`]'s attributes).
    fn operation_attributes(&self, op: &str) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("file.path".into(), self.path.clone().into());
        m.insert("file.operation".into(), op.into());
        m
    }

    pub(crate) fn attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("file.path".into(), self.path.clone().into());
        m.insert("file.mode".into(), self.mode.clone().into());
        m
    }
}

/// An async governed file.
#[derive(Debug)]
pub struct File {
    inner: Option<BufReader<tokio::fs::File>>,
    state: FileState,
    open_call: Option<HookCall>,
}

impl File {
    /// Opens an existing file for reading (mode `r`).
    pub async fn open(path: impl AsRef<Path>) -> std::io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates or truncates a file for writing (mode `w`).
    pub async fn create(path: impl AsRef<Path>) -> std::io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    async fn open_with(
        path: &Path,
        mode: String,
        options: tokio::fs::OpenOptions,
    ) -> std::io::Result<File> {
        let state = FileState::new(path, mode);
        let call = HookCall::begin("file.open", SpanKind::Internal, None)
            .map(|c| c.with_attributes(state.attributes()));
        if let Some(call) = &call {
            call.started(state.span("open", None)).await?;
        }
        let file = options.open(path).await?;
        Ok(File {
            inner: Some(BufReader::new(file)),
            state,
            open_call: call,
        })
    }

    fn inner(&mut self) -> std::io::Result<&mut BufReader<tokio::fs::File>> {
        self.inner
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the file is closed"))
    }

    async fn governed<T>(
        &mut self,
        op: &'static str,
        run: impl AsyncFnOnce(&mut BufReader<tokio::fs::File>) -> std::io::Result<T>,
        counts: impl Fn(&T) -> (Option<u64>, Option<u64>, Option<u64>),
    ) -> std::io::Result<T> {
        let call = self.state.operation_call(op, self.open_call.is_some());
        if let Some(call) = &call {
            call.started(self.state.span(op, None)).await?;
        }
        let result = run(self.inner()?).await;
        match &result {
            Ok(v) => {
                let (r, w, l) = counts(v);
                self.state.bytes_read += r.unwrap_or(0);
                self.state.bytes_written += w.unwrap_or(0);
                self.state.did(op);
                if let Some(call) = &call {
                    call.completed(self.state.counted(op, r, w, l)).await?;
                }
            }
            Err(e) => {
                if let Some(call) = &call {
                    call.completed(self.state.span(op, Some(e.to_string())))
                        .await?;
                }
            }
        }
        result
    }

    /// Reads into `buf`; returns the number of bytes read.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.governed(
            "read",
            async |f| f.read(buf).await,
            |n| (Some(*n as u64), None, None),
        )
        .await
    }

    /// Reads to the end, appending to `buf`.
    pub async fn read_to_string(&mut self, buf: &mut String) -> std::io::Result<usize> {
        self.governed(
            "read",
            async |f| f.read_to_string(buf).await,
            |n| (Some(*n as u64), None, None),
        )
        .await
    }

    /// Reads one line (with its newline) into `buf`.
    pub async fn read_line(&mut self, buf: &mut String) -> std::io::Result<usize> {
        self.governed(
            "readline",
            async |f| f.read_line(buf).await,
            |n| (Some(*n as u64), None, None),
        )
        .await
    }

    /// Writes `buf` (possibly partly); returns the number of bytes written.
    pub async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.governed(
            "write",
            async |f| f.get_mut().write(buf).await,
            |n| (None, Some(*n as u64), None),
        )
        .await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let len = buf.len() as u64;
        self.governed(
            "write",
            async |f| f.get_mut().write_all(buf).await,
            move |_| (None, Some(len), None),
        )
        .await
    }

    /// Flushes and closes the file, reporting `close` with the totals (and waiting for its
    /// verdict). Dropping the file reports it too, in the background.
    pub async fn close(mut self) -> std::io::Result<()> {
        let mut inner = self.inner.take();
        let flushed = match inner.as_mut() {
            Some(f) => f.get_mut().flush().await,
            None => Ok(()),
        };
        drop(inner);
        if let Some(call) = self.open_call.take() {
            call.completed(self.state.close_span()).await?;
        }
        flushed
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if let Some(call) = self.open_call.take() {
            call.completed_detached(self.state.close_span());
        }
    }
}

/// Reads a whole file as governed `open`, `read` and `close`.
pub async fn read_to_string(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut f = File::open(path).await?;
    let mut s = String::new();
    f.read_to_string(&mut s).await?;
    f.close().await?;
    Ok(s)
}

/// Creates or truncates a file and writes `contents`, as governed `open`, `write` and `close`.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut f = File::create(path).await?;
    f.write_all(contents.as_ref()).await?;
    f.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(OpenOptions::new().read(true).mode(), "r");
        assert_eq!(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(),
            "w"
        );
        assert_eq!(OpenOptions::new().append(true).create(true).mode(), "a");
        assert_eq!(OpenOptions::new().read(true).write(true).mode(), "r+");
        assert_eq!(OpenOptions::new().read(true).append(true).mode(), "a+");
        assert_eq!(OpenOptions::new().write(true).create_new(true).mode(), "x");
    }

    #[tokio::test]
    async fn plain_files_outside_an_activity() {
        let path = std::env::temp_dir().join(format!("openbox-fs-{}.txt", std::process::id()));
        write(&path, "one\ntwo\n").await.unwrap();
        let mut f = File::open(&path).await.unwrap();
        let mut line = String::new();
        assert_eq!(f.read_line(&mut line).await.unwrap(), 4);
        assert_eq!(line, "one\n");
        f.close().await.unwrap();
        assert_eq!(read_to_string(&path).await.unwrap(), "one\ntwo\n");
        std::fs::remove_file(&path).unwrap();
    }
}
