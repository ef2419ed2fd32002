//! RPC load from an SDK client: each operation is one `proxy(..).call` with
//! a 100-byte argument map, as an app makes it.

use std::collections::HashMap;
use std::time::Duration;

use crate::body::text_for;
use crate::load::OpResult;

/// Longest a benchmark call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls `service.method` with `{field: <text>}`, the body 100 bytes.
pub struct Caller {
    proxy: lymph::Proxy,
    method: String,
    args: HashMap<&'static str, String>,
}

impl Caller {
    pub fn new(client: &lymph::Client, service: &str, method: &str, field: &'static str) -> Caller {
        Caller {
            proxy: client.proxy(service).timeout(CALL_TIMEOUT),
            method: method.to_owned(),
            args: HashMap::from([(field, text_for(field))]),
        }
    }

    /// One call; the reply is decoded (a string) and dropped.
    pub async fn call(&self) -> OpResult {
        self.proxy
            .call::<String>(&self.method, &self.args)
            .await
            .map(|_| None)
            .map_err(|e| e.to_string())
    }
}
