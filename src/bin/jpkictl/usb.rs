//! USB smart-card readers as the kernel sees them (sysfs), for `check`: which readers are CCID
//! (USB interface class 0x0b, what pcscd's libccid drives) and which popular readers are not
//! PC/SC readers on Linux at all, so that the technician hears "wrong kind of reader" instead
//! of "no card". Reads only sysfs; `SYSFS_PATH` (the libsysfs convention) moves the root.

use std::path::{Path, PathBuf};

/// One USB device of interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbReader {
    pub id: String,
    pub name: String,
    /// Has a CCID interface (class 0x0b).
    pub ccid: bool,
    /// Known not to work through PC/SC on Linux: what it is.
    pub unsupported: Option<&'static str>,
}

/// Readers people buy for the My Number Card that are not CCID / PC/SC on Linux.
const NOT_PCSC: &[(&str, &str, &str)] = &[
    ("054c", "06c1", "Sony PaSoRi RC-S380/S"),
    ("054c", "06c3", "Sony PaSoRi RC-S380/P"),
    ("054c", "02e1", "Sony PaSoRi RC-S330/S360/S370"),
];

fn sysfs_root() -> PathBuf {
    std::env::var_os("SYSFS_PATH").map_or_else(|| PathBuf::from("/sys"), PathBuf::from)
}

fn attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// `None` when sysfs shows no USB bus (containers, some VMs); else CCID and known non-PC/SC
/// readers, sorted by id.
pub fn scan() -> Option<Vec<UsbReader>> {
    let devices = sysfs_root().join("bus/usb/devices");
    let entries = std::fs::read_dir(&devices).ok()?;
    let mut out = Vec::new();
    for e in entries.filter_map(Result::ok) {
        // Follow the symlink to the device directory; interfaces are its `N-M:C.I` children.
        let dir = std::fs::canonicalize(e.path()).unwrap_or_else(|_| e.path());
        let (Some(vendor), Some(product)) = (attr(&dir, "idVendor"), attr(&dir, "idProduct"))
        else {
            continue;
        };
        let ccid = std::fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(Result::ok).any(|i| {
                    i.file_name().to_string_lossy().contains(':')
                        && attr(&i.path(), "bInterfaceClass").as_deref() == Some("0b")
                })
            })
            .unwrap_or(false);
        let unsupported = NOT_PCSC
            .iter()
            .find(|(v, p, _)| *v == vendor && *p == product)
            .map(|(_, _, what)| *what);
        if !ccid && unsupported.is_none() {
            continue;
        }
        let name = [attr(&dir, "manufacturer"), attr(&dir, "product")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        out.push(UsbReader {
            id: format!("{vendor}:{product}"),
            name,
            ccid,
            unsupported,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Some(out)
}
