//! A service for integration tests, with handlers that are slow, fail, crash,
//! relay a call onwards or hold events, handlers limited to one at a time (`slow_one`, `test.limited`),
//! and HTTP routes `/slow?ms=`, `/boom` and `/echo` (with `http_port:`
//! in the config): `testapp [--max-concurrency N] [--config F] [--socket P]`.

use std::io::Write;
use std::time::Duration;

use lymph::{Error, Event};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct Test;

/// The body of a `test.limited` event.
#[derive(Debug, Deserialize)]
struct Limited {
    ms: u64,
    n: u64,
}

/// The arguments `relay` passes on.
#[derive(Serialize)]
struct Sleep {
    ms: u64,
}

#[derive(Debug, Deserialize)]
struct Work {
    n: u64,
    #[serde(default)]
    hold_ms: u64,
    #[serde(default)]
    fail: bool,
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[lymph::interface(name = "Test")]
impl Test {
    /// Sleeps `ms` milliseconds, then returns `ms`.
    #[rpc]
    async fn sleep(&self, ms: u64) -> Result<u64, Error> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }

    /// Sleeps `ms` milliseconds, then returns `ms`; one call at a time, others
    /// get `overloaded`.
    #[rpc(concurrency = 1)]
    async fn slow_one(&self, ms: u64) -> Result<u64, Error> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }

    /// Returns `text`.
    #[rpc]
    async fn echo(&self, text: String) -> Result<String, Error> {
        Ok(text)
    }

    /// Raises the typed error `TestError` with `message`.
    #[rpc(raises = ["TestError"])]
    async fn fail(&self, message: String) -> Result<(), Error> {
        Err(Error::remote("TestError", message))
    }

    /// Panics.
    #[rpc]
    async fn crash(&self) -> Result<(), Error> {
        panic!("crash requested by the caller")
    }

    /// Returns the trace id the request carried.
    #[rpc]
    async fn trace(&self, ctx: &lymph::Context) -> Result<String, Error> {
        Ok(ctx.trace_id().to_owned())
    }

    /// Sleeps `wait_ms`, then calls `service.method(ms=ms)` with a timeout
    /// of 30 s (the handler's time left wins) and returns what it answers.
    #[rpc]
    async fn relay(
        &self,
        ctx: &lymph::Context,
        service: String,
        method: String,
        wait_ms: u64,
        ms: u64,
    ) -> Result<u64, Error> {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let reply = ctx
            .proxy(service)
            .timeout(Duration::from_secs(30))
            .call(&method, Sleep { ms })
            .await?;
        Ok(reply)
    }

    /// Returns this process's id.
    #[rpc]
    async fn whoami(&self) -> Result<u32, Error> {
        Ok(std::process::id())
    }

    /// HTTP: sleeps `?ms=` milliseconds, then answers `slept <ms>`.
    #[route("/slow")]
    async fn slow(&self, request: lymph::http::Request) -> Result<lymph::http::Response, Error> {
        let ms: u64 = request
            .arg("ms")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::bad_request("ms must be a number"))?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(lymph::http::Response::text(format!("slept {ms}")))
    }

    /// HTTP: answers the request's body as it came (`POST /echo`).
    #[route("/echo", methods = ["POST"])]
    async fn echo_body(
        &self,
        request: lymph::http::Request,
    ) -> Result<lymph::http::Response, Error> {
        Ok(lymph::http::Response::new(200, request.body))
    }

    /// HTTP: fails (the client sees 500).
    #[route("/boom", methods = ["GET", "POST"])]
    async fn boom(&self, _request: lymph::http::Request) -> Result<lymph::http::Response, Error> {
        Err(Error::internal("boom requested by the client"))
    }

    /// Prints `handling <n> attempt <a>`, holds the event `hold_ms`, fails it when asked.
    #[event("work", retry = 1)]
    async fn on_work(&self, event: Event) -> Result<(), Error> {
        let work: Work = event.decode()?;
        say(format!("handling {} attempt {}", work.n, event.attempt));
        tokio::time::sleep(Duration::from_millis(work.hold_ms)).await;
        if work.fail {
            return Err(Error::internal(format!(
                "work {} failed on purpose",
                work.n
            )));
        }
        say(format!("handled {}", work.n));
        Ok(())
    }

    /// Prints `limited start <n>`, sleeps `ms`, prints `limited end <n>`; one
    /// event at a time, the others wait in their queue.
    #[event("test.limited", concurrency = 1)]
    async fn on_limited(&self, body: Limited) -> Result<(), Error> {
        say(format!("limited start {}", body.n));
        tokio::time::sleep(Duration::from_millis(body.ms)).await;
        say(format!("limited end {}", body.n));
        Ok(())
    }
}

/// A service every instance of which hears every `news` event.
#[derive(Default)]
struct Board;

#[lymph::interface(name = "Board")]
impl Board {
    /// Prints `news <n>` for each `news` event, on every instance.
    #[event("news", broadcast)]
    async fn on_news(&self, event: Event) -> Result<(), Error> {
        let n: u64 = event.get("n")?;
        say(format!("news {n}"));
        Ok(())
    }

    /// Prints `traced <n> <trace id>` for each `traced` event.
    #[event("traced")]
    async fn on_traced(&self, event: Event) -> Result<(), Error> {
        let n: u64 = event.get("n")?;
        say(format!("traced {n} {}", event.trace_id));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lymph::exit_code(run().await)
}

async fn run() -> Result<(), lymph::ServiceError> {
    let mut args: Vec<String> = std::env::args().collect();
    let mut max_concurrency = None;
    if let Some(at) = args.iter().position(|a| a == "--max-concurrency") {
        let value = args.get(at + 1).and_then(|v| v.parse::<u32>().ok());
        max_concurrency = Some(value.unwrap_or(1));
        args.drain(at..(at + 2).min(args.len()));
    }
    let mut service = lymph::Service::from_args_from(args)?
        .interface(Test)
        .interface(Board);
    if let Some(limit) = max_concurrency {
        service = service.max_concurrency(limit);
    }
    service.run().await
}
