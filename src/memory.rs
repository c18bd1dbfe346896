//! Returning freed heap pages to the operating system, so short bursts (the parsed OpenAPI
//! document at start-up, a wave of SSE sessions) do not set the resident size for good.

/// Asks the allocator to give unused pages back. Blocking but short; call it off the hot path.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages to the OS; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
