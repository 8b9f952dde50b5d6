//! glibc malloc tuning for autograd-heavy loops.
//!
//! Double backprop allocates and frees many large, short-lived buffers. With
//! glibc's defaults, buffers above the (dynamic) mmap threshold are mapped and
//! unmapped on every use, and freed heap tops are trimmed back to the kernel,
//! so the same pages are faulted in again each step. Raising both thresholds
//! keeps them in the heap. This is process-wide (it also speeds up plain
//! PyTorch code in the same process) and trades resident memory for speed, so
//! it is applied only on request, never at import.

/// The values applied by [`tune_malloc`]: mmap threshold 32 MiB (glibc's
/// maximum on 64-bit) and trim threshold 2 GiB - 1 (the largest `int`).
pub const MMAP_THRESHOLD: i32 = 32 * 1024 * 1024;
pub const TRIM_THRESHOLD: i32 = i32::MAX;

/// Applies the thresholds through `mallopt`; returns false where that is not
/// available (non-glibc targets) or glibc refused a value.
pub fn tune_malloc() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters.
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) };
        mmap == 1 && trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
