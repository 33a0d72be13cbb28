//! The `roster` binary: the command line of `crate::cli`.
fn main() -> std::process::ExitCode {
    roster::cli::main()
}
