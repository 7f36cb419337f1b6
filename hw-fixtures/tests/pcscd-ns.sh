#!/bin/sh
# Runs the pcscd-backed vcard tests (tests/vpcd.rs, #[ignore]) against a private pcscd inside
# its own mount + network namespace (shared/reference/test-environment.md): it never collides
# with the host's pcscd or another engineer's, and vpcd's 0.0.0.0 ports stay in the namespace.
# Usage: hw-fixtures/tests/pcscd-ns.sh [extra cargo test args]   (as root, or with unshare -r)
set -eu
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
cargo test -p jpki-vcard --test vpcd --no-run --offline >/dev/null 2>&1
LOG=$(mktemp /tmp/vcard-pcscd.XXXXXX.log)
export LOG
exec unshare --mount --net -- sh -c '
  set -e
  ip link set lo up
  # A private /run/pcscd (or, if the host has none, a private /run) so that pcscd.comm is ours.
  if [ -d /run/pcscd ]; then mount -t tmpfs tmpfs /run/pcscd; else mount -t tmpfs tmpfs /run; fi
  set +e
  pcscd --foreground --info >"$LOG" 2>&1 & P=$!
  for _ in $(seq 100); do [ -S /run/pcscd/pcscd.comm ] && break; sleep 0.05; done
  cargo test -p jpki-vcard --test vpcd --offline -- --ignored --nocapture --test-threads 1 "$@"; rc=$?
  kill $P; wait $P 2>/dev/null
  echo "pcscd log: $LOG" >&2
  exit $rc' sh "$@"
