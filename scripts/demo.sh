#!/usr/bin/env bash
# jpkid in two minutes: builds, starts a private system-type D-Bus bus whose configuration
# includes the shipped policy (systemd/io.jpkid.Jpki1.conf), starts jpkid on it with a virtual
# My Number Card (persona hw-fixtures/personas/ordinary) and the test trust hierarchy, then shows
# through jpkictl: status, readers, PIN counters, the auth certificate, a signature with the auth
# key (PIN from stdin), verification of the signing certificate, and the licence-centre counter
# flows: link (the issue number), a signed consent checked by jpkid and by openssl, the match of
# the basic four (yes/no only: no name, address or birth date is ever printed), the counter's
# 対面確認 (authenticity with 照合番号B, the photo written to a file, not shown), and the rules
# of the terms. Everything it starts is stopped on exit; nothing outside a temporary directory is
# touched.
#
# Needs: cargo, dbus-daemon (Debian package dbus-daemon), openssl (only to show the signature
# verify). Run as any user; the test bus policy lets root or group jpki call the daemon, so as a
# normal user the bus config below also allows the current user.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PERSONA=${PERSONA:-$ROOT/hw-fixtures/personas/ordinary}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

command -v dbus-daemon >/dev/null || { echo "demo: dbus-daemon is missing (apt-get install dbus-daemon)" >&2; exit 2; }

say "cargo build"
cargo build --quiet --bin jpkid --bin jpkictl
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
JPKID=$TARGET/debug/jpkid
JPKICTL=$TARGET/debug/jpkictl

RUN=$(mktemp -d "${TMPDIR:-/tmp}/jpkid-demo.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

# The test configuration: test hierarchy over the committed test roots, CRLs imported by jpkictl.
mkdir -p "$RUN/roots" "$RUN/crl"
cp hw-fixtures/testpki/{sign,auth}_root_g{1,2}.der "$RUN/roots/"
cat >"$RUN/jpkid.toml" <<EOF
[trust]
hierarchy = "test"
roots_dir = "$RUN/roots"
card_ca_dir = "$ROOT/hw-fixtures/testpki/card_ca"

[revocation]
mode = "prefer"
crl_dir = "$RUN/crl"

[access]
allowed_groups = ["jpki", "$(id -gn)"]
EOF

say "jpkictl --config jpkid.toml crl import (the test PKI's CRLs)"
for c in sign_g1 sign_g2 auth_g1 auth_g2; do
    "$JPKICTL" --config "$RUN/jpkid.toml" crl import "hw-fixtures/testpki/$c.crl" | head -1
done
"$JPKICTL" --config "$RUN/jpkid.toml" crl status

# A private bus of type system with the default system policy and the project's policy included.
USER_POLICY=""
if [ "$(id -u)" != 0 ]; then
    USER_POLICY="<policy user=\"$(id -un)\"><allow own=\"io.jpkid.Jpki1\"/><allow send_destination=\"io.jpkid.Jpki1\"/><allow receive_sender=\"io.jpkid.Jpki1\"/></policy>"
fi
sed -e "s|@LISTEN_DIR@|$RUN|" -e "s|@POLICY_DIR@|$ROOT/systemd|" -e "s|@EXTRA@|$USER_POLICY|" \
    scripts/private-system-bus.conf.in >"$RUN/bus.conf"

say "private system bus + jpkid --no-pcsc --virtual $(basename "$PERSONA")"
dbus-daemon --config-file="$RUN/bus.conf" --nofork --nopidfile --print-address=1 >"$RUN/bus.address" 2>"$RUN/dbus.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$RUN/bus.address" ] && break; sleep 0.05; done
BUS=$(head -1 "$RUN/bus.address")
[ -n "$BUS" ] || { echo "demo: dbus-daemon printed no address" >&2; exit 1; }
echo "bus: $BUS"

JPKID_LOG=${JPKID_LOG:-warn} "$JPKID" --config "$RUN/jpkid.toml" --bus "$BUS" --no-pcsc --virtual "$PERSONA" \
    2>"$RUN/jpkid.log" &
PIDS+=($!)
ctl() { "$JPKICTL" --bus "$BUS" "$@"; }
for _ in $(seq 200); do
    if ctl readers >/dev/null 2>&1; then break; fi
    sleep 0.05
done
# Wait until the virtual card has been probed.
for _ in $(seq 200); do
    ctl --json readers 2>/dev/null | grep -q '"state": "ready"' && break
    sleep 0.05
done

say "jpkictl status"
ctl status

say "jpkictl readers"
ctl readers

say "jpkictl pins"
ctl pins

say "jpkictl cert auth (subject)"
ctl cert auth --out "$RUN/auth.der"

AUTH_PIN=$(sed -n '/^\[pins.auth\]/,/^\[/s/^value = "\(.*\)"/\1/p' "$PERSONA/persona.toml")
SIGN_PW=$(sed -n '/^\[pins.sign\]/,/^\[/s/^value = "\(.*\)"/\1/p' "$PERSONA/persona.toml")
TEXT_PIN=$(sed -n '/^\[pins.text\]/,/^\[/s/^value = "\(.*\)"/\1/p' "$PERSONA/persona.toml")
CODE_B=$(sed -n '/^\[pins.code_b\]/,/^\[/s/^value = "\(.*\)"/\1/p' "$PERSONA/persona.toml")

say "jpkictl sign --key auth --file README.md (auth PIN from stdin)"
printf '%s\n' "$AUTH_PIN" | ctl sign --key auth --hash sha256 --file README.md --pin-stdin --out "$RUN/sig.bin"
printf 'signature %s... (%s bytes)\n' "$(od -An -tx1 -v "$RUN/sig.bin" | tr -d ' \n' | cut -c1-64)" "$(wc -c <"$RUN/sig.bin")"
if command -v openssl >/dev/null; then
    openssl x509 -inform DER -in "$RUN/auth.der" -pubkey -noout >"$RUN/auth.pub"
    openssl dgst -sha256 -verify "$RUN/auth.pub" -signature "$RUN/sig.bin" README.md
fi

say "jpkictl cert sign (signing password from stdin) and jpkictl verify --purpose sign"
printf '%s\n' "$SIGN_PW" | ctl cert sign --pin-stdin --out "$RUN/sign.der" >/dev/null
# The signing certificate's subject names the holder's municipality (L=): the demo prints no
# attribute value, so that line is left out here.
ctl verify "$RUN/sign.der" --purpose sign | grep -v '^  subject '

say "jpkictl check (pcscd is not part of the demo: its lines say NG)"
ctl --config "$RUN/jpkid.toml" check || true

say "jpkictl link: the signing certificate's issue number (発行番号) for the Mynaportal link"
printf '%s\n' "$SIGN_PW" | ctl link --pin-stdin

say "jpkictl consent name address --reference DEMO-1 (the one-stop consent, signed on the card)"
printf '%s\n' "$SIGN_PW" | ctl consent name address --reference DEMO-1 --pin-stdin --out "$RUN/consent.p7m"

say "jpkictl verify-consent consent.p7m"
ctl verify-consent "$RUN/consent.p7m"
if command -v openssl >/dev/null; then
    say "openssl cms -verify (an independent check of the same file)"
    openssl cms -verify -binary -inform DER -in "$RUN/consent.p7m" \
        -CAfile hw-fixtures/testpki/sign_root_g2.pem -purpose any -out /dev/null 2>&1 |
        grep -x 'CMS Verification successful'
fi

say "jpkictl match (text PIN, then the signing password, from stdin): yes/no per attribute only"
printf '%s\n%s\n' "$TEXT_PIN" "$SIGN_PW" | ctl match --pin-stdin

say "jpkictl authenticity --photo (照合番号B from stdin): is the card genuine? the photo goes to a file, never to the screen"
printf '%s\n' "$CODE_B" | ctl authenticity --pin-stdin --photo "$RUN/face.jp2"
echo "photo: $(stat -c '%s bytes, mode %a' "$RUN/face.jp2")"

say "jpkictl consent-period / consent-status / link-requirement / eligibility (the rules of the terms)"
ctl consent-period 2026-04-01
ctl consent-status 2026-04-01 --on 2027-06-01 --certificate-lapse expiry --new-certificate
ctl link-requirement --holding myna-license-only
ctl eligibility myna-license-only

say "done"
