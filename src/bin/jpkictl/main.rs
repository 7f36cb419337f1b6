//! `jpkictl`: the command-line client of jpkid for counter staff and technicians.
//!
//! Card commands go to the daemon over D-Bus (`jpkid::client`); `crl` and most of `check` work
//! locally from the configuration file. Human output is Japanese when the locale says `ja`,
//! English otherwise; `--json` gives machine-readable output on every command.

/// `println!` that ignores a closed stdout (`jpkictl … | head`) instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// Freed memory is wiped (secrets pass through buffers no zeroizing type owns).
#[global_allocator]
static ALLOCATOR: jpkid::process::WipingAllocator = jpkid::process::WIPING_ALLOCATOR;

mod check;
mod counter;
mod crl;
mod msg;
mod out;
mod remote;
mod usb;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use jpkid::api::{CertKind, HashAlg, KeyKind, Purpose};
use jpkid::client::BusChoice;
use jpkid::terms::{CertificateLapse, ConsentItem, Holding};

use crate::msg::Lang;
use crate::out::Failure;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the operation failed (card, PIN, a certificate that is not valid, an NG line of `check`)
  2  usage or configuration error
  3  the daemon or the bus is unreachable

PINs and the signing password are never taken from the command line or the environment: they
are asked for on the terminal without echo, or read as one line from stdin with --pin-stdin
(`match`: two lines, the text PIN first, then the signing password).
Human output is Japanese when LC_ALL, LC_MESSAGES or LANG (the first one set) starts with `ja`.";

/// Client of the jpkid daemon (My Number Card / JPKI over D-Bus).
#[derive(Debug, Parser)]
#[command(name = "jpkictl", version, after_help = AFTER_HELP)]
struct Cli {
    /// Configuration file for local work (`crl`, `check`); default /etc/jpkid/jpkid.toml.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Bus of the daemon: system, session, or a D-Bus address.
    #[arg(
        long,
        value_name = "system|session|ADDRESS",
        default_value = "system",
        global = true
    )]
    bus: BusChoice,
    /// Machine-readable output (JSON).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the readers the daemon owns.
    Readers,
    /// Daemon version, trust hierarchy and readers.
    Status,
    /// PIN retry counters (spends no try).
    Pins(ReaderArg),
    /// Read a certificate from the card.
    Cert(CertArgs),
    /// Sign a digest with the card's signing or authentication key.
    Sign(SignArgs),
    /// Verify a certificate (chain, validity, revocation) through the daemon.
    Verify(VerifyArgs),
    /// Counter: the signing certificate's issue number (発行番号) for the Mynaportal link, after
    /// the card proved it holds the key.
    Link(LinkArgs),
    /// Counter: sign the consent to the address-change one-stop service (or its withdrawal) on
    /// the card, as a CMS.
    Consent(ConsentArgs),
    /// Check a consent CMS made by `consent`: signature, signer's certificate, what it says.
    VerifyConsent(VerifyConsentArgs),
    /// Counter: compare the card's basic four with its signing certificate (yes/no only).
    Match(MatchArgs),
    /// Counter (対面確認): is the card genuine? Reads the chip's face data with 照合番号B
    /// only and checks J-LIS's signatures and the chip's key.
    Authenticity(AuthenticityArgs),
    /// The period of a consent made on DATE (001 §4(2)).
    ConsentPeriod(ConsentPeriodArgs),
    /// Where a consent made on DATE stands on a day (001 §4, §5).
    ConsentStatus(ConsentStatusArgs),
    /// Whether the Mynaportal link still needs the counter submission (000 §4-§6).
    LinkRequirement(LinkRequirementArgs),
    /// Which services a holding may use (000 §2, 001 §2).
    Eligibility(EligibilityArgs),
    /// Follow reader and card events until Ctrl-C.
    Monitor,
    /// Step-by-step diagnosis for a technician.
    Check,
    /// Certificate revocation lists (local, uses the configuration's revocation.crl_dir).
    #[command(subcommand)]
    Crl(CrlCommand),
    /// Write the manual page jpkictl.1 and the shell completions into DIR (packaging).
    #[command(hide = true)]
    GenerateManual {
        /// Where.
        dir: PathBuf,
    },
    /// The audit's tag of a certificate serial, to find its records in the journal (root: reads
    /// the daemon's audit key).
    AuditTag {
        /// The serial (発行番号), hexadecimal.
        serial: String,
        /// The key file; default /var/lib/jpkid/state/audit.key.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CrlCommand {
    /// Verify a CRL (DER) and write its index into revocation.crl_dir.
    Import {
        /// The CRL file (DER).
        file: PathBuf,
    },
    /// List the installed CRL indexes.
    Status,
}

#[derive(Debug, Clone, Args)]
struct ReaderArg {
    /// Reader number (N of /io/jpkid/Jpki1/reader/N); default: the only reader with a card.
    #[arg(long, value_name = "N")]
    reader: Option<u32>,
}

#[derive(Debug, Clone, Args)]
struct SecretArgs {
    /// Read the PIN or signing password as one line from stdin instead of the terminal.
    #[arg(long)]
    pin_stdin: bool,
    /// Let the daemon try the PIN even when its tries are at the guard's floor.
    #[arg(long)]
    allow_last_try: bool,
}

#[derive(Debug, Clone, Args)]
struct CertArgs {
    /// Which certificate.
    which: CertKind,
    /// Write the certificate to FILE (DER, or PEM with --pem).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// PEM instead of DER (printed to stdout without --out).
    #[arg(long)]
    pem: bool,
    #[command(flatten)]
    reader: ReaderArg,
    #[command(flatten)]
    secret: SecretArgs,
}

/// Bytes given as hexadecimal on the command line (`:` and spaces allowed between bytes).
#[derive(Debug, Clone)]
struct HexBytes(Vec<u8>);

fn parse_hex(s: &str) -> Result<HexBytes, String> {
    let s: String = s.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    hex::decode(&s)
        .map(HexBytes)
        .map_err(|e| format!("not a hexadecimal digest ({e})"))
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["digest", "file"])))]
struct SignArgs {
    /// Which key signs.
    #[arg(long)]
    key: KeyKind,
    /// The hash algorithm of the digest.
    #[arg(long, default_value = "sha256")]
    hash: HashAlg,
    /// The digest as hexadecimal.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    digest: Option<HexBytes>,
    /// Hash this file and sign its digest.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Write the signature (raw bytes) to FILE instead of printing it as hex.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    reader: ReaderArg,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Clone, Args)]
struct VerifyArgs {
    /// The certificate (DER or PEM).
    file: PathBuf,
    /// Which hierarchy the certificate belongs to.
    #[arg(long)]
    purpose: Purpose,
    /// Verify at this time (unix seconds) instead of now.
    #[arg(long, value_name = "UNIX")]
    at: Option<i64>,
}

/// A clap parser over the D-Bus names of a choice of the terms module (shown in `--help`).
fn names_parser<T, E>(
    names: impl IntoIterator<Item = &'static str>,
) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err = E> + Clone + Send + Sync + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    PossibleValuesParser::new(names).try_map(|s: String| s.parse::<T>())
}

fn item_parser() -> impl TypedValueParser<Value = ConsentItem> {
    names_parser(ConsentItem::ALL.map(ConsentItem::as_str))
}

fn holding_parser() -> impl TypedValueParser<Value = Holding> {
    names_parser(Holding::ALL.map(Holding::as_str))
}

fn lapse_parser() -> impl TypedValueParser<Value = CertificateLapse> {
    names_parser(CertificateLapse::ALL.map(CertificateLapse::as_str))
}

#[derive(Debug, Clone, Args)]
struct LinkArgs {
    /// Write the signing certificate to FILE (DER; it carries the holder's name and address).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    reader: ReaderArg,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Clone, Args)]
struct ConsentArgs {
    /// The items consented to (or, with --withdraw, withdrawn; default then: all three).
    #[arg(value_name = "ITEM", value_parser = item_parser(), required_unless_present = "withdraw")]
    items: Vec<ConsentItem>,
    /// Sign a withdrawal of the consent instead (001 §4(3)イ).
    #[arg(long)]
    withdraw: bool,
    /// A reference of the counter's (case number, …) copied into the signed document.
    #[arg(long, value_name = "TEXT")]
    reference: Option<String>,
    /// Write the signed consent (CMS, DER) to FILE.
    #[arg(long, value_name = "FILE", required = true)]
    out: PathBuf,
    #[command(flatten)]
    reader: ReaderArg,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Clone, Args)]
struct VerifyConsentArgs {
    /// The consent CMS (DER), as `jpkictl consent --out` wrote it.
    file: PathBuf,
}

#[derive(Debug, Clone, Args)]
struct MatchArgs {
    /// Take the signing certificate from the token in reader N (a smartphone) instead of the
    /// card itself.
    #[arg(long, value_name = "N")]
    sign_reader: Option<u32>,
    #[command(flatten)]
    reader: ReaderArg,
    /// Read the text PIN and the signing password as two lines from stdin (text PIN first)
    /// instead of the terminal.
    #[arg(long)]
    pin_stdin: bool,
    /// Let the daemon try the PINs even when their tries are at the guard's floor.
    #[arg(long)]
    allow_last_try: bool,
}

#[derive(Debug, Clone, Args)]
struct AuthenticityArgs {
    /// Write the face photo (JPEG 2000) to FILE, a new file readable by its owner only; it is
    /// never shown.
    #[arg(long, value_name = "FILE")]
    photo: Option<PathBuf>,
    #[command(flatten)]
    reader: ReaderArg,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Clone, Args)]
struct ConsentPeriodArgs {
    /// The consent date, YYYY-MM-DD.
    date: String,
}

#[derive(Debug, Clone, Args)]
struct ConsentStatusArgs {
    /// The date of the (latest) consent, YYYY-MM-DD.
    date: String,
    /// The day asked about, YYYY-MM-DD; default: today in Japan.
    #[arg(long, value_name = "DATE")]
    on: Option<String>,
    /// What the holder carries on that day; default: unchanged since the consent.
    #[arg(long, value_name = "HOLDING", value_parser = holding_parser())]
    holding: Option<Holding>,
    /// How the signing certificate of the consent lapsed, if it did.
    #[arg(long, value_name = "LAPSE", value_parser = lapse_parser())]
    certificate_lapse: Option<CertificateLapse>,
    /// A new signing certificate was issued after the lapse.
    #[arg(long)]
    new_certificate: bool,
    /// The consent was withdrawn on DATE (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    withdrawn_on: Option<String>,
}

#[derive(Debug, Clone, Args)]
struct LinkRequirementArgs {
    /// What the holder carries.
    #[arg(long, value_name = "HOLDING", value_parser = holding_parser(), required = true)]
    holding: Holding,
    /// The one-stop service was started at a licence centre or police station.
    #[arg(long)]
    one_stop_started: bool,
    /// Linked before, under a holding the link carries over from.
    #[arg(long)]
    linked_before: bool,
    /// The link was cancelled in マイナポータル.
    #[arg(long)]
    unlinked: bool,
    /// After that cancellation the licence lapsed or was revoked.
    #[arg(long)]
    licence_lapsed_after_unlink: bool,
}

#[derive(Debug, Clone, Args)]
struct EligibilityArgs {
    /// What the holder carries.
    #[arg(value_name = "HOLDING", value_parser = holding_parser())]
    holding: Holding,
    /// The licence is suspended (停止中又は仮停止中).
    #[arg(long)]
    suspended: bool,
}

fn main() -> ExitCode {
    let lang = Lang::from_env();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let json = cli.json;
    let result = run(cli, lang);
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            f.print(lang, json);
            ExitCode::from(f.code)
        }
    }
}

/// Runs the command; `Ok(code)` when the command printed its own result (`check` may end with 1).
fn run(cli: Cli, lang: Lang) -> Result<u8, Failure> {
    let ctx = out::Ctx {
        lang,
        json: cli.json,
    };
    match cli.command {
        Command::Crl(CrlCommand::Import { file }) => {
            crl::import(&ctx, cli.config.as_deref(), &file).map(|()| 0)
        }
        Command::Crl(CrlCommand::Status) => crl::status(&ctx, cli.config.as_deref()).map(|()| 0),
        Command::GenerateManual { dir } => {
            use clap::CommandFactory;
            jpkid::manual::generate(Cli::command(), "1", &dir)
                .map(|()| 0)
                .map_err(|e| Failure::internal(format!("{}: {e}", dir.display())))
        }
        Command::AuditTag { serial, key } => {
            let path = key.unwrap_or_else(|| {
                PathBuf::from(jpkid::audit::DEFAULT_STATE_DIR).join(jpkid::audit::KEY_FILE)
            });
            let key = jpkid::audit::AuditKey::load(&path).map_err(|e| {
                Failure::failed("audit-tag", e.to_string()).with_hint(msg::f(
                    lang,
                    msg::M::HintAuditKey,
                    &[],
                ))
            })?;
            let tag = key.tag(serial.trim());
            if cli.json {
                outln!("{}", serde_json::json!({ "serial-tag": tag }));
            } else {
                outln!("serial_tag={tag}");
            }
            Ok(0)
        }
        Command::Check => Ok(check::run(&ctx, cli.config.as_deref(), &cli.bus)),
        Command::Sign(ref a)
            if a.digest
                .as_ref()
                .is_some_and(|d| d.0.len() != a.hash.digest_len()) =>
        {
            let got = a.digest.as_ref().map_or(0, |d| d.0.len());
            Err(Failure::usage(msg::f(
                lang,
                msg::M::DigestLength,
                &[
                    a.hash.as_str(),
                    &a.hash.digest_len().to_string(),
                    &got.to_string(),
                ],
            )))
        }
        command => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::internal(format!("tokio runtime: {e}")))?;
            rt.block_on(remote::run(&ctx, &cli.bus, command))
                .map(|()| 0)
        }
    }
}
