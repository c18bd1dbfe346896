//! The one writer of the audit trail: a thread that takes queued lines in batches, so no
//! actix worker ever waits on stdout or the disk. Callers append to a shared buffer and wake
//! the thread only when it sleeps; after each batch the thread lingers a few milliseconds, so
//! under load it wakes and writes a few hundred times a second, not once per line. A full
//! queue makes callers wait (back-pressure), never drops a line.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// Lines waiting for the writer; beyond this, callers wait.
const QUEUE_LINES: usize = 4096;
/// How long the writer lets lines gather after a batch. A line reaches the disk at most this
/// much later than it would with a write per line; `flush` and shutdown do not wait for it.
const LINGER: Duration = Duration::from_millis(5);
/// A batch buffer that grew beyond this under a burst is not kept for the next batch.
const KEEP_BUFFER_BYTES: usize = 256 * 1024;

pub struct AuditWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer: a first line while it sleeps, a flush request, shutdown.
    wake: Condvar,
    /// Wakes callers waiting for room in a full queue.
    room: Notify,
    /// The sequence number of the last line written and flushed.
    written: watch::Sender<u64>,
}

#[derive(Default)]
struct Queue {
    /// Queued lines, each with its newline, back to back.
    bytes: Vec<u8>,
    lines: usize,
    /// Sequence number of the last line queued (lines ever queued).
    queued: u64,
    writer_sleeping: bool,
    flush_requested: bool,
    closed: bool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock cannot leave the queue half-updated (appends and
        // swaps are single steps), so a poisoned lock is still a usable queue.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends the line if there is room; hands it back if the queue is full.
    fn try_push(&self, line: Vec<u8>) -> Result<(), Vec<u8>> {
        let mut queue = self.queue();
        if queue.closed {
            drop(queue);
            tracing::error!("the audit writer has stopped; an audit event was not written");
            return Ok(());
        }
        if queue.lines >= QUEUE_LINES {
            return Err(line);
        }
        queue.bytes.extend_from_slice(&line);
        queue.lines += 1;
        queue.queued += 1;
        let wake = std::mem::take(&mut queue.writer_sleeping);
        drop(queue);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn push(&self, mut line: Vec<u8>) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the attempt: a batch taken between a failed attempt and the
            // wait still wakes this caller.
            room.as_mut().enable();
            match self.try_push(line) {
                Ok(()) => return,
                Err(refused) => line = refused,
            }
            room.await;
        }
    }
}

impl AuditWriter {
    /// Starts the writer thread. `stdout` and `file` are the destinations.
    pub fn start(stdout: bool, file: Option<File>) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            room: Notify::new(),
            written: watch::Sender::new(0),
        });
        let destinations = Destinations {
            stdout: stdout.then(io::stdout),
            file,
        };
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || run(&shared, destinations))?
        };
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues one line (with its newline); waits while the queue is full.
    pub async fn write(&self, line: Vec<u8>) {
        self.shared.push(line).await;
    }

    /// Queues the line in `slot`, waiting while the queue is full. If the caller's future is
    /// dropped while it waits, the line is still in `slot`, for the caller to hand over some
    /// other way ([`Self::write_detached`]).
    pub async fn write_from(&self, slot: &mut Option<Vec<u8>>) {
        while let Some(line) = slot.take() {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if let Err(refused) = self.shared.try_push(line) {
                *slot = Some(refused);
                room.await;
            }
        }
    }

    /// Queues one line without waiting, from code that cannot await; a full queue hands the
    /// line to a task that waits for room, so the line is still written.
    pub fn write_detached(&self, line: Vec<u8>) {
        if let Err(line) = self.shared.try_push(line) {
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move { shared.push(line).await });
        }
    }

    /// Returns once every line queued before the call is written and flushed.
    pub async fn flush(&self) {
        let target = {
            let mut queue = self.shared.queue();
            if queue.closed || *self.shared.written.borrow() >= queue.queued {
                return;
            }
            queue.flush_requested = true;
            queue.queued
        };
        self.shared.wake.notify_one();
        let mut written = self.shared.written.subscribe();
        // An error means the writer thread is gone; nothing more will be written.
        let _ = written.wait_for(|written| *written >= target).await;
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // The thread drains the queue once it sees `closed`; wait for it so the last lines
        // reach the disk before the process exits.
        self.shared.queue().closed = true;
        self.shared.wake.notify_one();
        let thread = match self.thread.get_mut() {
            Ok(thread) => thread.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

struct Destinations {
    stdout: Option<io::Stdout>,
    file: Option<File>,
}

impl Destinations {
    /// One `write` per destination for the whole batch; the file is unbuffered, so a written
    /// batch is in the kernel's hands.
    fn write_batch(&mut self, batch: &[u8]) -> io::Result<()> {
        if let Some(stdout) = &mut self.stdout {
            let mut stdout = stdout.lock();
            stdout.write_all(batch)?;
            stdout.flush()?;
        }
        if let Some(file) = &mut self.file {
            file.write_all(batch)?;
        }
        Ok(())
    }
}

fn run(shared: &Shared, mut destinations: Destinations) {
    let mut batch = Vec::new();
    let mut failed_before = false;
    loop {
        let (upto, closing) = {
            let mut queue = shared.queue();
            while queue.bytes.is_empty() && !queue.flush_requested && !queue.closed {
                queue.writer_sleeping = true;
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            queue.writer_sleeping = false;
            queue.flush_requested = false;
            std::mem::swap(&mut queue.bytes, &mut batch);
            queue.lines = 0;
            (queue.queued, queue.closed)
        };
        shared.room.notify_waiters();
        match destinations.write_batch(&batch) {
            Err(error) if !failed_before => {
                tracing::error!(error = %error, "cannot write the audit trail");
                failed_before = true;
            }
            Err(_) => {}
            Ok(()) => failed_before = false,
        }
        shared.written.send_replace(upto);
        batch.clear();
        if batch.capacity() > KEEP_BUFFER_BYTES {
            batch = Vec::new();
        }
        if closing {
            return;
        }
        linger(shared);
    }
}

/// Lets lines gather for a moment; a flush request or shutdown cuts it short.
fn linger(shared: &Shared) {
    let queue = shared.queue();
    let _ = shared.wake.wait_timeout_while(queue, LINGER, |queue| {
        !queue.flush_requested && !queue.closed
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_every_line_in_order_and_flushes_on_demand() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("audit.jsonl");
        let writer = AuditWriter::start(false, Some(File::create(&path).unwrap())).unwrap();

        for index in 0..10_000 {
            writer.write(format!("{index}\n").into_bytes()).await;
        }
        writer.flush().await;

        let contents = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = contents.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(index, line)| *line == index.to_string())
        );
    }

    #[tokio::test]
    async fn a_line_reaches_the_file_without_a_flush() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("audit.jsonl");
        let writer = AuditWriter::start(false, Some(File::create(&path).unwrap())).unwrap();

        writer.write(b"first\n".to_vec()).await;
        let first = wait_for_contents(&path, "first\n").await;
        writer.write(b"second\n".to_vec()).await;
        let both = wait_for_contents(&path, "first\nsecond\n").await;

        assert!(first && both, "the sleeping writer was not woken");
    }

    async fn wait_for_contents(path: &std::path::Path, expected: &str) -> bool {
        for _ in 0..200 {
            if std::fs::read_to_string(path).unwrap() == expected {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn writes_what_is_queued_before_it_is_dropped() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("audit.jsonl");
        let writer = AuditWriter::start(false, Some(File::create(&path).unwrap())).unwrap();

        writer.write(b"last words\n".to_vec()).await;
        drop(writer);

        assert_eq!(std::fs::read_to_string(&path).unwrap(), "last words\n");
    }
}
