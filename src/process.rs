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
