//! Where log lines go: stderr, with the lines of the runtime's worker
//! threads written in batches.
//!
//! One `write` per access-log line was a fifth of a manifest GET's cost on
//! a busy server (the system call, and the lock on stderr the two workers
//! take turns at). So a worker thread appends its informational lines to
//! a buffer of its own and writes the buffer out, whole lines in one
//! `write`:
//! - when the worker runs out of tasks and is about to park (the runtime's
//!   `on_thread_park` hook calls [`on_park`]): on a server that is not
//!   saturated, that is right after the request;
//! - when the buffer holds [`FLUSH_AT`] bytes;
//! - every [`FLUSH_EVERY`], from a thread of its own, for a worker that
//!   stays busy;
//! - before a warning or an error of the same thread, which is written at
//!   once, so a thread's lines keep their order;
//! - at shutdown ([`flush_all`]).
//!
//! A line therefore reaches stderr at most [`FLUSH_EVERY`] after it was
//! logged, and a process killed outright loses at most that much of its
//! informational lines, never a warning. Envoy flushes its access log
//! every second by default; nginx can buffer its own (`buffer=`, `flush=`).
//! Lines of other threads (start-up, the blocking pool) are written at
//! once, as are all warnings and errors.

use std::cell::OnceCell;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// A thread's buffer is written out once it holds this much.
pub const FLUSH_AT: usize = 16 * 1024;
/// The longest a line waits in a buffer.
#[cfg_attr(test, allow(dead_code))]
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A thread's pending lines.
type Buffer = Arc<Mutex<Vec<u8>>>;

/// Every batching thread's buffer, for the periodic and the final flush.
static BUFFERS: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's buffer, once the thread has parked as a runtime worker.
    static LOCAL: OnceCell<Local> = const { OnceCell::new() };
}

/// A thread's registered buffer, written out and unregistered when the
/// thread ends.
struct Local(Buffer);

impl Drop for Local {
    fn drop(&mut self) {
        write_out(&mut lock(&self.0));
        lock(&BUFFERS).retain(|b| !Arc::ptr_eq(b, &self.0));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Write `pending` to stderr and empty it. A failed write drops the lines,
/// as an unbuffered write to a broken stderr would.
fn write_out(pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        #[cfg(not(test))]
        let _ = std::io::stderr().lock().write_all(pending);
        #[cfg(test)]
        lock(&tests::WRITTEN).extend_from_slice(pending);
        pending.clear();
    }
}

/// The runtime's `on_thread_park` hook: from now on this thread batches
/// its lines; those it holds are written out.
pub fn on_park() {
    LOCAL.with(|local| {
        let local = local.get_or_init(|| {
            let buffer = Buffer::default();
            lock(&BUFFERS).push(buffer.clone());
            start_ticker();
            Local(buffer)
        });
        write_out(&mut lock(&local.0));
    });
}

/// Write out every thread's pending lines (at shutdown).
pub fn flush_all() {
    let buffers = lock(&BUFFERS).clone();
    for buffer in buffers {
        write_out(&mut lock(&buffer));
    }
}

/// The thread that writes out the buffers of busy workers (not in unit
/// tests, which check when lines are written).
#[cfg(test)]
fn start_ticker() {}

/// The thread that writes out the buffers of busy workers.
#[cfg(not(test))]
fn start_ticker() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let started = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush_all();
                }
            });
        if let Err(e) = started {
            // Without it a busy worker's lines wait for its next park.
            eprintln!("registry: cannot start the log flush thread: {e}");
        }
    });
}

/// The log's [`MakeWriter`]: stderr, batched as the module says.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

/// One line's writer.
pub enum LineWriter {
    /// Straight to stderr.
    Direct(std::io::Stderr),
    /// Into this thread's buffer.
    Batched,
}

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        match self {
            LineWriter::Direct(stderr) => stderr.write(line),
            LineWriter::Batched => {
                LOCAL.with(|local| match local.get() {
                    Some(local) => {
                        let mut pending = lock(&local.0);
                        pending.extend_from_slice(line);
                        if pending.len() >= FLUSH_AT {
                            write_out(&mut pending);
                        }
                        Ok(line.len())
                    }
                    // Not a batching thread (cannot happen: checked when
                    // the writer was made).
                    None => std::io::stderr().write(line),
                })
            }
        }
    }

    fn write_all(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            LineWriter::Direct(stderr) => stderr.write_all(line),
            LineWriter::Batched => self.write(line).map(drop),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LineWriter::Direct(stderr) => stderr.flush(),
            LineWriter::Batched => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter::Direct(std::io::stderr())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LOCAL.with(|local| match local.get() {
            // INFO, DEBUG, TRACE ("more verbose" compares greater).
            Some(_) if *meta.level() >= Level::INFO => LineWriter::Batched,
            Some(local) => {
                // Keep this thread's order: its pending lines go first.
                write_out(&mut lock(&local.0));
                LineWriter::Direct(std::io::stderr())
            }
            None => LineWriter::Direct(std::io::stderr()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the buffers wrote out (stderr in the server).
    pub(super) static WRITTEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    struct TestCallsite;
    impl tracing::callsite::Callsite for TestCallsite {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unreachable!("not registered")
        }
    }
    static CALLSITE: TestCallsite = TestCallsite;

    fn meta(level: Level) -> Metadata<'static> {
        let fields = tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE));
        let kind = tracing::metadata::Kind::EVENT;
        Metadata::new("event", "test", level, None, None, None, fields, kind)
    }

    fn log(level: Level, line: &[u8]) {
        Stderr
            .make_writer_for(&meta(level))
            .write_all(line)
            .unwrap();
    }

    fn pending_here() -> Vec<u8> {
        LOCAL.with(|l| l.get().map(|l| lock(&l.0).clone()).unwrap_or_default())
    }

    fn written() -> Vec<u8> {
        std::mem::take(&mut lock(&WRITTEN))
    }

    /// The tests share [`WRITTEN`], so they run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_parked_thread_batches_info_and_keeps_its_order() {
        let _serial = lock(&SERIAL);
        written();
        std::thread::spawn(|| {
            // Not parked yet: written at once (to stderr, not captured).
            assert!(matches!(
                Stderr.make_writer_for(&meta(Level::INFO)),
                LineWriter::Direct(_)
            ));
            on_park();
            assert!(matches!(
                Stderr.make_writer_for(&meta(Level::INFO)),
                LineWriter::Batched
            ));
            log(Level::INFO, b"one\n");
            log(Level::DEBUG, b"two\n");
            assert_eq!(pending_here(), b"one\ntwo\n");
            assert_eq!(written(), b"");
            // A warning writes out what is pending first, then itself.
            assert!(matches!(
                Stderr.make_writer_for(&meta(Level::WARN)),
                LineWriter::Direct(_)
            ));
            assert_eq!(written(), b"one\ntwo\n");
            log(Level::INFO, b"three\n");
            on_park();
            assert_eq!(written(), b"three\n");
            let full = vec![b'x'; FLUSH_AT];
            log(Level::INFO, &full);
            assert_eq!(written(), full, "a full buffer is written out");
            log(Level::INFO, b"four\n");
            flush_all();
            assert_eq!(written(), b"four\n");
            assert_eq!(pending_here(), b"");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_that_ends_writes_out_and_unregisters() {
        let _serial = lock(&SERIAL);
        written();
        let before = lock(&BUFFERS).len();
        std::thread::spawn(|| {
            on_park();
            log(Level::INFO, b"last words\n");
        })
        .join()
        .unwrap();
        assert_eq!(lock(&BUFFERS).len(), before);
        assert!(
            written().windows(11).any(|w| w == b"last words\n"),
            "written when the thread ended"
        );
    }
}
