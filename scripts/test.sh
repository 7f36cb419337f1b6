#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what a fresh Debian machine lacks, then runs
# fmt, clippy and every test — the in-process ones, those on a private D-Bus bus, and those
# through a real pcscd + vpcd inside a private mount and network namespace.
#
# Usage: scripts/test.sh            (as root, as CI runs it; apt-get needs it)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and the tests need (DESIGN §9). Installed only when missing.
PACKAGES=(
  pcscd libpcsclite-dev pkg-config vsmartcard-vpcd opensc pcsc-tools
  dbus-daemon dbus-bin libglib2.0-bin openssl python3-dbus util-linux iproute2 systemd
  debhelper fakeroot lintian libglib2.0-dev-bin
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The group the shipped D-Bus policy admits (systemd/sysusers.d/jpkid.conf creates it on a
# real install); the policy tests call as a member of it.
getent group jpki >/dev/null || groupadd -r jpki
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step() { echo; echo "== $*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo check of a production build (PC/SC only, no virtual card compiled in)"
cargo check --workspace --all-targets --locked --no-default-features --features pcsc

# Tests that would skip without a tool (systemd-analyze …) fail instead: it was installed above.
export JPKID_REQUIRE_TOOLS=1

step "cargo test (in-process virtual card, private D-Bus bus)"
cargo test --workspace --locked

step "tests through pcscd + vpcd (private namespace)"
cargo test --workspace --locked --no-run >/dev/null 2>&1
cargo build --locked -p jpki-vcard --features pcsc-wait --bins
cargo test --locked -p jpki-vcard --test vpcd --no-run >/dev/null 2>&1
# The tests start and stop their own pcscd (one of them restarts it).
scripts/pcsc-ns.sh --no-pcscd cargo test --locked --test pcsc -- --ignored --test-threads 1
# The daemon attacked through pcscd: timeouts, SIGTERM and SIGKILL mid-PIN-flow, a second client.
scripts/pcsc-ns.sh cargo test --locked --test pcsc_daemon -- --ignored --test-threads 1
scripts/pcsc-ns.sh cargo test --locked -p jpki-vcard --test vpcd -- --ignored --test-threads 1
scripts/pcsc-ns.sh cargo test --locked --test jpkictl -- --ignored --test-threads 1
scripts/pcsc-ns.sh scripts/pcsc-smoke.sh

step "scripts/demo.sh (README's first command)"
scripts/demo.sh >/dev/null

# A clone stands alone: the tests that read the roots, the fixtures and the documents, in a copy
# of the repository's files with no shared/ anywhere above it. The copy builds into this
# target/ (its dependencies are already compiled); cargo would then take the copy's test
# binaries for this tree's (it records sources relative to the package), so the workspace's own
# crates are cleaned afterwards and built anew by the next run.
step "a copy of the repository with nothing around it"
repo=$PWD
alone=$(mktemp -d /tmp/jpkid-alone.XXXXXX)
trap 'rm -rf "$alone"; cargo clean --quiet --profile dev -p jpkid -p jpki-vcard || true' EXIT
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$alone"
for d in "$alone" $(dirname "$alone") /; do
  [[ ! -e $d/shared ]] || { echo "$d/shared exists: not a copy standing alone"; exit 1; }
done
(cd "$alone" && CARGO_TARGET_DIR="$repo/target" \
  cargo test --locked --lib --test repository --test pki_roots --test pki_fixtures \
  --test pki_proptest --test systemd_units)
(cd "$alone" && CARGO_TARGET_DIR="$repo/target" cargo test --locked -p jpki-vcard --lib --tests)
rm -rf "$alone"
cargo clean --quiet --profile dev -p jpkid -p jpki-vcard
trap - EXIT

# Last: its dev build of the package replaces target/debug/jpkid{,ctl} with the production ones.
step "the Debian package: lintian, install, upgrade, purge in scratch roots"
scripts/test-package.sh

step "all tests passed"
