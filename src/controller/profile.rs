//! Heap profiling of the operator with [dhat](https://docs.rs/dhat), only in a build with
//! the `dhat-heap` feature (never by default). Writes one file; no other I/O.
//!
//! With the feature, every allocation goes through dhat's allocator, and [`start`]
//! profiles the process when `QLIKOPS_DHAT_OUT` names a file: creating `<file>.stop`
//! writes the profile there (the benchmark ends the operator with SIGKILL, so the profile
//! cannot wait for the process to exit). The profile records the heap at its peak
//! (`t-gmax`) with the allocation site of every block; view it with dhat's `dh_view.html`.
//! Allocations go back to the system allocator once it is written.

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Starts profiling if the feature is on and `QLIKOPS_DHAT_OUT` is set; a no-op otherwise.
pub fn start() {
    #[cfg(feature = "dhat-heap")]
    if let Some(out) = std::env::var_os("QLIKOPS_DHAT_OUT") {
        let out = std::path::PathBuf::from(out);
        let mut stop = out.clone().into_os_string();
        stop.push(".stop");
        let stop = std::path::PathBuf::from(stop);
        let profiler = dhat::Profiler::builder().file_name(&out).build();
        tracing::info!(out = %out.display(), stop = %stop.display(), "heap profiling");
        std::thread::spawn(move || {
            while !stop.exists() {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            drop(profiler);
        });
    }
}
