//! The `roster` binary: the command line of `crate::cli`.

/// jemalloc, with its background thread purging dirty pages (below): freed
/// memory goes back to the system even while the threads that freed it
/// sleep, so RSS falls back after a flood of connections.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    // Without the background thread, dirty pages are purged only when a
    // thread allocates again; an idle worker would keep them. Failing to
    // start it costs memory, not correctness.
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    roster::cli::main()
}
