//! Integration tests across real processes: `lymphd`, `lymphctl`, the example
//! apps and the test app, talking over real Unix sockets. One test binary
//! (each extra one relinks tonic); one module per topic.

mod harness;

mod abuse;

mod access;
mod amqp;
mod cancel;
mod cli;
mod daemon_lifecycle;
mod deadlines;
mod events;
mod failures;
mod fleet;
mod fleet_events;
mod flow;
mod interop;
mod interop_events;
mod interop_logs;
mod logs;
mod lymph_peer;
mod metrics;
mod names;
mod newcomer;
mod node;
mod parity;
mod prometheus;
mod raw_app;
mod routing;
mod spans;
mod trust;
mod web;
mod zookeeper;
