//! Handing memory the allocator holds free back to the system, between a
//! command's phases: glibc keeps what a thread frees in that thread's
//! arena, where only that thread's later allocations can use it, so a
//! phase run on another thread (sled freeing a view generation on the main
//! thread after the view threads are done) adds to the process's resident
//! memory instead of reusing it. `malloc_trim` returns the free pages of
//! every arena (glibc 2.8 and later). Elsewhere it does nothing.

/// Returns the allocator's free memory to the system (glibc); a no-op
/// with other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: malloc_trim takes no pointers and may be called at any
        // time from any thread; it only releases memory no allocation holds.
        unsafe {
            malloc_trim(0);
        }
    }
}
