//! The ledger crate's integration tests: the store and writer through their public API, and the
//! HTTP API through its real router (no socket: `tower::ServiceExt::oneshot`).

mod http;
mod nats;
mod scim;
mod store;
