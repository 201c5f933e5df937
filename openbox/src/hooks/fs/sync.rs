//! Governed files for blocking code: the same evaluations as [`crate::fs`], made without
//! stalling an async runtime (see the table in [`crate::hooks`]). [`File`] implements
//! [`std::io::Read`] and [`std::io::Write`]; each call is one governed operation.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use super::{FileState, OpenOptions};
use crate::hooks::HookCall;
use crate::wire::SpanKind;

/// A blocking governed file.
#[derive(Debug)]
pub struct File {
    inner: Option<BufReader<std::fs::File>>,
    state: FileState,
    open_call: Option<HookCall>,
}

impl File {
    /// Opens an existing file for reading (mode `r`).
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<File> {
        Self::open_with(path.as_ref(), OpenOptions::new().read(true))
    }

    /// Creates or truncates a file for writing (mode `w`).
    pub fn create(path: impl AsRef<Path>) -> std::io::Result<File> {
        Self::open_with(
            path.as_ref(),
            OpenOptions::new().write(true).create(true).truncate(true),
        )
    }

    /// Opens `path` with `options` (evaluated first).
    pub fn open_with(path: &Path, options: &OpenOptions) -> std::io::Result<File> {
        let state = FileState::new(path, options.mode());
        let call = HookCall::begin("file.open", SpanKind::Internal, None)
            .map(|c| c.with_attributes(state.attributes()));
        if let Some(call) = &call {
            call.started_blocking(state.span("open", None))?;
        }
        let file = options.std().open(path)?;
        Ok(File {
            inner: Some(BufReader::new(file)),
            state,
            open_call: call,
        })
    }

    fn governed<T>(
        &mut self,
        op: &'static str,
        run: impl FnOnce(&mut BufReader<std::fs::File>) -> std::io::Result<T>,
        counts: impl Fn(&T) -> (Option<u64>, Option<u64>),
    ) -> std::io::Result<T> {
        let call = self.state.operation_call(op, self.open_call.is_some());
        if let Some(call) = &call {
            call.started_blocking(self.state.span(op, None))?;
        }
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the file is closed"))?;
        let result = run(inner);
        match &result {
            Ok(v) => {
                let (r, w) = counts(v);
                self.state.bytes_read += r.unwrap_or(0);
                self.state.bytes_written += w.unwrap_or(0);
                self.state.did(op);
                if let Some(call) = &call {
                    call.completed_blocking(self.state.counted(op, r, w, None))?;
                }
            }
            Err(e) => {
                if let Some(call) = &call {
                    call.completed_blocking(self.state.span(op, Some(e.to_string())))?;
                }
            }
        }
        result
    }

    /// Reads one line (with its newline) into `buf`.
    pub fn read_line(&mut self, buf: &mut String) -> std::io::Result<usize> {
        self.governed(
            "readline",
            |f| f.read_line(buf),
            |n| (Some(*n as u64), None),
        )
    }

    /// Reads to the end, appending to `buf`, as one operation.
    pub fn read_to_string(&mut self, buf: &mut String) -> std::io::Result<usize> {
        self.governed(
            "read",
            |f| f.read_to_string(buf),
            |n| (Some(*n as u64), None),
        )
    }

    /// Writes all of `buf` as one operation.
    pub fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let len = buf.len() as u64;
        self.governed(
            "write",
            |f| f.get_mut().write_all(buf),
            move |_| (None, Some(len)),
        )
    }

    /// Flushes and closes the file, reporting `close` with the totals.
    pub fn close(mut self) -> std::io::Result<()> {
        let flushed = match self.inner.take() {
            Some(mut f) => f.get_mut().flush(),
            None => Ok(()),
        };
        if let Some(call) = self.open_call.take() {
            call.completed_blocking(self.state.close_span())?;
        }
        flushed
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.governed("read", |f| f.read(buf), |n| (Some(*n as u64), None))
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.governed(
            "write",
            |f| f.get_mut().write(buf),
            |n| (None, Some(*n as u64)),
        )
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.inner.as_mut() {
            Some(f) => f.get_mut().flush(),
            None => Ok(()),
        }
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
pub fn read_to_string(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    f.close()?;
    Ok(s)
}

/// Creates or truncates a file and writes `contents`, as governed `open`, `write` and `close`.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(contents.as_ref())?;
    f.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_files_outside_an_activity() {
        let path = std::env::temp_dir().join(format!("openbox-fs-sync-{}.txt", std::process::id()));
        write(&path, "a\nb\n").unwrap();
        let mut f = File::open(&path).unwrap();
        let mut all = String::new();
        std::io::Read::read_to_string(&mut f, &mut all).unwrap();
        assert_eq!(all, "a\nb\n");
        f.close().unwrap();
        assert_eq!(read_to_string(&path).unwrap(), "a\nb\n");
        std::fs::remove_file(&path).unwrap();
    }
}
