//! What the daemon does to its own process so that the memory that holds PINs and personal data
//! for the length of a request cannot leave it: no core dump, no ptrace by the same user.

/// Marks the process not dumpable (`PR_SET_DUMPABLE` 0): no core file, and `/proc/PID/mem` and
/// ptrace are refused to other processes of the same user.
///
/// # Errors
/// The `prctl` error.
pub fn forbid_dumps() -> nix::Result<()> {
    nix::sys::prctl::set_dumpable(false)
}

/// Whether the process may dump core.
///
/// # Errors
/// The `prctl` error.
pub fn dumpable() -> nix::Result<bool> {
    nix::sys::prctl::get_dumpable()
}

/// The allocator of jpkid's binaries: every heap block is wiped when it is freed (and, since a
/// `realloc` is an allocation, a copy and a free, every smaller copy of a growing buffer). It
/// covers what zeroizing types cannot: the buffers of zbus, serde and the X.509/CMS crates that
/// held a secret or a certificate on their way. Live memory is the zeroizing types' job.
pub type WipingAllocator = zeroizing_alloc::ZeroAlloc<std::alloc::System>;

/// The one instance each binary installs with `#[global_allocator]`.
pub const WIPING_ALLOCATOR: WipingAllocator = zeroizing_alloc::ZeroAlloc(std::alloc::System);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_process_stops_being_dumpable() {
        forbid_dumps().unwrap();
        assert!(!dumpable().unwrap());
    }
}
