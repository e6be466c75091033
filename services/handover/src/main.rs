//! The `handover` binary: parse the command line, run, exit. See `handover::cli`.

fn main() -> std::process::ExitCode {
    handover::cli::main()
}
