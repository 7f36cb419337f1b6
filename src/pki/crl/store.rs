//! [`CrlStore`]: the daemon's view of `revocation.crl_dir` — every index loaded, reloaded when
//! `import` replaced its file, and the lookup that turns an index entry into a [`CrlAnswer`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::index::{CrlIndex, INDEX_EXT};
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
