//! The floor of events through RabbitMQ: a bare lapin loop in this process,
//! with the daemon's shape and none of its work. Publishes to a topic
//! exchange with confirms on (each publish waits for its confirm), consumes
//! on a second connection with a prefetch and acks after "handling" (not
//! awaited in the consume loop, as in the daemon); each
//! worker waits for its own message, timed publish → consume.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Mutex, mpsc};

use super::infra::Vhost;
use super::sink::MAX_WORKERS;
use super::{Baselines, Env, rows_for};
use crate::body::{now_ns, raw_tick, read_raw_tick, since};
use crate::load::OpResult;
use crate::report::Report;

const EXCHANGE: &str = "bench";
const ROUTING_KEY: &str = "bench_tick";
/// As the daemon's consumers: a prefetch above the deepest load.
const PREFETCH: u16 = 256;
const CONSUMED_WITHIN: Duration = Duration::from_secs(10);

struct Loop {
    publisher: Channel,
    receivers: Vec<Mutex<mpsc::Receiver<(u64, Duration)>>>,
    next_seq: AtomicU64,
}

pub async fn run(env: &Env, report: &mut Report, vhost: &Vhost) -> anyhow::Result<()> {
    let bench = start(&vhost.url()).await?;
    rows_for(
        env,
        report,
        (
            "events.lapin",
            "bare lapin publish → consume, confirms on, ack after",
        ),
        &Baselines::default(),
        &[],
        |worker| bench.publish_and_wait(worker),
    )
    .await;
    Ok(())
}

async fn start(url: &str) -> anyhow::Result<Loop> {
    let props = ConnectionProperties::default;
    let publishing = Connection::connect(url, props())
        .await
        .context("connect (publish)")?;
    let consuming = Connection::connect(url, props())
        .await
        .context("connect (consume)")?;
    let publisher = publishing.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    publisher
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer_channel = consuming.create_channel().await?;
    let queue = consumer_channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    consumer_channel
        .queue_bind(
            queue.name().clone(),
            EXCHANGE.into(),
            ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    consumer_channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.name().clone(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..MAX_WORKERS).map(|_| mpsc::channel(4)).unzip();
    let senders = Arc::new(senders);
    tokio::spawn(async move {
        // Keeps both connections open as long as the consumer runs.
        let _connections = (publishing, consuming);
        while let Some(Ok(delivery)) = consumer.next().await {
            if let Some((worker, seq, sent)) = read_raw_tick(&delivery.data)
                && let Some(tx) = senders.get(worker)
            {
                let _ = tx.try_send((seq, since(sent)));
            }
            // As the daemon's consumer does: the ack's round trip through
            // lapin's IO thread does not hold up the next delivery.
            tokio::spawn(async move {
                let _ = delivery.ack(BasicAckOptions::default()).await;
            });
        }
    });
    Ok(Loop {
        publisher,
        receivers: receivers.into_iter().map(Mutex::new).collect(),
        next_seq: AtomicU64::new(1),
    })
}

impl Loop {
    async fn publish_and_wait(&self, worker: usize) -> OpResult {
        let Some(receiver) = self.receivers.get(worker) else {
            return Err(format!("worker {worker} is past {MAX_WORKERS}"));
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let body = raw_tick(worker, seq, now_ns());
        let confirm = self
            .publisher
            .basic_publish(
                EXCHANGE.into(),
                ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let confirmation = confirm.await.map_err(|e| e.to_string())?;
        if !confirmation.is_ack() {
            return Err("the broker nacked a publish".to_owned());
        }
        let mut receiver = receiver.lock().await;
        let deadline = tokio::time::Instant::now() + CONSUMED_WITHIN;
        loop {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some((consumed, latency))) if consumed == seq => return Ok(Some(latency)),
                Ok(Some(_stale)) => {}
                Ok(None) => return Err("the consumer stopped".to_owned()),
                Err(_) => return Err(format!("not consumed within {CONSUMED_WITHIN:?}")),
            }
        }
    }
}
