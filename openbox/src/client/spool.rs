//! The durable spool: evaluations Core could not answer while the operation went ahead, kept on
//! disk until Core can be told about them late.
//!
//! The directory holds numbered segment files (`<seq>.spool`) of one record per line —
//! `<event id>\t<body as sent>\n` — and a `cursor` file naming the first record not yet
//! delivered. A process appends to a segment of its own (a new one at every start), so a record
//! torn by a crash is always the last of its segment: a line without its newline, skipped and
//! counted when it is read. Records are written with one `write` each, so a process killed with
//! SIGKILL loses at most the record it was writing; the kernel keeps what was written (the
//! spool does not `fsync`: it survives the process, not the machine losing power).
//!
//! The spool is bounded in bytes on disk: when a record would not fit, whole segments are
//! deleted oldest first, their undelivered records counted as dropped. One process owns the
//! directory at a time (an exclusive lock on `lock`).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::SpoolSettings;
use crate::metrics::{SPOOL_BYTES, SPOOL_EVENTS};

const SEGMENT_SUFFIX: &str = ".spool";
const CURSOR_FILE: &str = "cursor";
const LOCK_FILE: &str = "lock";

/// What the spool has done since the process started, and how its backlog stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct SpoolStats {
    /// Events written to the spool.
    pub spooled: u64,
    /// Spooled events Core answered late.
    pub delivered: u64,
    /// Undelivered events deleted to keep the spool within its bound.
    pub dropped: u64,
    /// Records found torn (a crash mid-write) or unreadable, skipped.
    pub torn: u64,
    /// Spooled events Core refused for good (a 4xx other than 401/403/429), skipped.
    pub rejected: u64,
    /// Late verdicts that would have stopped or changed the operation had they come in time.
    pub late_interventions: u64,
    /// Events not delivered yet.
    pub pending: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// How long ago the oldest event not delivered yet happened (`None` when none waits, or
    /// before late delivery has read it).
    pub oldest_pending_age: Option<std::time::Duration>,
    /// Events answered late per second, over the last 10 seconds.
    pub drain_per_second: f64,
}

/// A record read from the spool, and the position after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) event_id: String,
    pub(crate) body: Vec<u8>,
    pub(crate) event_type: String,
    /// The workflow run the event belongs to (`workflow_id` and `run_id`), empty when the body
    /// names none: late delivery keeps each run's events in order.
    pub(crate) lane: String,
    /// When the event happened (its `timestamp`), when readable.
    pub(crate) happened: Option<std::time::SystemTime>,
    /// Where the next record starts.
    pub(crate) next: Position,
}

#[cfg(test)]
impl Record {
    /// A record of run `lane` ending at `offset` of segment 1 (for the delivery plan's tests).
    pub(crate) fn for_test(lane: &str, offset: u64) -> Self {
        Record {
            event_id: format!("e{offset}"),
            body: b"{}".to_vec(),
            event_type: "ActivityStarted".into(),
            lane: lane.into(),
            happened: None,
            next: Position { seq: 1, offset },
        }
    }
}

/// A place in the spool: a segment and an offset in it. Ordered as the records are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Position {
    seq: u64,
    offset: u64,
}

/// What reading the spool ahead of the cursor finds, in order.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A record to deliver.
    Record(Record),
    /// A complete line that cannot be read: passed over in order, counted as torn.
    Unreadable {
        /// Where the next record starts.
        next: Position,
    },
}

impl Entry {
    /// Where the next record starts.
    pub(crate) fn next(&self) -> Position {
        match self {
            Entry::Record(r) => r.next,
            Entry::Unreadable { next } => *next,
        }
    }
}

/// What became of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Core answered it late.
    Delivered,
    /// Core refused it for good.
    Rejected,
    /// It could not be read.
    Torn,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Size on disk.
    bytes: u64,
    /// Records after the cursor (all of them for a segment past it).
    pending: u64,
}

#[derive(Debug)]
struct State {
    /// Oldest first; the cursor is in the first one.
    segments: VecDeque<Segment>,
    /// This process's segment, open for appending: always the last one.
    writer: Option<(u64, File)>,
    next_seq: u64,
    cursor: Position,
    bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    spooled: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    torn: AtomicU64,
    rejected: AtomicU64,
    late_interventions: AtomicU64,
}

/// An open spool directory.
#[derive(Debug)]
pub(crate) struct Spool {
    settings: SpoolSettings,
    segment_bytes: u64,
    state: Mutex<State>,
    counters: Counters,
    /// Held for the lock on `lock`.
    _lock: File,
}

/// A spool that cannot be opened.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The directory is in use by another process.
    #[error("the spool directory {dir} is in use by another process")]
    InUse {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory is a symbolic link, or others than its owner can access it. It holds the
    /// bodies of governance events (what activities did, with their inputs), so it must be
    /// private: a directory only its owner can enter (mode `0700`), not a link to elsewhere.
    #[error("the spool directory {dir} is not private: {reason}")]
    NotPrivate {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory cannot be created, read or written.
    #[error("cannot use the spool directory {dir}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: std::sync::Arc<io::Error>,
    },
}

/// The text of a spool file (not through a symbolic link).
fn read_to_string(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    io::Read::read_to_string(&mut read_options().read(true).open(path)?, &mut text)?;
    Ok(text)
}

fn segment_name(seq: u64) -> String {
    format!("{seq:020}{SEGMENT_SUFFIX}")
}

/// Options for a file of the spool created by this process: readable by its owner only, and
/// never opened through a symbolic link planted in its place.
fn create_options() -> OpenOptions {
    let mut options = read_options();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Options for any file of the spool: a symbolic link in its place is an error, not followed.
fn read_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options
}

/// Refuses a spool directory that is a symbolic link, not a directory, or open to others
/// (a directory created here is `0700`; one that existed keeps its mode, so it is checked).
fn check_private(dir: &Path) -> Result<(), SpoolError> {
    let refuse = |reason: String| SpoolError::NotPrivate {
        dir: dir.to_owned(),
        reason,
    };
    let meta = fs::symlink_metadata(dir).map_err(|e| SpoolError::Io {
        dir: dir.to_owned(),
        source: std::sync::Arc::new(e),
    })?;
    if meta.file_type().is_symlink() {
        return Err(refuse(
            "it is a symbolic link; name the directory itself".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(refuse("it is not a directory".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(refuse(format!(
                "its mode is {mode:04o}, so others can access it; make it 0700 (chmod 700)"
            )));
        }
    }
    Ok(())
}

impl Spool {
    /// Opens (or creates) the spool directory and takes its lock. Blocking.
    pub(crate) fn open(settings: SpoolSettings) -> Result<Self, SpoolError> {
        let dir = settings.dir().to_owned();
        let io_error = |source| SpoolError::Io {
            dir: dir.clone(),
            source: std::sync::Arc::new(source),
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(io_error)?;
        check_private(&dir)?;
        let lock = create_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::InUse { dir }),
            Err(fs::TryLockError::Error(e)) => return Err(io_error(e)),
        }
        let state = Self::scan(&dir).map_err(io_error)?;
        let spool = Spool {
            segment_bytes: (settings.max_bytes() / 4).max(1),
            settings,
            state: Mutex::new(state),
            counters: Counters::default(),
            _lock: lock,
        };
        spool.publish_bytes(&spool.lock());
        Ok(spool)
    }

    /// Reads what a previous process left: segments, the cursor, records not delivered yet.
    fn scan(dir: &Path) -> io::Result<State> {
        let mut seqs: Vec<u64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(SEGMENT_SUFFIX)
                .and_then(|s| s.parse().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let cursor = read_to_string(&dir.join(CURSOR_FILE))
            .ok()
            .and_then(|s| {
                let (seq, offset) = s.trim().split_once(' ')?;
                Some(Position {
                    seq: seq.parse().ok()?,
                    offset: offset.parse().ok()?,
                })
            })
            .unwrap_or(Position { seq: 0, offset: 0 });
        let mut segments = VecDeque::new();
        let mut bytes = 0;
        for seq in &seqs {
            let path = dir.join(segment_name(*seq));
            if *seq < cursor.seq {
                fs::remove_file(&path)?; // delivered before the last stop
                continue;
            }
            let from = if *seq == cursor.seq { cursor.offset } else { 0 };
            let (size, pending) = count_lines(&path, from)?;
            bytes += size;
            segments.push_back(Segment {
                seq: *seq,
                bytes: size,
                pending,
            });
        }
        let cursor = match segments.front() {
            Some(first) if first.seq == cursor.seq => cursor,
            Some(first) => Position {
                seq: first.seq,
                offset: 0,
            },
            None => cursor,
        };
        Ok(State {
            next_seq: seqs
                .last()
                .map_or(cursor.seq, |s| s + 1)
                .max(cursor.seq + 1),
            segments,
            writer: None,
            cursor,
            bytes,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dir(&self) -> &Path {
        self.settings.dir()
    }

    /// The pace of late delivery.
    pub(crate) fn replay_per_second(&self) -> u32 {
        self.settings.replay_per_second()
    }

    /// Late deliveries in flight at most.
    pub(crate) fn replay_concurrency(&self) -> u32 {
        self.settings.replay_concurrency()
    }

    /// Events not delivered yet.
    pub(crate) fn pending(&self) -> u64 {
        self.lock().segments.iter().map(|s| s.pending).sum()
    }

    /// Appends one event (the exact bytes sent to Core). Blocking: one `write`.
    pub(crate) fn append(&self, event_id: &str, body: &[u8]) -> io::Result<()> {
        let mut line = Vec::with_capacity(event_id.len() + body.len() + 2);
        line.extend_from_slice(event_id.as_bytes());
        line.push(b'\t');
        line.extend_from_slice(body);
        line.push(b'\n');
        let len = line.len() as u64;
        if len > self.settings.max_bytes() || body.contains(&b'\n') {
            self.count_dropped(1);
            return Ok(());
        }
        let mut state = self.lock();
        let rotate = match (&state.writer, state.segments.back()) {
            (Some((seq, _)), Some(last)) => {
                last.seq != *seq || last.bytes + len > self.segment_bytes
            }
            _ => true,
        };
        if rotate {
            let seq = state.next_seq;
            let file = create_options()
                .append(true)
                .create_new(true)
                .open(self.dir().join(segment_name(seq)))?;
            state.next_seq += 1;
            state.writer = Some((seq, file));
            state.segments.push_back(Segment {
                seq,
                bytes: 0,
                pending: 0,
            });
        }
        while state.bytes + len > self.settings.max_bytes() && state.segments.len() > 1 {
            self.drop_oldest(&mut state)?;
        }
        let Some((_, file)) = state.writer.as_mut() else {
            return Ok(());
        };
        if let Err(e) = file.write_all(&line) {
            // Whatever part was written ends this segment; the next record starts a new one.
            state.writer = None;
            ::metrics::counter!(SPOOL_EVENTS, "outcome" => "write_failed").increment(1);
            return Err(e);
        }
        state.bytes += len;
        if let Some(last) = state.segments.back_mut() {
            last.bytes += len;
            last.pending += 1;
        }
        self.counters.spooled.fetch_add(1, Ordering::Relaxed);
        ::metrics::counter!(SPOOL_EVENTS, "outcome" => "spooled").increment(1);
        self.publish_bytes(&state);
        Ok(())
    }

    /// Deletes the oldest segment, counting what it held undelivered.
    fn drop_oldest(&self, state: &mut State) -> io::Result<()> {
        let Some(oldest) = state.segments.pop_front() else {
            return Ok(());
        };
        fs::remove_file(self.dir().join(segment_name(oldest.seq)))?;
        state.bytes -= oldest.bytes;
        self.count_dropped(oldest.pending);
        if let Some(next) = state.segments.front() {
            state.cursor = Position {
                seq: next.seq,
                offset: 0,
            };
            self.write_cursor(state.cursor)?;
        }
        tracing::warn!(
            dropped = oldest.pending,
            max_bytes = self.settings.max_bytes(),
            "OpenBox spool full: oldest undelivered events dropped"
        );
        Ok(())
    }

    fn count_dropped(&self, n: u64) {
        if n > 0 {
            self.counters.dropped.fetch_add(n, Ordering::Relaxed);
            ::metrics::counter!(SPOOL_EVENTS, "outcome" => "dropped").increment(n);
        }
    }

    /// Up to `max` entries from `from` on (from the cursor when that is further: the oldest
    /// segments may have been dropped meanwhile), and where reading stopped. Blocking; the
    /// files are read without holding the spool's lock, so appends go on meanwhile.
    pub(crate) fn read_from(
        &self,
        from: Position,
        max: usize,
    ) -> io::Result<(Vec<Entry>, Position)> {
        let (seqs, writing, cursor) = {
            let state = self.lock();
            let seqs: Vec<u64> = state.segments.iter().map(|s| s.seq).collect();
            (seqs, state.writer.as_ref().map(|(w, _)| *w), state.cursor)
        };
        let mut pos = from.max(cursor);
        let mut out = Vec::new();
        let start = pos.seq;
        for seq in seqs.into_iter().filter(|s| *s >= start) {
            if seq > pos.seq {
                pos = Position { seq, offset: 0 };
            }
            let file = match read_options()
                .read(true)
                .open(self.dir().join(segment_name(seq)))
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // dropped meanwhile
                Err(e) => return Err(e),
            };
            let mut reader = BufReader::new(file);
            reader.seek(SeekFrom::Start(pos.offset))?;
            let mut line = Vec::new();
            loop {
                if out.len() >= max {
                    return Ok((out, pos));
                }
                line.clear();
                let read = reader.read_until(b'\n', &mut line)? as u64;
                if read == 0 {
                    break;
                }
                if line.last() != Some(&b'\n') {
                    if writing == Some(seq) {
                        return Ok((out, pos)); // still being written
                    }
                    // The tail a crash left in a finished segment.
                    self.counters.torn.fetch_add(1, Ordering::Relaxed);
                    ::metrics::counter!(SPOOL_EVENTS, "outcome" => "torn").increment(1);
                    pos.offset += read;
                    break;
                }
                let next = Position {
                    seq,
                    offset: pos.offset + read,
                };
                out.push(match parse_record(&line, next) {
                    Some(record) => Entry::Record(record),
                    None => Entry::Unreadable { next },
                });
                pos = next;
            }
            if writing == Some(seq) {
                break; // this process's segment: nothing comes after it yet
            }
        }
        Ok((out, pos))
    }

    /// Records that the entries ending at `done` (in spool order, each after the cursor) were
    /// handled, moves the cursor past them and deletes the segments left behind. Blocking. A
    /// crash before the cursor is written delivers those records again; Core tells the two
    /// deliveries apart by the event id.
    pub(crate) fn advance(&self, done: &[(Position, Outcome)]) -> io::Result<()> {
        let mut state = self.lock();
        let mut moved = false;
        for (next, outcome) in done {
            moved |= self.release_before(&mut state, next.seq)?;
            let cursor = state.cursor;
            let Some(first) = state.segments.front_mut() else {
                continue;
            };
            if first.seq != next.seq || *next <= cursor {
                continue; // dropped meanwhile, or already passed
            }
            first.pending = first.pending.saturating_sub(1);
            state.cursor = *next;
            moved = true;
            let (counter, label) = match outcome {
                Outcome::Delivered => (&self.counters.delivered, "delivered"),
                Outcome::Rejected => (&self.counters.rejected, "rejected"),
                Outcome::Torn => (&self.counters.torn, "torn"),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            ::metrics::counter!(SPOOL_EVENTS, "outcome" => label).increment(1);
        }
        // A finished segment read to its end goes at once.
        let finished = state.segments.front().is_some_and(|first| {
            state.writer.as_ref().is_none_or(|(w, _)| *w != first.seq)
                && state.cursor.seq == first.seq
                && state.cursor.offset >= first.bytes
        });
        if finished {
            let next_seq = state.segments.get(1).map_or(state.next_seq, |s| s.seq);
            moved |= self.release_before(&mut state, next_seq)?;
        }
        if moved {
            self.write_cursor(state.cursor)?;
            self.publish_bytes(&state);
        }
        Ok(())
    }

    /// Deletes the segments before `seq` (read to their end), moving the cursor to the first
    /// one left. `true` when something was deleted.
    fn release_before(&self, state: &mut State, seq: u64) -> io::Result<bool> {
        let mut released = false;
        while let Some(first) = state.segments.front() {
            let writing = state.writer.as_ref().is_some_and(|(w, _)| *w == first.seq);
            if first.seq >= seq || writing {
                break;
            }
            let first = state.segments.pop_front().expect("a front segment");
            fs::remove_file(self.dir().join(segment_name(first.seq)))?;
            state.bytes = state.bytes.saturating_sub(first.bytes);
            state.cursor = Position {
                seq: state.segments.front().map_or(state.next_seq, |s| s.seq),
                offset: 0,
            };
            released = true;
        }
        Ok(released)
    }

    /// Counts a late verdict that would have stopped or changed the operation.
    pub(crate) fn late_intervention(&self) {
        self.counters
            .late_interventions
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the cursor atomically (a temporary file renamed over the old one).
    fn write_cursor(&self, at: Position) -> io::Result<()> {
        let tmp = self.dir().join("cursor.tmp");
        // Whatever is in its place (a file left by a crash, a planted link) goes first: the
        // new one is created, never opened.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = create_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(format!("{} {}\n", at.seq, at.offset).as_bytes())?;
        fs::rename(&tmp, self.dir().join(CURSOR_FILE))
    }

    fn publish_bytes(&self, state: &State) {
        ::metrics::gauge!(SPOOL_BYTES).set(state.bytes as f64);
    }

    /// What the spool holds and has done.
    pub(crate) fn stats(&self) -> SpoolStats {
        let state = self.lock();
        let c = &self.counters;
        SpoolStats {
            spooled: c.spooled.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            torn: c.torn.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            late_interventions: c.late_interventions.load(Ordering::Relaxed),
            pending: state.segments.iter().map(|s| s.pending).sum(),
            bytes: state.bytes,
            oldest_pending_age: None,
            drain_per_second: 0.0,
        }
    }
}

/// `(size, complete lines after offset)` of a segment file.
fn count_lines(path: &Path, from: u64) -> io::Result<(u64, u64)> {
    let file = read_options().read(true).open(path)?;
    let size = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(from.min(size)))?;
    let mut lines = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            lines += 1;
        }
    }
    Ok((size, lines))
}

/// A record line: the event id, a tab, a JSON object with an `event_type`, a newline.
fn parse_record(line: &[u8], next: Position) -> Option<Record> {
    #[derive(serde::Deserialize)]
    struct Head {
        event_type: String,
        #[serde(default)]
        workflow_id: Option<String>,
        #[serde(default)]
        run_id: Option<String>,
        #[serde(default)]
        timestamp: Option<String>,
    }
    let line = line.strip_suffix(b"\n")?;
    let tab = line.iter().position(|b| *b == b'\t')?;
    let (id, body) = (&line[..tab], &line[tab + 1..]);
    let event_id = std::str::from_utf8(id).ok()?;
    if event_id.is_empty() || !event_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let head: Head = serde_json::from_slice(body).ok()?;
    let lane = match (&head.workflow_id, &head.run_id) {
        (Some(workflow), Some(run)) => format!("{workflow}\u{1f}{run}"),
        _ => String::new(),
    };
    let happened = head
        .timestamp
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(std::time::SystemTime::from);
    Some(Record {
        event_id: event_id.to_owned(),
        body: body.to_vec(),
        event_type: head.event_type,
        lane,
        happened,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MIN_SPOOL_MAX_BYTES;
    use proptest::prelude::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "openbox-spool-{tag}-{}-{}",
            std::process::id(),
            crate::ids::new_span_id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// Creates `dir` as the spool would: `0700`.
    fn private_dir(dir: &Path) {
        let mut builder = fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).expect("dir");
    }

    fn body(i: usize) -> Vec<u8> {
        format!(r#"{{"event_type":"ActivityStarted","n":{i}}}"#).into_bytes()
    }

    /// The oldest record not delivered yet, delivered.
    fn deliver_one(spool: &Spool) -> Option<Record> {
        loop {
            let (mut entries, _) = spool.read_from(Position::default(), 1).expect("readable");
            let entry = entries.pop()?;
            match entry {
                Entry::Record(r) => {
                    spool
                        .advance(&[(r.next, Outcome::Delivered)])
                        .expect("advanced");
                    return Some(r);
                }
                Entry::Unreadable { next } => {
                    spool.advance(&[(next, Outcome::Torn)]).expect("advanced")
                }
            }
        }
    }

    fn drain(spool: &Spool) -> Vec<String> {
        std::iter::from_fn(|| deliver_one(spool))
            .map(|r| r.event_id)
            .collect()
    }

    #[test]
    fn delivers_in_order_across_restarts_and_deletes_what_is_delivered() {
        let dir = temp_dir("order");
        let spool = Spool::open(SpoolSettings::new(&dir)).expect("opens");
        for i in 0..5 {
            spool.append(&format!("e{i}"), &body(i)).expect("appended");
        }
        deliver_one(&spool).expect("a record");
        assert_eq!(spool.stats().pending, 4);
        drop(spool);

        let spool = Spool::open(SpoolSettings::new(&dir)).expect("reopens");
        spool.append("e5", &body(5)).expect("appended");
        assert_eq!(drain(&spool), ["e1", "e2", "e3", "e4", "e5"]);
        let stats = spool.stats();
        assert_eq!((stats.pending, stats.delivered), (0, 5));
        drop(spool);
        let spool = Spool::open(SpoolSettings::new(&dir)).expect("reopens");
        assert!(drain(&spool).is_empty(), "nothing is delivered twice");
        let segments = fs::read_dir(&dir)
            .expect("dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(SEGMENT_SUFFIX))
            })
            .count();
        assert!(segments <= 1, "delivered segments are deleted: {segments}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_last_record_is_skipped_and_counted() {
        let dir = temp_dir("torn");
        let spool = Spool::open(SpoolSettings::new(&dir)).expect("opens");
        spool.append("a", &body(0)).expect("appended");
        spool.append("b", &body(1)).expect("appended");
        drop(spool);
        let segment = dir.join(segment_name(1));
        let mut file = OpenOptions::new()
            .append(true)
            .open(&segment)
            .expect("segment");
        file.write_all(b"c\t{\"event_type\":\"Activ")
            .expect("torn write");
        drop(file);
        let spool = Spool::open(SpoolSettings::new(&dir)).expect("reopens");
        assert_eq!(spool.stats().pending, 2);
        spool.append("d", &body(3)).expect("appended");
        assert_eq!(drain(&spool), ["a", "b", "d"]);
        assert_eq!(spool.stats().torn, 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_counts_them() {
        let dir = temp_dir("bound");
        let settings = SpoolSettings::new(&dir).with_max_bytes(MIN_SPOOL_MAX_BYTES);
        let spool = Spool::open(settings).expect("opens");
        let big = format!(r#"{{"event_type":"X","pad":"{}"}}"#, "p".repeat(1000)).into_bytes();
        for i in 0..200 {
            spool.append(&format!("e{i}"), &big).expect("appended");
            assert!(spool.stats().bytes <= MIN_SPOOL_MAX_BYTES);
        }
        let stats = spool.stats();
        assert!(stats.dropped > 0);
        assert_eq!(stats.dropped + stats.pending, 200);
        let ids = drain(&spool);
        assert_eq!(ids.last().map(String::as_str), Some("e199"));
        let numbers: Vec<usize> = ids.iter().map(|i| i[1..].parse().expect("n")).collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, oldest gone"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_process_at_a_time_and_bad_settings_are_named() {
        let dir = temp_dir("lock");
        let _first = Spool::open(SpoolSettings::new(&dir)).expect("opens");
        assert!(matches!(
            Spool::open(SpoolSettings::new(&dir)),
            Err(SpoolError::InUse { .. })
        ));
        assert!(
            SpoolSettings::new(&dir)
                .with_max_bytes(10)
                .problem()
                .is_some()
        );
        assert!(
            SpoolSettings::new(&dir)
                .with_replay_per_second(0)
                .problem()
                .is_some()
        );
        assert!(SpoolSettings::new(&dir).problem().is_none());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_others_can_reach_is_refused_by_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("open");
        private_dir(&dir);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = Spool::open(SpoolSettings::new(&dir)).expect_err("refused");
        assert!(matches!(err, SpoolError::NotPrivate { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains(&dir.display().to_string()), "{shown}");
        assert!(shown.contains("0755") && shown.contains("0700"), "{shown}");
        assert!(!dir.join(LOCK_FILE).exists(), "nothing is written into it");
        // Made private, it is used.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        drop(Spool::open(SpoolSettings::new(&dir)).expect("opens"));

        // A new directory is created private.
        let fresh = temp_dir("fresh");
        drop(Spool::open(SpoolSettings::new(&fresh)).expect("opens"));
        let mode = fs::metadata(&fresh).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&fresh);
    }

    #[test]
    fn a_symbolic_link_is_refused_as_the_directory() {
        let real = temp_dir("real");
        private_dir(&real);
        let link = temp_dir("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let err = Spool::open(SpoolSettings::new(&link)).expect_err("refused");
        assert!(matches!(err, SpoolError::NotPrivate { .. }), "{err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!real.join(LOCK_FILE).exists());
        let _ = fs::remove_file(&link);
        let _ = fs::remove_dir_all(&real);
    }

    /// `lock`, `cursor` and the cursor's temporary file are never opened through a link
    /// planted in their place: the file it points to is left as it was.
    #[test]
    fn files_planted_as_symbolic_links_are_not_followed() {
        let victim_dir = temp_dir("victim");
        private_dir(&victim_dir);
        let victim = victim_dir.join("victim.txt");
        fs::write(&victim, "precious").expect("victim");

        let dir = temp_dir("planted-lock");
        private_dir(&dir);
        std::os::unix::fs::symlink(&victim, dir.join(LOCK_FILE)).expect("symlink");
        assert!(matches!(
            Spool::open(SpoolSettings::new(&dir)),
            Err(SpoolError::Io { .. })
        ));

        let dir2 = temp_dir("planted-cursor");
        private_dir(&dir2);
        std::os::unix::fs::symlink(&victim, dir2.join("cursor.tmp")).expect("symlink");
        std::os::unix::fs::symlink(&victim, dir2.join(CURSOR_FILE)).expect("symlink");
        let spool = Spool::open(SpoolSettings::new(&dir2)).expect("opens");
        spool.append("a", &body(0)).expect("appended");
        deliver_one(&spool).expect("a record");
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious");
        let cursor = fs::symlink_metadata(dir2.join(CURSOR_FILE)).expect("cursor");
        assert!(
            cursor.is_file(),
            "the link was replaced by the spool's own file"
        );
        for d in [&dir, &dir2, &victim_dir] {
            let _ = fs::remove_dir_all(d);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever bytes a segment holds, reading it never panics, and every record read is a
        /// well-formed one.
        #[test]
        fn any_segment_content_reads_without_panic(content in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = temp_dir("prop");
            private_dir(&dir);
            fs::write(dir.join(segment_name(1)), &content).expect("segment");
            let spool = Spool::open(SpoolSettings::new(&dir)).expect("opens");
            let mut n = 0;
            while let Some(r) = deliver_one(&spool) {
                prop_assert!(!r.event_id.is_empty());
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_ok());
                n += 1;
                prop_assert!(n <= content.len());
            }
            let _ = fs::remove_dir_all(&dir);
        }

        /// A record parses back to what was appended.
        #[test]
        fn records_round_trip(id in "[a-z0-9]{1,32}", text in ".*") {
            let body = serde_json::to_vec(&serde_json::json!({"event_type": "E", "text": text})).expect("json");
            let mut line = format!("{id}\t").into_bytes();
            line.extend_from_slice(&body);
            line.push(b'\n');
            let record = parse_record(&line, Position { seq: 1, offset: 0 }).expect("parses");
            prop_assert_eq!(record.event_id, id);
            prop_assert_eq!(record.body, body);
        }
    }
}
