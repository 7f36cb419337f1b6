#!/usr/bin/env bash
# Runs a command inside a private mount + network namespace with its own pcscd and the vpcd
# reader driver (docs/reference/test-environment.md, "isolated variant"): vpcd's ports
# (35963, 35964; they listen on 0.0.0.0) exist only on the namespace's loopback, and nothing
# collides with a pcscd on the host or another test run.
#
# Usage: scripts/pcsc-ns.sh [--no-pcscd] COMMAND [ARGS...]
#   --no-pcscd   prepare the namespace but let COMMAND start pcscd itself (tests that stop
#                and restart it). /run/pcscd is private and empty either way.
# Needs root (or an unprivileged user namespace: unshare -r). Build before: no network inside.
set -euo pipefail
start_pcscd=1
if [[ ${1:-} == --no-pcscd ]]; then start_pcscd=0; shift; fi
(($#)) || { echo "usage: $0 [--no-pcscd] COMMAND [ARGS...]" >&2; exit 2; }

if [[ ${JPKID_PCSC_NS:-} != inside ]]; then
  exec unshare --mount --net -- env JPKID_PCSC_NS=inside "$0" \
    "$([[ $start_pcscd == 1 ]] && echo --with-pcscd || echo --no-pcscd)" "$@"
fi

# Inside the namespace.
[[ ${1:-} == --with-pcscd || ${1:-} == --no-pcscd ]] && shift
ip link set lo up
mkdir -p /run/pcscd
mount -t tmpfs tmpfs /run/pcscd
export JPKID_PCSC_NS=inside

if ((start_pcscd)); then
  log=$(mktemp /tmp/jpkid-pcscd.XXXXXX.log)
  pcscd --foreground --info >"$log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [[ -S /run/pcscd/pcscd.comm ]] && break; sleep 0.05; done
  [[ -S /run/pcscd/pcscd.comm ]] || { echo "pcscd did not start; log: $log" >&2; cat "$log" >&2; exit 1; }
  set +e
  "$@"
  rc=$?
  ((rc == 0)) || echo "pcscd log: $log" >&2
  exit $rc
else
  exec "$@"
fi
