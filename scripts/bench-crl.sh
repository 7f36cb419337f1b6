#!/bin/sh
# CRL benchmark: build an N-entry CRL (default 10 M, 4-byte serials, reason codes; ORDER=shuffled
# lists them in random order instead of by serial), import it into an index, probe it, and
# compare with `openssl crl`. Prints the figures for BENCHMARKS.md.
# Needs /usr/bin/time (Debian package `time`) and openssl. Generated files are removed.
set -eu
N=${N:-10000000}
PROBES=${PROBES:-1000000}
ORDER=${ORDER:-sorted}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-crl.XXXXXX")
trap 'rm -rf "$W"' EXIT
sh "$ROOT/tests/pki_support/mkpki.sh" "$W/pki" >/dev/null
cargo build -q --release -p jpkid --no-default-features --example bench_crl
B=$CARGO_TARGET_DIR/release/examples/bench_crl
"$B" gen "$W/pki" "$W/big.crl" "$N" "$ORDER"
SIZE=$(stat -c %s "$W/big.crl")
echo "CRL file: $SIZE bytes"
sync
/usr/bin/time -f "import process: %e s wall, %U s user, %S s sys, peak RSS %M KiB" "$B" import "$W/big.crl" "$W/crl" "$W/pki/anchors"
"$B" lookup "$W/crl" "$PROBES"
/usr/bin/time -f "openssl crl -noout: %e s wall, peak RSS %M KiB" \
  openssl crl -inform DER -in "$W/big.crl" -noout
echo "budget: import peak RSS <= $(( 16 * 1024 + 12 * N / 1024 )) KiB (16 MiB + 12 B/entry), import <= 3 s at 10 M entries"
