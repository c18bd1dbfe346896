//! The one writer of the audit trail: a thread fed through a bounded channel, so no actix
//! worker ever waits on stdout or the disk, and lines are flushed in batches when the
//! channel runs empty. A full channel makes callers wait (back-pressure), never drops a line.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

/// Lines waiting for the writer; beyond this, callers wait.
const QUEUE_LINES: usize = 4096;

enum Command {
    Line(Vec<u8>),
    /// Write everything queued before this, flush, then answer.
    Flush(oneshot::Sender<()>),
}

pub struct AuditWriter {
    sender: mpsc::Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Starts the writer thread. `stdout` and `file` are the destinations.
    pub fn start(stdout: bool, file: Option<File>) -> io::Result<Self> {
        let (sender, receiver) = mpsc::channel(QUEUE_LINES);
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(receiver, stdout, file))?;
        Ok(Self {
            sender,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues one line (with its newline); waits while the queue is full.
    pub async fn write(&self, line: Vec<u8>) {
        if let Err(mpsc::error::SendError(_)) = self.sender.send(Command::Line(line)).await {
            tracing::error!("the audit writer has stopped; an audit event was not written");
        }
    }

    /// Queues one line without waiting, from code that cannot await; a full queue hands the
    /// line to a task that waits for room, so the line is still written.
    pub fn write_detached(&self, line: Vec<u8>) {
        match self.sender.try_send(Command::Line(line)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                let sender = self.sender.clone();
                tokio::spawn(async move {
                    if sender.send(command).await.is_err() {
                        tracing::error!(
                            "the audit writer has stopped; an audit event was not written"
                        );
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit writer has stopped; an audit event was not written");
            }
        }
    }

    /// Returns once every line queued before the call is written and flushed.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.sender.send(Command::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // The thread ends once the channel closes (it drains first); wait for it so the last
        // lines reach the disk before the process exits.
        let thread = match self.thread.get_mut() {
            Ok(thread) => thread.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let (sender, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.sender, sender));
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn run(mut receiver: mpsc::Receiver<Command>, stdout: bool, file: Option<File>) {
    let mut file = file.map(BufWriter::new);
    let mut out = stdout.then(|| BufWriter::new(io::stdout()));
    let mut failed_before = false;
    while let Some(command) = receiver.blocking_recv() {
        let result = match command {
            Command::Line(line) => {
                let written = write_line(&mut out, &mut file, &line);
                // Flush when the queue runs empty: one flush per burst, not per line.
                if receiver.is_empty() {
                    written.and_then(|()| flush(&mut out, &mut file))
                } else {
                    written
                }
            }
            Command::Flush(done) => {
                let flushed = flush(&mut out, &mut file);
                let _ = done.send(());
                flushed
            }
        };
        match result {
            Err(error) if !failed_before => {
                tracing::error!(error = %error, "cannot write the audit trail");
                failed_before = true;
            }
            Err(_) => {}
            Ok(()) => failed_before = false,
        }
    }
    let _ = flush(&mut out, &mut file);
}

fn write_line(
    out: &mut Option<BufWriter<io::Stdout>>,
    file: &mut Option<BufWriter<File>>,
    line: &[u8],
) -> io::Result<()> {
    if let Some(out) = out {
        out.write_all(line)?;
    }
    if let Some(file) = file {
        file.write_all(line)?;
    }
    Ok(())
}

fn flush(
    out: &mut Option<BufWriter<io::Stdout>>,
    file: &mut Option<BufWriter<File>>,
) -> io::Result<()> {
    if let Some(out) = out {
        out.flush()?;
    }
    if let Some(file) = file {
        file.flush()?;
    }
    Ok(())
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
    async fn writes_what_is_queued_before_it_is_dropped() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("audit.jsonl");
        let writer = AuditWriter::start(false, Some(File::create(&path).unwrap())).unwrap();

        writer.write(b"last words\n".to_vec()).await;
        drop(writer);

        assert_eq!(std::fs::read_to_string(&path).unwrap(), "last words\n");
    }
}
