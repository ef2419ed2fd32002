//! The seed's Web service: `GET /greet?name=Joe` logs the name, calls
//! `Greeting.greet` and answers its greeting as text. lymphd opens the port
//! (`http_port` in the config). Run: `web --config conf/web.yml`.

use tracing::info;

use lymph::http::{Request, Response};
use lymph::{Context, Error};

#[derive(Default)]
pub struct Web;

#[lymph::interface]
impl Web {
    /// Greets `?name=` through the Greeting service.
    #[route("/greet")]
    async fn greet(&self, ctx: &Context, request: Request) -> Result<Response, Error> {
        let Some(name) = request.arg("name") else {
            return Err(Error::bad_request("missing query parameter: name"));
        };
        info!("About to greet {name}");
        let greeting: String = ctx
            .proxy("Greeting")
            .call("greet", serde_json::json!({ "name": name }))
            .await?;
        Ok(Response::text(greeting))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lymph::exit_code(run().await)
}

async fn run() -> Result<(), lymph::ServiceError> {
    lymph::Service::from_args()?.interface(Web).run().await
}

#[cfg(test)]
mod tests {
    //! Web's own tests: HTTP through the daemon's gateway, Greeting stubbed.

    use lymph::testing::TestDaemon;
    use serde_json::{Value, json};

    use super::Web;

    #[tokio::test]
    async fn greet_answers_with_the_greeting_of_greeting() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let greeting = daemon
            .stub("Greeting")
            .method("greet", |args: Value| {
                Ok(format!("Hello, {}!", args["name"].as_str().unwrap_or("?")))
            })
            .serve()
            .await
            .expect("greeting stub");
        let web = daemon
            .serve_web(daemon.service().interface(Web))
            .await
            .expect("web");

        let response = web.http().get("/greet?name=Joe+Doe").await.expect("get");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.text(), "Hello, Joe Doe!");
        assert_eq!(greeting.calls_to("greet"), [json!({"name": "Joe Doe"})]);
    }

    #[tokio::test]
    async fn greet_without_a_name_is_a_bad_request() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let greeting = daemon
            .stub("Greeting")
            .method("greet", |_| Ok("unused"))
            .serve()
            .await
            .expect("greeting stub");
        let web = daemon
            .serve_web(daemon.service().interface(Web))
            .await
            .expect("web");

        let response = web.http().get("/greet").await.expect("get");
        assert_eq!(response.status, 400, "{}", response.text());
        assert!(greeting.calls().is_empty(), "Greeting was not called");
    }

    #[tokio::test]
    async fn greet_fails_when_greeting_does() {
        let daemon = TestDaemon::start().await.expect("daemon");
        let _greeting = daemon
            .stub("Greeting")
            .method("greet", |_| {
                Err::<String, _>(lymph::Error::remote("Grumpy", "not today"))
            })
            .serve()
            .await
            .expect("greeting stub");
        let web = daemon
            .serve_web(daemon.service().interface(Web))
            .await
            .expect("web");

        let response = web.http().get("/greet?name=Joe").await.expect("get");
        assert!(
            response.status >= 500,
            "{} {}",
            response.status,
            response.text()
        );
    }
}
