//! Client side of the D-Bus API (DESIGN §6): zbus proxies for `io.jpkid.Jpki1.Manager`,
//! `io.jpkid.Jpki1.Reader` and `io.jpkid.Jpki1.Testing`, the bus choice (`system`, `session` or
//! an address), a typed error for the daemon's `io.jpkid.Jpki1.Error.*` names, and a stream of
//! the daemon's signals. Together with `service`, the only module that knows zbus.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use futures_util::StreamExt;
use zbus::proxy;
use zbus::{OwnedObjectPath, OwnedVariant as OwnedValue, Variant as Value};

pub use zbus::Connection;

/// The daemon's well-known bus name.
pub const BUS_NAME: &str = "io.jpkid.Jpki1";
/// Path of the Manager (and Testing) object.
pub const MANAGER_PATH: &str = "/io/jpkid/Jpki1";
/// Prefix of the reader objects: `/io/jpkid/Jpki1/reader/N`.
pub const READER_PATH_PREFIX: &str = "/io/jpkid/Jpki1/reader/";
/// Prefix of the daemon's error names.
pub const ERROR_PREFIX: &str = "io.jpkid.Jpki1.Error.";

/// `a{sv}` as sent and received.
pub type Dict = HashMap<String, OwnedValue>;

/// `io.jpkid.Jpki1.Manager` on `/io/jpkid/Jpki1` (DESIGN §6.1).
#[proxy(
    interface = "io.jpkid.Jpki1.Manager",
    default_service = "io.jpkid.Jpki1",
    default_path = "/io/jpkid/Jpki1"
)]
pub trait Manager {
    /// The reader objects.
    fn get_readers(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    /// Verifies a certificate for `purpose` (`sign` | `auth`); option `at` (x).
    fn verify_certificate(
        &self,
        der: &[u8],
        purpose: &str,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<Dict>;

    /// Daemon version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    /// `production` or `test`.
    #[zbus(property)]
    fn trust_hierarchy(&self) -> zbus::Result<String>;

    /// The reader objects.
    #[zbus(property)]
    fn readers(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    /// A reader appeared.
    #[zbus(signal)]
    fn reader_added(&self, reader: OwnedObjectPath) -> zbus::Result<()>;

    /// A reader disappeared.
    #[zbus(signal)]
    fn reader_removed(&self, reader: OwnedObjectPath) -> zbus::Result<()>;
}

/// `io.jpkid.Jpki1.Reader` on `/io/jpkid/Jpki1/reader/N` (DESIGN §6.2).
#[proxy(
    interface = "io.jpkid.Jpki1.Reader",
    default_service = "io.jpkid.Jpki1"
)]
pub trait Reader {
    /// Reader name.
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;

    /// `empty`, `probing`, `ready`, `busy`, `unsupported`, `mute`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;

    /// `card`, `android`, `iphone`, `none`, `unknown`.
    #[zbus(property)]
    fn card_kind(&self) -> zbus::Result<String>;

    /// ATR of the card in the reader (empty without a card).
    #[zbus(property)]
    fn atr(&self) -> zbus::Result<Vec<u8>>;

    /// Unique bus name of the claimant, or empty.
    #[zbus(property)]
    fn claimant(&self) -> zbus::Result<String>;

    /// Card insertions counted since the daemon started.
    #[zbus(property)]
    fn insertions(&self) -> zbus::Result<u32>;

    /// The reader changed state.
    #[zbus(signal, name = "StateChanged")]
    fn state_change(&self, old: String, new: String, reason: String) -> zbus::Result<()>;

    /// Claims the reader for this connection.
    fn claim(&self) -> zbus::Result<()>;

    /// Releases a claim.
    fn release(&self) -> zbus::Result<()>;

    /// Tries left per PIN: `sign-password`, `auth-pin`, `text-pin`.
    fn get_pin_status(&self) -> zbus::Result<HashMap<String, u8>>;

    /// Reads a certificate: `auth`, `auth-ca`, `sign`, `sign-ca`.
    fn read_certificate(
        &self,
        which: &str,
        secret: &[u8],
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<Vec<u8>>;

    /// Signs a digest (PKCS#1 v1.5) with the `sign` or `auth` key.
    fn sign(
        &self,
        key: &str,
        hash: &str,
        digest: &[u8],
        secret: &[u8],
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<Vec<u8>>;
}

/// `io.jpkid.Jpki1.Testing` on `/io/jpkid/Jpki1`, present only with `jpkid --virtual`.
#[proxy(
    interface = "io.jpkid.Jpki1.Testing",
    default_service = "io.jpkid.Jpki1",
    default_path = "/io/jpkid/Jpki1"
)]
pub trait Testing {
    /// Puts the persona's card into virtual reader `reader`.
    fn insert_card(&self, reader: u32, persona_dir: &str) -> zbus::Result<()>;

    /// Takes the card out of virtual reader `reader`.
    fn remove_card(&self, reader: u32) -> zbus::Result<()>;
}

/// Which bus to use: `system` (production), `session`, or a D-Bus address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusChoice {
    System,
    Session,
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

/// The named errors of DESIGN §6.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    NoCard,
    NotJpkiCard,
    CardRemoved,
    ReaderBusy,
    ReaderGone,
    Claimed,
    PinIncorrect,
    PinBlocked,
    PinGuard,
    InvalidPinFormat,
    InvalidArgument,
    CertificateMissing,
    UnsupportedCard,
    NotAuthorized,
    Timeout,
    CardError,
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of DESIGN §6.4.
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::NoCard,
        ErrorKind::NotJpkiCard,
        ErrorKind::CardRemoved,
        ErrorKind::ReaderBusy,
        ErrorKind::ReaderGone,
        ErrorKind::Claimed,
        ErrorKind::PinIncorrect,
        ErrorKind::PinBlocked,
        ErrorKind::PinGuard,
        ErrorKind::InvalidPinFormat,
        ErrorKind::InvalidArgument,
        ErrorKind::CertificateMissing,
        ErrorKind::UnsupportedCard,
        ErrorKind::NotAuthorized,
        ErrorKind::Timeout,
        ErrorKind::CardError,
        ErrorKind::Internal,
    ];

    /// The short form of the name (`PinIncorrect`).
    pub fn short_name(self) -> &'static str {
        match self {
            ErrorKind::NoCard => "NoCard",
            ErrorKind::NotJpkiCard => "NotJpkiCard",
            ErrorKind::CardRemoved => "CardRemoved",
            ErrorKind::ReaderBusy => "ReaderBusy",
            ErrorKind::ReaderGone => "ReaderGone",
            ErrorKind::Claimed => "Claimed",
            ErrorKind::PinIncorrect => "PinIncorrect",
            ErrorKind::PinBlocked => "PinBlocked",
            ErrorKind::PinGuard => "PinGuard",
            ErrorKind::InvalidPinFormat => "InvalidPinFormat",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::CertificateMissing => "CertificateMissing",
            ErrorKind::UnsupportedCard => "UnsupportedCard",
            ErrorKind::NotAuthorized => "NotAuthorized",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::CardError => "CardError",
            ErrorKind::Internal => "Internal",
        }
    }

    /// The kind of a full D-Bus error name (`io.jpkid.Jpki1.Error.PinIncorrect`).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        let short = name.strip_prefix(ERROR_PREFIX)?;
        ErrorKind::ALL.into_iter().find(|k| k.short_name() == short)
    }
}

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The bus itself could not be reached.
    #[error("cannot connect to the {bus} bus")]
    Connect {
        bus: String,
        #[source]
        source: zbus::Error,
    },
    /// Nobody owns `io.jpkid.Jpki1` (the daemon is not running).
    #[error("jpkid is not running on the bus ({message})")]
    NotRunning { message: String },
    /// The daemon went away during the call, or did not answer within [`METHOD_TIMEOUT`].
    #[error("jpkid stopped answering ({message})")]
    NoAnswer { message: String },
    /// The bus policy refused the call (the caller is not in group `jpki`).
    #[error("the D-Bus policy refused the call ({message})")]
    AccessDenied { message: String },
    /// The daemon answered with one of its named errors.
    #[error("{}: {message}", kind.short_name())]
    Daemon { kind: ErrorKind, message: String },
    /// Any other D-Bus failure.
    #[error("D-Bus call failed")]
    Bus(#[source] zbus::Error),
}

impl ClientError {
    /// `remaining=N` at the start of a `PinIncorrect` or `PinGuard` message.
    pub fn remaining(&self) -> Option<u8> {
        match self {
            ClientError::Daemon { message, .. } => remaining_of(message),
            _ => None,
        }
    }
}

/// `N` of a message that starts `remaining=N`.
pub fn remaining_of(message: &str) -> Option<u8> {
    let rest = message.strip_prefix("remaining=")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl From<zbus::Error> for ClientError {
    fn from(e: zbus::Error) -> ClientError {
        let (name, message) = match &e {
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
            _ => return ClientError::Bus(e),
        };
        if let Some(kind) = ErrorKind::from_name(&name) {
            return ClientError::Daemon { kind, message };
        }
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
            _ => ClientError::Bus(e),
        }
    }
}

/// How long a call may wait for the daemon's answer. zbus and dbus-daemon wait forever by
/// default, so a wedged daemon would hang the client; this is a backstop well above the longest
/// legitimate wait (a full queue of `limits.queue_depth` requests at `limits.op_timeout_ms`
/// each, 4 × 30 s by default, plus the call's own).
pub const METHOD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Connects to the chosen bus.
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
pub async fn daemon_activatable(conn: &Connection) -> Result<bool, ClientError> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let names = dbus
        .list_activatable_names()
        .await
        .map_err(zbus::Error::from)?;
    Ok(names.iter().any(|n| n.as_str() == BUS_NAME))
}

/// Unique name of the daemon, or `None` when `io.jpkid.Jpki1` has no owner.
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

/// Manager proxy.
pub async fn manager(conn: &Connection) -> Result<ManagerProxy<'static>, ClientError> {
    Ok(ManagerProxy::new(conn).await?)
}

/// Reader proxy for `/io/jpkid/Jpki1/reader/N`.
pub async fn reader(conn: &Connection, n: u32) -> Result<ReaderProxy<'static>, ClientError> {
    reader_at(conn, &reader_path(n)).await
}

/// Reader proxy for an object path.
pub async fn reader_at(conn: &Connection, path: &str) -> Result<ReaderProxy<'static>, ClientError> {
    Ok(ReaderProxy::builder(conn)
        .path(path.to_owned())
        .build()
        .await?)
}

/// Testing proxy (only with `jpkid --virtual`).
pub async fn testing(conn: &Connection) -> Result<TestingProxy<'static>, ClientError> {
    Ok(TestingProxy::new(conn).await?)
}

/// The object path of reader `n`.
pub fn reader_path(n: u32) -> String {
    format!("{READER_PATH_PREFIX}{n}")
}

/// `N` of `/io/jpkid/Jpki1/reader/N`.
pub fn reader_number(path: &str) -> Option<u32> {
    path.strip_prefix(READER_PATH_PREFIX)?.parse().ok()
}

/// Card-method options (`allow-last-try`, `timeout-ms`).
pub fn card_options(
    allow_last_try: bool,
    timeout_ms: Option<u32>,
) -> HashMap<&'static str, Value<'static>> {
    let mut m = HashMap::new();
    if allow_last_try {
        m.insert("allow-last-try", Value::from(true));
    }
    if let Some(t) = timeout_ms {
        m.insert("timeout-ms", Value::from(t));
    }
    m
}

/// `VerifyCertificate` options (`at`).
pub fn verify_options(at: Option<i64>) -> HashMap<&'static str, Value<'static>> {
    let mut m = HashMap::new();
    if let Some(t) = at {
        m.insert("at", Value::from(t));
    }
    m
}

/// One value of an `a{sv}` result, as a plain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plain {
    Str(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
    Other(String),
}

/// An `a{sv}` result with its values made plain.
pub fn plain(dict: &Dict) -> Vec<(String, Plain)> {
    let mut out: Vec<(String, Plain)> = dict
        .iter()
        .map(|(k, v)| {
            let p = match &**v {
                Value::Str(s) => Plain::Str(s.to_string()),
                Value::I64(i) => Plain::Int(*i),
                Value::I32(i) => Plain::Int(i64::from(*i)),
                Value::U32(i) => Plain::Int(i64::from(*i)),
                Value::U8(i) => Plain::Int(i64::from(*i)),
                Value::Bool(b) => Plain::Bool(*b),
                Value::Array(a) => a
                    .iter()
                    .map(|x| match x {
                        Value::U8(b) => Some(*b),
                        _ => None,
                    })
                    .collect::<Option<Vec<u8>>>()
                    .map_or_else(|| Plain::Other(v.to_string()), Plain::Bytes),
                other => Plain::Other(other.to_string()),
            };
            (k.clone(), p)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A signal of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    ReaderAdded {
        path: String,
    },
    ReaderRemoved {
        path: String,
    },
    StateChanged {
        path: String,
        old: String,
        new: String,
        reason: String,
    },
    /// `io.jpkid.Jpki1` got an owner (the daemon started or restarted).
    DaemonStarted {
        owner: String,
    },
    /// `io.jpkid.Jpki1` lost its owner (the daemon stopped or crashed).
    DaemonStopped,
}

/// The daemon's signals (`ReaderAdded`, `ReaderRemoved`, `StateChanged`) and its coming and
/// going on the bus (`NameOwnerChanged` of `io.jpkid.Jpki1`).
pub async fn events(
    conn: &Connection,
) -> Result<impl futures_util::Stream<Item = Event> + Unpin + use<>, ClientError> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(BUS_NAME)
        .path_namespace(MANAGER_PATH)
        .build()
        .map_err(ClientError::Bus)?;
    let owner_rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.DBus")
        .interface("org.freedesktop.DBus")
        .member("NameOwnerChanged")
        .arg(0, BUS_NAME)
        .build()
        .map_err(ClientError::Bus)?;
    let owners = zbus::MessageStream::for_match_rule(owner_rule, conn, None).await?;
    let owners = owners.filter_map(|m| async move {
        let m = m.ok()?;
        let (name, _old, new): (String, String, String) = m.body().deserialize().ok()?;
        if name != BUS_NAME {
            return None;
        }
        Some(if new.is_empty() {
            Event::DaemonStopped
        } else {
            Event::DaemonStarted { owner: new }
        })
    });
    let stream = zbus::MessageStream::for_match_rule(rule, conn, None).await?;
    let signals = stream.filter_map(|m| async move {
        let m = m.ok()?;
        let h = m.header();
        let path = h.path()?.to_string();
        let iface = h.interface()?.to_string();
        let member = h.member()?.to_string();
        match (iface.as_str(), member.as_str()) {
            ("io.jpkid.Jpki1.Manager", "ReaderAdded") => {
                let p: OwnedObjectPath = m.body().deserialize().ok()?;
                Some(Event::ReaderAdded {
                    path: p.to_string(),
                })
            }
            ("io.jpkid.Jpki1.Manager", "ReaderRemoved") => {
                let p: OwnedObjectPath = m.body().deserialize().ok()?;
                Some(Event::ReaderRemoved {
                    path: p.to_string(),
                })
            }
            ("io.jpkid.Jpki1.Reader", "StateChanged") => {
                let (old, new, reason): (String, String, String) = m.body().deserialize().ok()?;
                Some(Event::StateChanged {
                    path,
                    old,
                    new,
                    reason,
                })
            }
            _ => None,
        }
    });
    Ok(Box::pin(futures_util::stream::select(
        Box::pin(signals),
        Box::pin(owners),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_map_to_kinds() {
        for k in ErrorKind::ALL {
            let name = format!("io.jpkid.Jpki1.Error.{}", k.short_name());
            assert_eq!(ErrorKind::from_name(&name), Some(k));
        }
        assert_eq!(ErrorKind::from_name("io.jpkid.Jpki1.Error.Nope"), None);
        assert_eq!(ErrorKind::from_name("PinIncorrect"), None);
    }

    #[test]
    fn remaining_is_read_from_the_message() {
        assert_eq!(remaining_of("remaining=2; wrong PIN"), Some(2));
        assert_eq!(remaining_of("remaining=0"), Some(0));
        assert_eq!(remaining_of("wrong PIN"), None);
    }

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
    fn reader_paths_round_trip() {
        assert_eq!(reader_path(3), "/io/jpkid/Jpki1/reader/3");
        assert_eq!(reader_number("/io/jpkid/Jpki1/reader/3"), Some(3));
        assert_eq!(reader_number("/io/jpkid/Jpki1"), None);
    }
}
