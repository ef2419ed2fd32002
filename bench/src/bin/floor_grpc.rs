//! `floor-grpc`: the bare gRPC floor, one bidirectional stream over a Unix
//! socket to a tonic server in a second process that echoes every frame.

use std::path::Path;

use clap::Parser;
use lymphd_bench::floors::child::{self, Child};
use lymphd_bench::floors::load::{Link, run_levels};
use lymphd_bench::floors::opts::Opts;
use lymphd_bench::floors::proto::Frame;
use lymphd_bench::floors::proto::echo_client::EchoClient;
use lymphd_bench::floors::proto::echo_server::{Echo, EchoServer};
use lymphd_bench::floors::{BODY_BYTES, uds};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let runtime = opts.runtime()?;
    match opts.role.as_deref() {
        Some("echo") => runtime.block_on(echo(opts.listen()?)),
        None => runtime.block_on(bench(&opts)),
        Some(other) => anyhow::bail!("no role {other:?}"),
    }
}

struct Echoer;

#[tonic::async_trait]
impl Echo for Echoer {
    type EchoStream = Streaming<Frame>;

    /// The stream of requests is the stream of replies.
    async fn echo(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<Self::EchoStream>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

async fn echo(path: &Path) -> anyhow::Result<()> {
    let incoming = uds::listen(path)?;
    child::ready(&path.display().to_string())?;
    tonic::transport::Server::builder()
        .add_service(EchoServer::new(Echoer))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// The client's end of the one stream.
struct Stream {
    requests: mpsc::Sender<Frame>,
    replies: Streaming<Frame>,
    body: bytes::Bytes,
}

impl Link for Stream {
    async fn send(&mut self, id: u64) -> anyhow::Result<()> {
        let frame = Frame {
            id,
            body: self.body.clone(),
            ..Frame::default()
        };
        self.requests
            .send(frame)
            .await
            .map_err(|_| anyhow::anyhow!("the request stream is closed"))
    }

    async fn recv(&mut self) -> anyhow::Result<u64> {
        match self.replies.message().await? {
            Some(frame) => Ok(frame.id),
            None => anyhow::bail!("the echo stream ended"),
        }
    }
}

async fn bench(opts: &Opts) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("floor-grpc").tempdir()?;
    let path = dir.path().join("echo.sock");
    let mut args = opts.child_args("echo");
    args.extend(["--listen".to_owned(), path.display().to_string()]);
    let _echo = Child::start("floor-grpc echo", &args)?;
    let mut client = EchoClient::new(uds::channel(&path).await?);
    let (requests, rx) = mpsc::channel(1024);
    let replies = client.echo(ReceiverStream::new(rx)).await?.into_inner();
    let mut stream = Stream {
        requests,
        replies,
        body: bytes::Bytes::from(vec![0x5a; BODY_BYTES]),
    };
    run_levels(&mut stream, "grpc-uds-bidi-echo", opts).await
}
