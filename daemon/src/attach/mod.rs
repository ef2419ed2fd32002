//! Sessions of attached apps: what each registered, its requests in flight,
//! its concurrency limit and its drain state. The API layer feeds a session
//! from the app's stream; the dispatcher reaches sessions through the
//! `dispatch::LocalApps` trait. Knows nothing of the registry or of routing.

pub mod consume;
mod session;
mod table;

pub use session::{AppSession, Outbox, SessionLimits};
pub use table::SessionTable;
