//! Reader claims (DESIGN §6.2): while a reader is claimed, only the claimant (a unique bus
//! name) may call its card methods. A claim ends on `Release`, when the claimant leaves the bus,
//! or after `limits.claim_idle_s` without a call; a call in progress keeps it alive.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::api::Error;

#[derive(Debug)]
struct Claim {
    owner: String,
    last: Instant,
    active: usize,
}

/// All claims, by reader id.
#[derive(Debug)]
pub(crate) struct Claims {
    idle: Duration,
    inner: Mutex<HashMap<u32, Claim>>,
}

/// Keeps a claim alive while a call runs; refreshes it when the call ends.
#[derive(Debug)]
pub(crate) struct Activity<'a> {
    claims: &'a Claims,
    id: u32,
    who: String,
}

impl Drop for Activity<'_> {
    fn drop(&mut self) {
        let mut map = self.claims.lock();
        if let Some(c) = map.get_mut(&self.id)
            && c.owner == self.who
        {
            c.active = c.active.saturating_sub(1);
            c.last = Instant::now();
        }
    }
}

fn claimed_by(id: u32, owner: &str) -> Error {
    Error::Claimed(format!("reader {id} is claimed by {owner}"))
}

impl Claims {
    pub fn new(idle: Duration) -> Claims {
        Claims {
            idle,
            inner: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Claim>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The claimant of a reader, or an empty string.
    pub fn claimant(&self, id: u32) -> String {
        self.lock()
            .get(&id)
            .map(|c| c.owner.clone())
            .unwrap_or_default()
    }

    /// Claims a reader for `who`. `Ok(true)` when the claimant changed.
    pub fn claim(&self, id: u32, who: &str) -> Result<bool, Error> {
        let mut map = self.lock();
        match map.get_mut(&id) {
            Some(c) if c.owner == who => {
                c.last = Instant::now();
                Ok(false)
            }
            Some(c) => Err(claimed_by(id, &c.owner)),
            None => {
                map.insert(
                    id,
                    Claim {
                        owner: who.to_owned(),
                        last: Instant::now(),
                        active: 0,
                    },
                );
                Ok(true)
            }
        }
    }

    /// Releases `who`'s claim. `Ok(true)` when the claimant changed; releasing an unclaimed
    /// reader is no error.
    pub fn release(&self, id: u32, who: &str) -> Result<bool, Error> {
        let mut map = self.lock();
        match map.get(&id) {
            Some(c) if c.owner == who => {
                map.remove(&id);
                Ok(true)
            }
            Some(c) => Err(claimed_by(id, &c.owner)),
            None => Ok(false),
        }
    }

    /// Admits a card call by `who`: refused when someone else holds the claim.
    pub fn enter(&self, id: u32, who: &str) -> Result<Activity<'_>, Error> {
        let mut map = self.lock();
        if let Some(c) = map.get_mut(&id) {
            if c.owner != who {
                return Err(claimed_by(id, &c.owner));
            }
            c.active += 1;
            c.last = Instant::now();
        }
        Ok(Activity {
            claims: self,
            id,
            who: who.to_owned(),
        })
    }

    /// Ends every claim of a bus name that left; returns the readers whose claimant changed.
    pub fn drop_owner(&self, who: &str) -> Vec<u32> {
        let mut map = self.lock();
        let ids: Vec<u32> = map
            .iter()
            .filter(|(_, c)| c.owner == who)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            map.remove(id);
        }
        ids
    }

    /// Ends claims idle for longer than the limit; returns their readers.
    pub fn expire(&self, now: Instant) -> Vec<u32> {
        let mut map = self.lock();
        let ids: Vec<u32> = map
            .iter()
            .filter(|(_, c)| c.active == 0 && now.saturating_duration_since(c.last) >= self.idle)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            map.remove(id);
        }
        ids
    }

    /// Forgets the claim of a reader that went away.
    pub fn forget_reader(&self, id: u32) {
        self.lock().remove(&id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn claim_release_and_others() {
        let c = Claims::new(Duration::from_secs(60));
        assert!(c.claim(0, ":1.1").unwrap());
        assert!(!c.claim(0, ":1.1").unwrap());
        assert!(matches!(c.claim(0, ":1.2"), Err(Error::Claimed(_))));
        assert!(matches!(c.enter(0, ":1.2"), Err(Error::Claimed(_))));
        assert!(c.enter(0, ":1.1").is_ok());
        assert!(c.enter(1, ":1.2").is_ok());
        assert!(matches!(c.release(0, ":1.2"), Err(Error::Claimed(_))));
        assert!(c.release(0, ":1.1").unwrap());
        assert!(!c.release(0, ":1.1").unwrap());
        assert_eq!(c.claimant(0), "");
    }

    #[test]
    fn idle_expiry_spares_running_calls() {
        let c = Claims::new(Duration::from_secs(5));
        c.claim(0, ":1.1").unwrap();
        c.claim(1, ":1.1").unwrap();
        let busy = c.enter(1, ":1.1").unwrap();
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(c.expire(later), vec![0]);
        drop(busy);
        assert_eq!(c.claimant(1), ":1.1");
        assert_eq!(c.drop_owner(":1.1"), vec![1]);
    }
}
