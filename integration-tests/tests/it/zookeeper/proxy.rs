//! A TCP proxy in front of the test ZooKeeper that a test can cut (every
//! connection closed, new ones refused) and restore: a network partition
//! between one registry and ZooKeeper, on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{ZK, require_zookeeper, within};

/// A TCP proxy to ZooKeeper that can cut every connection and refuse new ones.
pub struct Proxy {
    pub port: u16,
    blocked: Arc<AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free port.
    pub async fn start() -> Proxy {
        Proxy::start_on(0).await
    }

    /// A proxy on `port` (0: any free one).
    pub async fn start_on(port: u16) -> Proxy {
        require_zookeeper();
        let listener = within("bind", tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let blocked = Arc::new(AtomicBool::new(false));
        let cuts = tokio::sync::watch::Sender::new(0u64);
        let (task_blocked, task_cuts) = (blocked.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if task_blocked.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let mut cut = task_cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(ZK).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            blocked,
            cuts,
            task,
        }
    }

    pub fn cut(&self) {
        self.blocked.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.blocked.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
