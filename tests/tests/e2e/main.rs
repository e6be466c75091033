//! Black-box tests: they run the real `handover` binary (built by `just test` before the tests)
//! and look only at its exit codes, its output and the files it writes.

mod cli;
mod crash;
mod deployments;
mod fanout;
mod helpers;
mod rebuild;
mod serve;
mod tamper;
