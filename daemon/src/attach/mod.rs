//! Sessions of attached apps: what each registered, its work in flight (one
//! table per app for RPC, HTTP and deliveries, one deadline sweep for all),
//! its concurrency limit and its drain state. The API layer feeds a session
//! from the app's stream; the dispatcher and the gateway reach sessions
//! through the `apps` seam. Knows nothing of the registry or of routing.

pub mod consume;
mod in_flight;
mod session;
mod table;

pub use session::{AppSession, Outbox, SessionLimits};
pub use table::SessionTable;
