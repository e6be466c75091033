//! Test support shared by every test suite of the workspace (the black-box tests themselves are
//! in `tests/e2e/`): a real, current `nats-server` to test against.

pub mod nats;
