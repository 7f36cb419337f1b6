//! The daemon's own access check (DESIGN §7), on top of the bus policy: the caller's uid and
//! groups come from the bus (`GetConnectionCredentials`); root is always allowed, anyone else
//! needs one group of `access.allowed_groups`.
//!
//! Group names are resolved once, at start-up (a group created later needs a restart). The
//! verdict per unique bus name is cached until that name leaves the bus: a connection's
//! credentials cannot change.

use std::collections::HashMap;
use std::sync::Mutex;

use tracing::{debug, warn};
use zbus::Connection;
use zbus::fdo::DBusProxy;
use zbus::names::BusName;

/// Who called, and whether they may.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The uid the bus reported, if it did.
    pub uid: Option<u32>,
    /// `Ok` when the caller may use the daemon, else why not.
    pub verdict: Result<(), String>,
}

/// The access check with its cache.
#[derive(Debug)]
pub(crate) struct Access {
    allowed_gids: Vec<u32>,
    groups: Vec<String>,
    cache: Mutex<HashMap<String, Caller>>,
}

impl Access {
    /// Resolves `allowed_groups`; unknown names are logged and ignored.
    pub fn new(allowed_groups: &[String]) -> Access {
        let mut allowed_gids = Vec::new();
        for name in allowed_groups {
            match nix::unistd::Group::from_name(name) {
                Ok(Some(g)) => allowed_gids.push(g.gid.as_raw()),
                Ok(None) => warn!(group = %name, "access.allowed_groups names an unknown group"),
                Err(e) => warn!(group = %name, error = %e, "cannot resolve access group"),
            }
        }
        Access {
            allowed_gids,
            groups: allowed_groups.to_vec(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, sender: &str) -> Option<Caller> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sender)
            .cloned()
    }

    /// Forgets a bus name that left.
    pub fn forget(&self, sender: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sender);
    }

    /// Checks the caller behind `sender` (a unique bus name).
    pub async fn check(&self, conn: &Connection, sender: &str) -> Caller {
        if let Some(c) = self.cached(sender) {
            return c;
        }
        let caller = self.ask_bus(conn, sender).await;
        // Only definite answers are cached; a failed lookup is asked again next time.
        if caller.uid.is_some() {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(sender.to_owned(), caller.clone());
        }
        caller
    }

    async fn ask_bus(&self, conn: &Connection, sender: &str) -> Caller {
        let refused = |uid, why: String| Caller {
            uid,
            verdict: Err(why),
        };
        let Ok(name) = BusName::try_from(sender) else {
            return refused(None, "the call carries no sender".to_owned());
        };
        let creds = match DBusProxy::new(conn).await {
            Ok(proxy) => proxy.get_connection_credentials(name).await,
            Err(e) => Err(e.into()),
        };
        let creds = match creds {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "GetConnectionCredentials failed");
                return refused(None, "the bus did not tell who the caller is".to_owned());
            }
        };
        let Some(uid) = creds.unix_user_id() else {
            return refused(None, "the bus did not tell the caller's uid".to_owned());
        };
        if uid == 0 {
            return Caller {
                uid: Some(uid),
                verdict: Ok(()),
            };
        }
        let member = creds
            .unix_group_ids()
            .is_some_and(|gids| gids.iter().any(|g| self.allowed_gids.contains(g)));
        if member {
            Caller {
                uid: Some(uid),
                verdict: Ok(()),
            }
        } else {
            refused(
                Some(uid),
                format!(
                    "uid {uid} is not root and in none of the allowed groups ({})",
                    self.groups.join(", ")
                ),
            )
        }
    }
}
