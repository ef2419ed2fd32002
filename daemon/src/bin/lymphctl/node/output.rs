//! The node's stdout: every child's lines, prefixed with its name, and the
//! node's own `node: ...` notes, written by one task so lines never interleave.
//! Knows nothing of processes beyond their pipes.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Lines queued towards the writer. Bounded: a child writing faster than the
/// terminal reads is slowed down (its pipe fills) instead of growing memory.
const QUEUE: usize = 1024;

/// A cheap handle to the writer task; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Output {
    tx: mpsc::Sender<String>,
    width: usize,
}

impl Output {
    /// Starts the writer; `width` is the widest prefix (see [`width`]).
    pub fn spawn(width: usize) -> (Output, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Output { tx, width }, tokio::spawn(write_lines(rx)))
    }

    /// The node's own message, as `node: {text}`.
    pub async fn note(&self, text: &str) {
        // `send`, not `try_send`: a note must not be lost; the writer only
        // stops when every handle is gone, so this cannot wait forever.
        let _ = self.tx.send(format!("node: {text}\n")).await;
    }

    /// Copies `reader` line by line, each prefixed with `name`, until EOF.
    pub fn pipe(
        &self,
        name: &str,
        reader: impl AsyncRead + Unpin + Send + 'static,
    ) -> JoinHandle<()> {
        let out = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']);
                        // Awaiting here is the backpressure described at QUEUE.
                        if out.tx.send(prefixed(&name, out.width, text)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }
}

/// The prefix column's width: the longest of `names`.
pub fn width<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    names.into_iter().map(str::len).max().unwrap_or(0)
}

/// `greeting.1 | text`, the name padded to `width`.
pub fn prefixed(name: &str, width: usize, text: &str) -> String {
    format!("{name:<width$} | {text}\n")
}

/// The one task that owns stdout. A closed stdout (`lymphctl node | head`)
/// drops lines rather than stopping the node.
async fn write_lines(mut rx: mpsc::Receiver<String>) {
    let mut stdout = tokio::io::stdout();
    let mut healthy = true;
    while let Some(line) = rx.recv().await {
        if healthy {
            healthy =
                stdout.write_all(line.as_bytes()).await.is_ok() && stdout.flush().await.is_ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_padded_to_the_widest() {
        let w = width(["greeting.1", "listen.4", "lymphd"]);
        assert_eq!(w, 10);
        assert_eq!(prefixed("lymphd", w, "up"), "lymphd     | up\n");
        assert_eq!(
            prefixed("greeting.1", w, "Saying hi to Joe"),
            "greeting.1 | Saying hi to Joe\n"
        );
        assert_eq!(width([]), 0);
    }
}
