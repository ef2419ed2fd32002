//! What the integration tests and the benchmark harness (`bench/`) both need
//! to run real processes against the real services: a child-process guard
//! and bounded commands (`proc`), run-unique names (`names`), where
//! ZooKeeper and RabbitMQ answer (`services`), and a throwaway RabbitMQ
//! virtual host (`rabbitmq`). Test-only fixtures (daemons, peers) stay in
//! `tests/it/`.

pub mod names;
pub mod proc;
pub mod rabbitmq;
pub mod services;
