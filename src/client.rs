//! Client side of the D-Bus API (DESIGN §6), for Rust kiosk software and `jpkictl`: the bus
//! choice, typed wrappers over the proxies that `service` generates from its own interfaces
//! (so client and daemon cannot drift), the `api` error enum the daemon raises, and a stream
//! of the daemon's signals. Together with `service`, the only module that knows zbus.

use std::fmt;
use std::str::FromStr;

use futures_util::StreamExt;

#[cfg(feature = "virtual-card")]
pub use crate::service::TestingProxy;
pub use crate::service::{ManagerProxy, ReaderProxy};
pub use zbus::Connection;

use crate::api::{
    self, AuthenticityOptions, AuthenticityResult, BUS_NAME, CardKind, CardOptions, CertKind,
    ConsentCheck, ConsentOptions, ConsentResult, ConsentStatusFacts, ConsentStatusResult,
    EligibilityFacts, EligibilityResult, Error, HashAlg, KeyKind, LinkRequirementFacts,
    LinkRequirementResult, LinkResult, MANAGER_PATH, MatchOptions, MatchResult, PinCounters,
    Purpose, ReaderState, SecretBytes, VerifyOptions, VerifyResult,
};
use crate::service::{ReaderAdded, ReaderRemoved, StateChanged};
use crate::terms::{ConsentItem, Holding};

/// Which bus to use: `system` (production), `session`, or a D-Bus address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusChoice {
    /// The system bus (production).
    System,
    /// The session bus.
    Session,
    /// Any D-Bus address, e.g. a private test bus.
    Address(String),
}

impl FromStr for BusChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<BusChoice, String> {
        match s {
            "system" => Ok(BusChoice::System),
            "session" => Ok(BusChoice::Session),
            a if a.contains(':') => Ok(BusChoice::Address(a.to_owned())),
            other => Err(format!(
                "{other:?} is not a bus: use system, session or an address such as unix:path=/run/dbus/system_bus_socket"
            )),
        }
    }
}

impl fmt::Display for BusChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusChoice::System => f.write_str("system"),
            BusChoice::Session => f.write_str("session"),
            BusChoice::Address(a) => f.write_str(a),
        }
    }
}

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The bus itself could not be reached.
    #[error("cannot connect to the {bus} bus")]
    Connect {
        /// Which bus.
        bus: String,
        /// Why.
        #[source]
        source: zbus::Error,
    },
    /// Nobody owns `io.jpkid.Jpki1` (the daemon is not running).
    #[error("jpkid is not running on the bus ({message})")]
    NotRunning {
        /// The bus's words.
        message: String,
    },
    /// The daemon went away during the call, or did not answer within [`METHOD_TIMEOUT`].
    #[error("jpkid stopped answering ({message})")]
    NoAnswer {
        /// The bus's words.
        message: String,
    },
    /// The bus policy refused the call (the caller is not in group `jpki`).
    #[error("the D-Bus policy refused the call ({message})")]
    AccessDenied {
        /// The bus's words.
        message: String,
    },
    /// The daemon answered with one of its named errors (never [`Error::ZBus`]).
    #[error("{}: {}", .0.short_name(), .0.message())]
    Daemon(Error),
    /// Any other D-Bus failure.
    #[error("D-Bus call failed")]
    Bus(#[source] zbus::Error),
}

impl ClientError {
    /// `remaining=N` at the start of a `PinIncorrect` or `PinGuard` message.
    pub fn remaining(&self) -> Option<u8> {
        match self {
            ClientError::Daemon(e) => e.remaining(),
            _ => None,
        }
    }

    /// The daemon's error, when it answered with one.
    pub fn daemon_error(&self) -> Option<&Error> {
        match self {
            ClientError::Daemon(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for ClientError {
    fn from(e: Error) -> ClientError {
        let Error::ZBus(z) = e else {
            return ClientError::Daemon(e);
        };
        let (name, message) = match &z {
            zbus::Error::MethodError(name, message, _) => {
                (name.to_string(), message.clone().unwrap_or_default())
            }
            zbus::Error::FDO(f) => {
                use zbus::DBusError;
                (
                    f.name().to_string(),
                    f.description().unwrap_or_default().to_owned(),
                )
            }
            // The connection broke (the bus went away) or the call timed out.
            zbus::Error::InputOutput(io) => {
                return ClientError::NoAnswer {
                    message: io.to_string(),
                };
            }
            _ => return ClientError::Bus(z),
        };
        match name.as_str() {
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner" => ClientError::NotRunning { message },
            "org.freedesktop.DBus.Error.NoReply"
            | "org.freedesktop.DBus.Error.Disconnected"
            | "org.freedesktop.DBus.Error.Timeout"
            | "org.freedesktop.DBus.Error.TimedOut" => ClientError::NoAnswer { message },
            n if n.starts_with("org.freedesktop.DBus.Error.Spawn.") => {
                ClientError::NotRunning { message }
            }
            "org.freedesktop.DBus.Error.AccessDenied" => ClientError::AccessDenied { message },
            _ => ClientError::Bus(z),
        }
    }
}

impl From<zbus::Error> for ClientError {
    fn from(e: zbus::Error) -> ClientError {
        ClientError::from(Error::from(e))
    }
}

/// How long a call may wait for the daemon's answer. zbus and dbus-daemon wait forever by
/// default, so a wedged daemon would hang the client; this is a backstop above the longest
/// legitimate wait, which is the daemon's own backstop: a full queue of `limits.queue_depth`
/// requests, each at `limits.op_timeout_ms` twice (its deadline, then the exchange it may leave
/// running), plus 2 s — 482 s at the largest timeout and the default depth of 4.
pub const METHOD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Connects to the chosen bus.
///
/// # Errors
/// [`ClientError::Connect`].
pub async fn connect(bus: &BusChoice) -> Result<Connection, ClientError> {
    let builder = match bus {
        BusChoice::System => zbus::connection::Builder::system(),
        BusChoice::Session => zbus::connection::Builder::session(),
        BusChoice::Address(a) => zbus::connection::Builder::address(a.as_str()),
    };
    let built = builder.method_timeout(METHOD_TIMEOUT).build().await;
    built.map_err(|source| ClientError::Connect {
        bus: bus.to_string(),
        source,
    })
}

/// Whether the bus can start the daemon on the first call (an activation file for
/// `io.jpkid.Jpki1`, e.g. the shipped one that hands over to `jpkid.service`).
///
/// # Errors
/// A bus failure.
pub async fn daemon_activatable(conn: &Connection) -> Result<bool, ClientError> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let names = dbus
        .list_activatable_names()
        .await
        .map_err(zbus::Error::from)?;
    Ok(names.iter().any(|n| n.as_str() == BUS_NAME))
}

/// Unique name of the daemon, or `None` when `io.jpkid.Jpki1` has no owner.
///
/// # Errors
/// A bus failure.
pub async fn daemon_owner(conn: &Connection) -> Result<Option<String>, ClientError> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let name = zbus::names::BusName::try_from(BUS_NAME).map_err(ClientError::Bus)?;
    if !dbus
        .name_has_owner(name.clone())
        .await
        .map_err(zbus::Error::from)?
    {
        return Ok(None);
    }
    match dbus.get_name_owner(name).await {
        Ok(owner) => Ok(Some(owner.to_string())),
        Err(zbus::fdo::Error::NameHasNoOwner(_)) => Ok(None),
        Err(e) => Err(zbus::Error::from(e).into()),
    }
}

/// Process id of a bus connection (`GetConnectionUnixProcessID`), e.g. a reader's claimant.
pub async fn peer_pid(conn: &Connection, unique_name: &str) -> Option<u32> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await.ok()?;
    let name = zbus::names::BusName::try_from(unique_name).ok()?;
    dbus.get_connection_unix_process_id(name).await.ok()
}

/// The daemon: its Manager, its readers.
#[derive(Debug, Clone)]
pub struct Client {
    conn: Connection,
    manager: ManagerProxy<'static>,
}

impl Client {
    /// The daemon on this connection.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn new(conn: &Connection) -> Result<Client, ClientError> {
        let manager = ManagerProxy::builder(conn)
            .destination(BUS_NAME)
            .path(MANAGER_PATH)
            .build()
            .await?;
        Ok(Client {
            conn: conn.clone(),
            manager,
        })
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The raw Manager proxy.
    pub fn manager(&self) -> &ManagerProxy<'static> {
        &self.manager
    }

    /// The daemon's version.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn version(&self) -> Result<String, ClientError> {
        Ok(self.manager.version().await?)
    }

    /// `production` or `test`.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn trust_hierarchy(&self) -> Result<String, ClientError> {
        Ok(self.manager.trust_hierarchy().await?)
    }

    /// Every reader, in id order.
    ///
    /// # Errors
    /// A bus failure or the daemon's refusal.
    pub async fn readers(&self) -> Result<Vec<Reader>, ClientError> {
        let mut out = Vec::new();
        for path in self.manager.get_readers().await? {
            if let Some(id) = api::reader_id(path.as_str()) {
                out.push(self.reader(id).await?);
            }
        }
        out.sort_by_key(Reader::id);
        Ok(out)
    }

    /// Reader `id` (`/io/jpkid/Jpki1/reader/<id>`).
    ///
    /// # Errors
    /// A bus failure.
    pub async fn reader(&self, id: u32) -> Result<Reader, ClientError> {
        let proxy = ReaderProxy::builder(&self.conn)
            .destination(BUS_NAME)
            .path(api::reader_path(id))
            .build()
            .await?;
        Ok(Reader { id, proxy })
    }

    /// Verifies a certificate (chain, validity, revocation) for `purpose`.
    ///
    /// # Errors
    /// The daemon's `InvalidArgument` for input that is no certificate of a sane size; a bus
    /// failure.
    pub async fn verify_certificate(
        &self,
        der: &[u8],
        purpose: Purpose,
        options: &VerifyOptions,
    ) -> Result<VerifyResult, ClientError> {
        Ok(self
            .manager
            .verify_certificate(
                SecretBytes::new(der.to_vec()),
                purpose.to_string(),
                options.to_dict(),
            )
            .await?)
    }

    /// The police-side check of a consent CMS made by `SignConsent` (001 §3).
    ///
    /// # Errors
    /// The daemon's `InvalidArgument` for what is no consent CMS; a bus failure.
    pub async fn verify_consent(&self, cms: &[u8]) -> Result<ConsentCheck, ClientError> {
        Ok(self
            .manager
            .verify_consent(SecretBytes::new(cms.to_vec()), api::Dict::new())
            .await?)
    }

    /// The first and last day (ISO dates) of a consent made on `consent_date` (001 §4(2)).
    ///
    /// # Errors
    /// The daemon's `InvalidArgument` for a date that is not `YYYY-MM-DD` or does not exist.
    pub async fn consent_period(
        &self,
        consent_date: &str,
    ) -> Result<(String, String), ClientError> {
        Ok(self.manager.consent_period(consent_date.to_owned()).await?)
    }

    /// Which services a holding may use (000 §2, 001 §2).
    ///
    /// # Errors
    /// A bus failure.
    pub async fn eligibility(
        &self,
        holding: Holding,
        facts: &EligibilityFacts,
    ) -> Result<EligibilityResult, ClientError> {
        Ok(self
            .manager
            .eligibility(holding.to_string(), facts.to_dict())
            .await?)
    }

    /// Where a consent made on `consent_date` stands (001 §4, §5).
    ///
    /// # Errors
    /// The daemon's `InvalidArgument` for impossible dates or facts.
    pub async fn consent_status(
        &self,
        consent_date: &str,
        facts: &ConsentStatusFacts,
    ) -> Result<ConsentStatusResult, ClientError> {
        Ok(self
            .manager
            .consent_status(consent_date.to_owned(), facts.to_dict())
            .await?)
    }

    /// Whether マイナポータル連携 still needs the counter submission (000 §4–§6).
    ///
    /// # Errors
    /// The daemon's `InvalidArgument` without a holding.
    pub async fn link_requirement(
        &self,
        facts: &LinkRequirementFacts,
    ) -> Result<LinkRequirementResult, ClientError> {
        Ok(self.manager.link_requirement(facts.to_dict()).await?)
    }

    /// The Testing interface (only with `jpkid --virtual`).
    ///
    /// # Errors
    /// A bus failure.
    #[cfg(feature = "virtual-card")]
    pub async fn testing(&self) -> Result<TestingProxy<'static>, ClientError> {
        Ok(TestingProxy::builder(&self.conn)
            .destination(BUS_NAME)
            .path(MANAGER_PATH)
            .build()
            .await?)
    }
}

/// One reader of the daemon, with typed calls.
#[derive(Debug, Clone)]
pub struct Reader {
    id: u32,
    proxy: ReaderProxy<'static>,
}

impl Reader {
    /// N of `/io/jpkid/Jpki1/reader/N`.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The object path.
    pub fn path(&self) -> String {
        api::reader_path(self.id)
    }

    /// The raw proxy.
    pub fn proxy(&self) -> &ReaderProxy<'static> {
        &self.proxy
    }

    /// The reader's name.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn name(&self) -> Result<String, ClientError> {
        Ok(self.proxy.name().await?)
    }

    /// Its state.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn state(&self) -> Result<ReaderState, ClientError> {
        Ok(self.proxy.state().await?)
    }

    /// The kind of token in it.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn card_kind(&self) -> Result<CardKind, ClientError> {
        Ok(self.proxy.card_kind().await?)
    }

    /// The card's ATR.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn atr(&self) -> Result<Vec<u8>, ClientError> {
        Ok(self.proxy.atr().await?)
    }

    /// The claimant's unique bus name, or empty.
    ///
    /// # Errors
    /// A bus failure.
    pub async fn claimant(&self) -> Result<String, ClientError> {
        Ok(self.proxy.claimant().await?)
    }

    /// Card insertions counted since the daemon started (pass it as
    /// [`CardOptions::insertion`]).
    ///
    /// # Errors
    /// A bus failure.
    pub async fn insertions(&self) -> Result<u32, ClientError> {
        Ok(self.proxy.insertions().await?)
    }

    /// Claims the reader for this connection.
    ///
    /// # Errors
    /// `Claimed` when another client holds it.
    pub async fn claim(&self) -> Result<(), ClientError> {
        Ok(self.proxy.claim().await?)
    }

    /// Releases this connection's claim.
    ///
    /// # Errors
    /// `Claimed` when another client holds it.
    pub async fn release(&self) -> Result<(), ClientError> {
        Ok(self.proxy.release().await?)
    }

    /// Tries left per PIN; spends none.
    ///
    /// # Errors
    /// The daemon's card errors.
    pub async fn pin_status(&self) -> Result<PinCounters, ClientError> {
        Ok(self.proxy.get_pin_status().await?)
    }

    /// Reads a certificate; `secret` is the signing password for [`CertKind::Sign`], empty
    /// otherwise (the Android token's auth certificate takes the auth PIN).
    ///
    /// # Errors
    /// The daemon's card and PIN errors.
    pub async fn read_certificate(
        &self,
        which: CertKind,
        secret: &[u8],
        options: &CardOptions,
    ) -> Result<SecretBytes, ClientError> {
        Ok(self
            .proxy
            .read_certificate(
                which.to_string(),
                SecretBytes::new(secret.to_vec()),
                options.to_dict(),
            )
            .await?)
    }

    /// Signs `digest` (a `hash` value) with the card's `key`, PKCS#1 v1.5.
    ///
    /// # Errors
    /// The daemon's card and PIN errors.
    pub async fn sign(
        &self,
        key: KeyKind,
        hash: HashAlg,
        digest: &[u8],
        secret: &[u8],
        options: &CardOptions,
    ) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .proxy
            .sign(
                key.to_string(),
                hash.to_string(),
                digest.to_vec(),
                SecretBytes::new(secret.to_vec()),
                options.to_dict(),
            )
            .await?)
    }
}

impl Reader {
    /// `Link` (000 §4 1回目): the signing certificate of the card in this reader, after the
    /// card proved it holds its key, with its verification.
    ///
    /// # Errors
    /// The daemon's card and PIN errors, `KeyMismatch` for a forged card, `UnsupportedCard`
    /// for a smartphone token, `CertificateMissing` without a signing certificate.
    pub async fn link(
        &self,
        sign_password: &[u8],
        options: &CardOptions,
    ) -> Result<LinkResult, ClientError> {
        Ok(self
            .proxy
            .link(SecretBytes::new(sign_password.to_vec()), options.to_dict())
            .await?)
    }

    /// `SignConsent` (001 §4(1)): the consent to the one-stop service for `items`, or with
    /// [`ConsentOptions::withdraw`] its withdrawal, signed on the card as a CMS.
    ///
    /// # Errors
    /// `InvalidArgument` for empty, repeated or unknown items; the card and PIN errors.
    pub async fn sign_consent(
        &self,
        items: &[ConsentItem],
        sign_password: &[u8],
        options: &ConsentOptions,
    ) -> Result<ConsentResult, ClientError> {
        let items = items.iter().map(ToString::to_string).collect();
        Ok(self
            .proxy
            .sign_consent(
                items,
                SecretBytes::new(sign_password.to_vec()),
                options.to_dict(),
            )
            .await?)
    }

    /// `MatchAttributes` (000 §4 2回目): the basic four of the card here against those of a
    /// signing certificate whose key was proven; booleans only.
    ///
    /// # Errors
    /// The card and PIN errors (of either PIN), `KeyMismatch`, `CardRemoved`.
    pub async fn match_attributes(
        &self,
        text_pin: &[u8],
        sign_password: &[u8],
        options: &MatchOptions,
    ) -> Result<MatchResult, ClientError> {
        Ok(self
            .proxy
            .match_attributes(
                SecretBytes::new(text_pin.to_vec()),
                SecretBytes::new(sign_password.to_vec()),
                options.to_dict(),
            )
            .await?)
    }
    /// `CheckAuthenticity` (the counter's 対面確認): whether the card is genuine — its CV
    /// certificate by a J-LIS card CA key, its face data as signed, its chip holding the face's
    /// key — with 照合番号B only; the photo with [`AuthenticityOptions::photo`].
    ///
    /// # Errors
    /// `InvalidPinFormat` for a code that is not 14 digits (the card sees nothing),
    /// `PinIncorrect remaining=N`, `PinGuard`, `PinBlocked`, `UnsupportedCard` for a
    /// smartphone token or a card without the visual AP, the card errors.
    pub async fn check_authenticity(
        &self,
        code_b: &[u8],
        options: &AuthenticityOptions,
    ) -> Result<AuthenticityResult, ClientError> {
        Ok(self
            .proxy
            .check_authenticity(SecretBytes::new(code_b.to_vec()), options.to_dict())
            .await?)
    }
}

/// A signal of the daemon, or its coming and going on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A reader appeared.
    ReaderAdded {
        /// Its object path.
        path: String,
    },
    /// A reader disappeared.
    ReaderRemoved {
        /// Its object path.
        path: String,
    },
    /// A reader changed state.
    StateChanged {
        /// Its object path.
        path: String,
        /// The state before.
        old: ReaderState,
        /// The state now.
        new: ReaderState,
        /// Why, in words.
        reason: String,
    },
    /// `io.jpkid.Jpki1` got an owner (the daemon started or restarted).
    DaemonStarted {
        /// The daemon's unique name.
        owner: String,
    },
    /// `io.jpkid.Jpki1` lost its owner (the daemon stopped or crashed).
    DaemonStopped,
}

/// The daemon's signals (`ReaderAdded`, `ReaderRemoved`, `StateChanged`, recognised by the
/// generated signal types) and its coming and going on the bus (`NameOwnerChanged`).
///
/// # Errors
/// A bus failure while subscribing.
pub async fn events(
    conn: &Connection,
) -> Result<impl futures_util::Stream<Item = Event> + Unpin + use<>, ClientError> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(BUS_NAME)
        .path_namespace(MANAGER_PATH)
        .build()
        .map_err(ClientError::Bus)?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let owners = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?
        .filter_map(|signal| async move {
            let args = signal.args().ok()?;
            Some(match args.new_owner().as_ref() {
                Some(owner) => Event::DaemonStarted {
                    owner: owner.to_string(),
                },
                None => Event::DaemonStopped,
            })
        });
    let stream = zbus::MessageStream::for_match_rule(rule, conn, None).await?;
    let signals = stream.filter_map(|m| async move { event_of(m.ok()?) });
    Ok(Box::pin(futures_util::stream::select(
        Box::pin(signals),
        Box::pin(owners),
    )))
}

fn event_of(m: zbus::Message) -> Option<Event> {
    let path = m.header().path()?.to_string();
    if let Some(s) = ReaderAdded::from_message(m.clone()) {
        return Some(Event::ReaderAdded {
            path: s.args().ok()?.reader().to_string(),
        });
    }
    if let Some(s) = ReaderRemoved::from_message(m.clone()) {
        return Some(Event::ReaderRemoved {
            path: s.args().ok()?.reader().to_string(),
        });
    }
    let s = StateChanged::from_message(m)?;
    let args = s.args().ok()?;
    Some(Event::StateChanged {
        path,
        old: *args.old(),
        new: *args.new(),
        reason: args.reason().to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn bus_choice_parses() {
        assert_eq!("system".parse::<BusChoice>(), Ok(BusChoice::System));
        assert_eq!("session".parse::<BusChoice>(), Ok(BusChoice::Session));
        assert_eq!(
            "unix:path=/tmp/x".parse::<BusChoice>(),
            Ok(BusChoice::Address("unix:path=/tmp/x".to_owned()))
        );
        assert!("bogus".parse::<BusChoice>().is_err());
    }

    #[test]
    fn daemon_errors_and_bus_errors_are_told_apart() {
        let e = ClientError::from(Error::PinIncorrect("remaining=1 wrong".into()));
        assert_eq!(e.remaining(), Some(1));
        assert!(matches!(e, ClientError::Daemon(Error::PinIncorrect(_))));
        let z = zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::other("gone")));
        assert!(matches!(ClientError::from(z), ClientError::NoAnswer { .. }));
    }
}
