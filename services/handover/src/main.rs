//! The `handover` binary: parse the command line, run, exit. See `handover::cli`.

/// mimalloc rather than glibc's malloc. The hot paths (redb's page buffers, NATS messages, the
/// per-event keys and documents of the read side) allocate and free many short-lived blocks on
/// several threads, and glibc gives freed heap back to the kernel only to fault it in again,
/// zeroed. Measured in the fan-out benchmark: ~6% less CPU per event in this process, ~6% more
/// events per second end to end (docs/benchmarks.md). Built without transparent huge pages
/// (the `no_thp` feature): with them every fresh 2 MiB of the stores' growing buffers was
/// faulted in and zeroed at once — ~18% more CPU per fan-out event, measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    handover::cli::main()
}
