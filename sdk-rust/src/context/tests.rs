//! Deadlines through a handler's `Context`: the timeout each call carries,
//! and calls made once the time is up, which never reach the link.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::client::{Client, Command};
use crate::{Context, ErrorKind, Proxy};

/// Makes one call through `proxy` and returns the `timeout_ms` it was sent
/// with (the call itself then fails: nobody answers it).
async fn sent_timeout(proxy: Proxy, commands: &mut mpsc::Receiver<Command>) -> u32 {
    let call = tokio::spawn(async move { proxy.call::<()>("m", ()).await });
    let Some(Command::Call { call: sent, reply }) = commands.recv().await else {
        panic!("expected a call");
    };
    drop(reply);
    assert!(call.await.expect("no panic").is_err(), "nobody answered");
    sent.timeout_ms
}

#[tokio::test]
async fn calls_from_a_handler_get_no_more_than_its_time_left() {
    let (tx, mut commands) = mpsc::channel(8);
    let client = Client::new(tx);
    let ctx =
        Context::new(client.clone(), "t").with_deadline(Instant::now() + Duration::from_secs(60));
    assert!(ctx.deadline().is_some());

    // A longer timeout of its own: the time left (under 60 s, well over 30 s).
    let longer = ctx.proxy("Back").timeout(Duration::from_secs(120));
    let ms = sent_timeout(longer, &mut commands).await;
    assert!((30_000..=60_000).contains(&ms), "{ms}");
    // None of its own: the time left too.
    let ms = sent_timeout(ctx.proxy("Back"), &mut commands).await;
    assert!((30_000..=60_000).contains(&ms), "{ms}");
    // A shorter one of its own stays.
    let shorter = ctx.proxy("Back").timeout(Duration::from_millis(100));
    assert_eq!(sent_timeout(shorter, &mut commands).await, 100);

    // Outside a handler nothing changes: no timeout (the daemon's default) or its own.
    let plain = Context::new(client.clone(), "t");
    assert_eq!(plain.deadline(), None);
    assert_eq!(sent_timeout(plain.proxy("Back"), &mut commands).await, 0);
    assert_eq!(sent_timeout(client.proxy("Back"), &mut commands).await, 0);
    let own = client.proxy("Back").timeout(Duration::from_secs(120));
    assert_eq!(sent_timeout(own, &mut commands).await, 120_000);
}

#[tokio::test]
async fn calls_once_the_time_is_up_fail_at_once_and_are_not_sent() {
    let (tx, mut commands) = mpsc::channel(8);
    let ctx = Context::new(Client::new(tx), "t").with_deadline(Instant::now());
    let proxy = ctx.proxy("Back").timeout(Duration::from_secs(60));

    let called = proxy.call::<()>("m", ()).await.expect_err("time is up");
    assert_eq!(called.kind, ErrorKind::DeadlineExceeded, "{called}");
    assert!(called.message.contains("Back.m"), "{called}");
    let deferred = tokio::time::timeout(Duration::from_secs(20), proxy.defer::<()>("m", ()))
        .await
        .expect("a deferred call fails at once too")
        .expect_err("time is up");
    assert_eq!(deferred.kind, ErrorKind::DeadlineExceeded, "{deferred}");
    assert!(
        commands.try_recv().is_err(),
        "nothing reached the link (nor the daemon)"
    );
}
