//! `revocation.crl_dir`: [`CrlStore`], the daemon's view of it — every index loaded, reloaded
//! when `import` replaced its file, and the lookup that turns an index entry into a
//! [`CrlAnswer`] — and [`CrlDir`], the directory as `import` (root) writes into it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::index::{CrlIndex, HEADER_LEN, INDEX_EXT, IndexHeader, parse_header};
use super::{CrlError, io_err};
use crate::pki::RevocationReason;

/// Answer of the CRL store for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlAnswer {
    Revoked {
        reason: Option<RevocationReason>,
        date: i64,
    },
    /// Not listed in a fresh CRL.
    Good { this_update: i64, next_update: i64 },
    /// The index is past its nextUpdate (and stale CRLs are not accepted).
    Stale { next_update: i64 },
    /// No index for this issuer key.
    NoIndex,
    /// The index exists but cannot be used (corrupt, unreadable).
    Unusable(String),
}

impl fmt::Display for CrlAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrlAnswer::Revoked { .. } => f.write_str("revoked"),
            CrlAnswer::Good { .. } => f.write_str("not listed"),
            CrlAnswer::Stale { next_update } => write!(f, "index stale since {next_update}"),
            CrlAnswer::NoIndex => f.write_str("no index for this issuer key"),
            CrlAnswer::Unusable(e) => write!(f, "index unusable: {e}"),
        }
    }
}

/// (device, inode, length, mtime ns): changes whenever `import` renames a new file in place.
type FileStamp = (u64, u64, u64, i128);

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.len(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

struct Loaded {
    stamp: FileStamp,
    index: Result<Arc<CrlIndex>, String>,
}

/// All indexes of `revocation.crl_dir`, keyed by issuer key id. Lookups check the file's stamp
/// and reload it when `import` replaced it, so a new CRL takes effect without a restart; a
/// replacement that fails its checks makes that issuer's index unusable (→ no CRL answer),
/// never a panic.
///
/// Indexes are memory-mapped ([`CrlIndex::load`]). A replaced index is swapped in by replacing
/// the `Arc` in the map: lookups in flight finish on the old mapping, later ones see the new.
pub struct CrlStore {
    dir: PathBuf,
    loaded: RwLock<HashMap<Vec<u8>, Loaded>>,
}

impl fmt::Debug for CrlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlStore").field("dir", &self.dir).finish()
    }
}

impl CrlStore {
    /// Open a store over `dir` and load every `*.crlidx` in it.
    pub fn open(dir: &Path) -> Result<CrlStore, CrlError> {
        let store = CrlStore {
            dir: dir.to_path_buf(),
            loaded: RwLock::new(HashMap::new()),
        };
        store.refresh()?;
        Ok(store)
    }

    fn path_for(&self, key_id: &[u8]) -> PathBuf {
        self.dir
            .join(format!("{}.{INDEX_EXT}", hex::encode_upper(key_id)))
    }

    /// Rescan the directory; load new or changed indexes, drop removed ones. Returns the key ids
    /// (hex) of indexes that failed their checks.
    pub fn refresh(&self) -> Result<Vec<String>, CrlError> {
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(&format!(".{INDEX_EXT}")) else {
                continue;
            };
            if let Ok(k) = hex::decode(stem) {
                keys.push(k);
            }
        }
        let mut bad = Vec::new();
        for k in &keys {
            if let Err(e) = self.reload_if_changed(k) {
                bad.push(format!("{}: {e}", hex::encode_upper(k)));
            }
        }
        if let Ok(mut map) = self.loaded.write() {
            map.retain(|k, _| keys.contains(k));
        }
        Ok(bad)
    }

    /// Reload the index for `key_id` if its file changed. Err = the current file is unusable.
    fn reload_if_changed(&self, key_id: &[u8]) -> Result<(), String> {
        let path = self.path_for(key_id);
        let Some(st) = stamp(&path) else {
            if let Ok(mut map) = self.loaded.write() {
                map.remove(key_id);
            }
            return Ok(());
        };
        if let Ok(map) = self.loaded.read()
            && let Some(l) = map.get(key_id)
            && l.stamp == st
        {
            return l.index.as_ref().map(|_| ()).map_err(Clone::clone);
        }
        let index = CrlIndex::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|i| {
                if i.header().key_id == key_id {
                    Ok(Arc::new(i))
                } else {
                    Err("key id in header differs from the file name".to_owned())
                }
            });
        let result = index.as_ref().map(|_| ()).map_err(Clone::clone);
        if let Ok(mut map) = self.loaded.write() {
            map.insert(key_id.to_vec(), Loaded { stamp: st, index });
        }
        result
    }

    /// The current index for an issuer key, reloading it if the file changed.
    pub fn index(&self, key_id: &[u8]) -> Result<Option<Arc<CrlIndex>>, String> {
        self.reload_if_changed(key_id)?;
        let map = self.loaded.read().map_err(|_| "lock poisoned".to_owned())?;
        Ok(map.get(key_id).and_then(|l| l.index.as_ref().ok().cloned()))
    }

    /// Look a serial up in the index of `key_id`: whether it was revoked at time `at`, from an
    /// index that is fresh at the real time `now` (a stale list says nothing about any time:
    /// it may lack a revocation of a date before `at`).
    pub fn lookup(
        &self,
        key_id: &[u8],
        serial: &[u8],
        at: i64,
        now: i64,
        accept_stale: bool,
    ) -> CrlAnswer {
        let index = match self.index(key_id) {
            Ok(Some(i)) => i,
            Ok(None) => return CrlAnswer::NoIndex,
            Err(e) => return CrlAnswer::Unusable(e),
        };
        let h = index.header();
        if now > h.next_update && !accept_stale {
            return CrlAnswer::Stale {
                next_update: h.next_update,
            };
        }
        match index.find(serial) {
            Some((reason, date)) if date <= at => CrlAnswer::Revoked { reason, date },
            // Listed, but revoked after `at`: it was not revoked then.
            Some(_) | None => CrlAnswer::Good {
                this_update: h.this_update,
                next_update: h.next_update,
            },
        }
    }
}

/// The CRL directory opened once by `import`, which runs as root: every file operation is
/// relative to this handle, so the directory checked is the directory written, whatever
/// happens to its path meanwhile.
///
/// [`CrlDir::open`] refuses ([`CrlError::UnsafeDirectory`]) a path that is a symbolic link or
/// not a directory, and a directory that a user other than the importing one (and root) could
/// write: owned by another user, or writable by its group or by others. Such a user could plant
/// a symbolic link at a name root then writes (root's import would overwrite its target, e.g.
/// /etc/shadow), or an index of their own. ACLs are not looked at.
///
/// Files are opened through `/proc/self/fd/<handle>/<name>`: the kernel resolves that through
/// the open handle itself (as `openat` does); nix 0.29's `openat` returns a raw descriptor that
/// only `unsafe` code could own. Temporary files have a random name and are created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW`; the rename is `renameat` on the handle.
pub(super) struct CrlDir {
    path: PathBuf,
    dir: std::fs::File,
}

impl fmt::Debug for CrlDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlDir").field("path", &self.path).finish()
    }
}

/// A temporary file in a [`CrlDir`], removed again when dropped unless [`CrlDir::commit`]
/// renamed it into place.
pub(super) struct TempFile<'d> {
    dir: &'d CrlDir,
    name: String,
    file: Option<std::fs::File>,
}

impl fmt::Debug for TempFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempFile")
            .field("name", &self.name)
            .finish()
    }
}

impl TempFile<'_> {
    pub(super) fn file(&self) -> Result<&std::fs::File, CrlError> {
        self.file.as_ref().ok_or_else(|| CrlError::Io {
            path: self.path(),
            source: std::io::Error::other("temporary file already committed"),
        })
    }

    /// Where the file is (for error messages).
    pub(super) fn path(&self) -> PathBuf {
        self.dir.path.join(&self.name)
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Best effort: an error here leaves a dot-file that no reader looks at.
            let _ = nix::unistd::unlinkat(
                Some(self.dir.fd()),
                self.name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

impl CrlDir {
    /// Open `path` for writing indexes into it (see the type's docs for what is refused).
    pub(super) fn open(path: &Path) -> Result<CrlDir, CrlError> {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        // Without trailing `/` or `/.`: those would make the kernel follow a final symlink.
        let path: PathBuf = path.components().collect();
        let unsafe_dir = |reason: String| CrlError::UnsafeDirectory {
            path: path.clone(),
            reason,
        };
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(&path)
            .map_err(|e| {
                let kind = std::fs::symlink_metadata(&path).map(|m| m.file_type());
                match kind {
                    Ok(t) if t.is_symlink() => unsafe_dir("it is a symbolic link".to_owned()),
                    Ok(t) if !t.is_dir() => unsafe_dir("it is not a directory".to_owned()),
                    _ => CrlError::Io {
                        path: path.clone(),
                        source: e,
                    },
                }
            })?;
        let meta = dir.metadata().map_err(io_err(&path))?;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(unsafe_dir(format!(
                "it is owned by uid {} (only root{} may own it)",
                meta.uid(),
                if me == 0 {
                    String::new()
                } else {
                    format!(" or the importing user, uid {me},")
                }
            )));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o002 != 0 {
            return Err(unsafe_dir(format!(
                "it is writable by others (mode {mode:04o})"
            )));
        }
        if mode & 0o020 != 0 {
            return Err(unsafe_dir(format!(
                "it is writable by its group, gid {} (mode {mode:04o})",
                meta.gid()
            )));
        }
        let crl_dir = CrlDir { path, dir };
        // The handle must be reachable through /proc (see the type's docs).
        let via_proc = std::fs::metadata(crl_dir.at("")).map_err(io_err(&crl_dir.at("")))?;
        if (via_proc.dev(), via_proc.ino()) != (meta.dev(), meta.ino()) {
            return Err(CrlError::Io {
                path: crl_dir.at(""),
                source: std::io::Error::other("/proc/self/fd does not lead to the CRL directory"),
            });
        }
        Ok(crl_dir)
    }

    /// Hold an exclusive lock until the guard is dropped: two imports of the same issuer's
    /// CRLs cannot both pass the "not older" check and then race. The lock is `.lock`, a file
    /// of the directory that only its owner can open (0600): the daemon's user, which can open
    /// the directory itself to read the indexes, could otherwise hold the lock and stop every
    /// import. Once it holds the lock, an import removes the temporary files an interrupted one
    /// left (none can be in use: they are made under this lock).
    pub(super) fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, CrlError> {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let name = ".lock";
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
            .mode(0o600)
            .open(self.at(name))
            .map_err(io_err(&self.display_path(name)))?;
        let meta = file.metadata().map_err(io_err(&self.display_path(name)))?;
        if !meta.is_file() {
            return Err(CrlError::UnsafeDirectory {
                path: self.path.clone(),
                reason: format!("{name} in it is not a regular file"),
            });
        }
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(&self.display_path(name)))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, e)| CrlError::Io {
                path: self.display_path(name),
                source: e.into(),
            },
        )?;
        self.remove_leftovers()?;
        Ok(lock)
    }

    /// Removes `.import.*.tmp` and `.merge.*.tmp`: what an import killed mid-way left.
    fn remove_leftovers(&self) -> Result<(), CrlError> {
        let listing = std::fs::read_dir(self.at("")).map_err(io_err(&self.path))?;
        for entry in listing {
            let entry = entry.map_err(io_err(&self.path))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let ours = (name.starts_with(".import.") || name.starts_with(".merge."))
                && name.ends_with(".tmp");
            if ours {
                nix::unistd::unlinkat(
                    Some(self.fd()),
                    name,
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                )
                .map_err(|e| CrlError::Io {
                    path: self.display_path(name),
                    source: e.into(),
                })?;
            }
        }
        Ok(())
    }

    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.dir.as_raw_fd()
    }

    /// `name` inside the directory, resolved through the handle.
    fn at(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.fd()))
    }

    /// The path of `name` as the administrator knows it (reports, errors).
    pub(super) fn display_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A new, empty temporary file (read and write), mode 0644 whatever the umask: the daemon
    /// runs as its own user and must read what root imported (an index it cannot read makes
    /// every check `revocation-unknown`). A CRL is public data.
    pub(super) fn create_temp(&self, purpose: &str) -> Result<TempFile<'_>, CrlError> {
        use nix::fcntl::OFlag;
        use rand_core::RngCore;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut last = None;
        for _ in 0..8 {
            let name = format!(".{purpose}.{:016x}.tmp", rand_core::OsRng.next_u64());
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
                .mode(0o644)
                .open(self.at(&name))
            {
                Ok(file) => {
                    let temp = TempFile {
                        dir: self,
                        name,
                        file: Some(file),
                    };
                    temp.file()?
                        .set_permissions(std::fs::Permissions::from_mode(0o644))
                        .map_err(io_err(&temp.path()))?;
                    return Ok(temp);
                }
                // A name taken (by chance, or by something planted): draw another.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(CrlError::Io {
                        path: self.display_path(&name),
                        source: e,
                    });
                }
            }
        }
        Err(CrlError::Io {
            path: self.path.clone(),
            source: last.unwrap_or_else(|| std::io::Error::other("no free temporary name")),
        })
    }

    /// The header of the index `name` in place, if there is one; a name that is there but is not
    /// a regular file (a symbolic link, a FIFO) is refused, not followed.
    pub(super) fn existing_header(&self, name: &str) -> Result<Option<IndexHeader>, CrlError> {
        use nix::fcntl::OFlag;
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.display_path(name);
        let not_regular = || CrlError::UnsafeDirectory {
            path: self.path.clone(),
            reason: format!("{name} in it is not a regular file (a symbolic link?)"),
        };
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
            .open(self.at(name))
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => return Err(not_regular()),
            Err(e) => return Err(CrlError::Io { path, source: e }),
        };
        if !file.metadata().map_err(io_err(&path))?.is_file() {
            return Err(not_regular());
        }
        let mut buf = [0u8; HEADER_LEN];
        // An unreadable or short header is no index: the new one replaces it.
        Ok(match (&file).read_exact(&mut buf) {
            Ok(()) => parse_header(&buf).ok(),
            Err(_) => None,
        })
    }

    /// fsync `temp`, rename it to `name` (replacing what is there, never following it), fsync
    /// the directory. Returns the new file's path.
    pub(super) fn commit(&self, mut temp: TempFile<'_>, name: &str) -> Result<PathBuf, CrlError> {
        let path = self.display_path(name);
        temp.file()?.sync_all().map_err(io_err(&temp.path()))?;
        nix::fcntl::renameat(Some(self.fd()), temp.name.as_str(), Some(self.fd()), name).map_err(
            |e| CrlError::Io {
                path: path.clone(),
                source: e.into(),
            },
        )?;
        // Renamed: nothing to remove any more.
        temp.file = None;
        self.dir.sync_all().map_err(io_err(&self.path))?;
        Ok(path)
    }
}
