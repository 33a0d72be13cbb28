//! The `roster` binary: the command line of `crate::cli`.

/// mimalloc returns freed pages to the system (glibc keeps them in its
/// arenas): RSS falls back after a flood of connections.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    roster::cli::main()
}
