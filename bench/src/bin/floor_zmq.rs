//! `floor-zmq`: the bare ZeroMQ floor, a DEALER sending 100-byte frames over
//! TCP on loopback to a ROUTER in a second process that sends each back.

use clap::Parser;
use lymphd_bench::floors::BODY_BYTES;
use lymphd_bench::floors::child::{self, Child};
use lymphd_bench::floors::load::{Link, run_levels};
use lymphd_bench::floors::opts::Opts;
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let runtime = opts.runtime()?;
    match opts.role.as_deref() {
        Some("echo") => runtime.block_on(echo()),
        None => runtime.block_on(bench(&opts)),
        Some(other) => anyhow::bail!("no role {other:?}"),
    }
}

/// The ROUTER: every message back to the peer it came from.
async fn echo() -> anyhow::Result<()> {
    let mut router = RouterSocket::new();
    let endpoint = router.bind("tcp://127.0.0.1:0").await?;
    child::ready(&endpoint.to_string())?;
    loop {
        let message = router.recv().await?;
        router.send(message).await?;
    }
}

/// A request: the id in the first 8 bytes of a `BODY_BYTES` frame.
struct Dealer(DealerSocket);

impl Link for Dealer {
    async fn send(&mut self, id: u64) -> anyhow::Result<()> {
        let mut frame = vec![0x5a; BODY_BYTES];
        frame[..8].copy_from_slice(&id.to_le_bytes());
        Ok(self.0.send(ZmqMessage::from(frame)).await?)
    }

    async fn recv(&mut self) -> anyhow::Result<u64> {
        let message = self.0.recv().await?;
        let id = message
            .get(0)
            .and_then(|f| f.get(..8))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .ok_or_else(|| anyhow::anyhow!("a reply without an id"))?;
        Ok(u64::from_le_bytes(id))
    }
}

async fn bench(opts: &Opts) -> anyhow::Result<()> {
    let (_echo, endpoint) = Child::start("floor-zmq echo", &opts.child_args("echo"))?;
    let mut dealer = DealerSocket::new();
    dealer.connect(&endpoint).await?;
    run_levels(&mut Dealer(dealer), "zmq-dealer-router-echo", opts).await
}
