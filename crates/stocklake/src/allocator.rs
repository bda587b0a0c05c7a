//! The global allocator, mimalloc, and the one setting stocklake changes in it (decisions 0008
//! and 0018).

/// mimalloc: every stage allocates many small, short-lived buffers across threads (records,
/// lines, Arrow builders), where glibc's allocator spent a fifth of the simulator's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option. The Rust bindings name only some options; in mimalloc v3's
/// `mi_option_e` it is the one before `mi_option_use_numa_nodes` (the test below checks it by
/// its default).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// How long memory freed by stocklake stays with the process before mimalloc gives it back to
/// the OS, unless `MIMALLOC_PURGE_DELAY` says otherwise: 10 s instead of mimalloc's 1 s.
pub const PURGE_DELAY_MS: i32 = 10_000;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`] unless the environment names one. With
/// mimalloc's 1 s, refine's large buffers (a gunzipped object, Arrow builders, Parquet pages)
/// went back to the OS between batches and came back as fresh pages: every one a page fault
/// that zeroes it, on transparent huge pages a stall for the kernel to compact memory (29% of a
/// bulk refine's CPU samples were the kernel clearing pages; decision 0018).
#[allow(unsafe_code)]
pub fn tune() {
    // SAFETY: `mi_option_set_default` stores an integer into mimalloc's table of options at a
    // valid index (see the test); it keeps no pointer and may be called at any time.
    unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY, PURGE_DELAY_MS.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_is_the_option_mimalloc_purges_by() {
        // SAFETY: reads one entry of mimalloc's option table at a valid index
        let get = || unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc v3's default purge delay, 1,000 ms: its neighbours default to 1 and 0
        assert_eq!(get(), 1_000);
        tune();
        assert_eq!(get(), std::ffi::c_long::from(PURGE_DELAY_MS));
    }
}
