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
