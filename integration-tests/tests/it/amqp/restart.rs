//! A broker restart under a stream of durable emits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::names::unique;
use lymphd::conformance::events::{AmqpBus, AmqpConfig, AmqpMode, EventBus, Settle, conformance};

use crate::harness::PrivateBroker;

/// Durable mode across `rabbitmqctl stop_app && start_app` under a bounded
/// stream of emits: every confirmed id is handled at least once afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_survives_broker_restart() {
    const N: usize = 3000;
    // A broker node of this test's own: stopping it disturbs no other test.
    let broker = tokio::task::block_in_place(PrivateBroker::start);
    let mut config = AmqpConfig::new(broker.url());
    config.mode = AmqpMode::Durable;
    config.emit_timeout = Duration::from_secs(90);
    let bus = tokio::time::timeout(Duration::from_secs(60), AmqpBus::connect(config))
        .await
        .expect("connect in time")
        .expect("connect to the private broker");
    let ty = unique("restart");
    let mut sub = conformance::subscription("Restart", "r0", &ty);
    sub.prefetch = 64;
    let mut consumer = bus.consume(sub).await.expect("consume");
    let handled: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let handler = {
        let handled = handled.clone();
        tokio::spawn(async move {
            while let Some(d) = consumer.deliveries.recv().await {
                *handled
                    .lock()
                    .expect("lock")
                    .entry(d.event.id.clone())
                    .or_insert(0) += 1;
                let _ = consumer.settle.send(Settle::Ack(d.tag));
            }
        })
    };
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let emitter = {
        let bus = bus.clone();
        let ty = ty.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut failed = Vec::new();
            for n in 0..N {
                let event = conformance::event(&ty, n);
                match bus.emit(event.clone(), Duration::ZERO).await {
                    Ok(()) => sent.push(event.id),
                    Err(e) => failed.push(format!("{}: {e}", event.id)),
                }
                let _ = progress_tx.send(n + 1);
                if n % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (sent, failed)
        })
    };
    tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|n| *n >= N / 4))
        .await
        .expect("a quarter emitted in time")
        .expect("emitter alive");
    let started = Instant::now();
    tokio::task::block_in_place(|| broker.restart(Duration::from_millis(500)));
    println!("rabbitmq restarted in {:?}", started.elapsed());
    let (sent, failed) = tokio::time::timeout(Duration::from_secs(180), emitter)
        .await
        .expect("emits finish in time")
        .expect("emitter");
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let missing: Vec<String> = {
            let handled = handled.lock().expect("lock");
            sent.iter()
                .filter(|id| !handled.contains_key(*id))
                .cloned()
                .collect()
        };
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Late duplicates, if any, still count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    handler.abort();
    let handled = handled.lock().expect("lock").clone();
    let duplicated = handled.values().filter(|n| **n > 1).count();
    println!(
        "restart test: sent {} (failed {}), handled {} distinct, duplicated {duplicated}, missing {}",
        sent.len(),
        failed.len(),
        handled.len(),
        missing.len()
    );
    assert!(
        failed.is_empty(),
        "emits failed across the restart: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert!(
        missing.is_empty(),
        "lost {} confirmed events, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
