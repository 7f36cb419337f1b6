#!/usr/bin/env bash
# Starts and stops virtual My Number Cards behind pcscd's vpcd driver, waiting through PC/SC
# (pcsc-wait) until pcscd shows the reader PRESENT or EMPTY — never a fixed sleep.
#
#   scripts/vcard.sh start SLOT PERSONA_DIR [vcard options...]   e.g. --mute-after 3
#   scripts/vcard.sh stop SLOT
#
# SLOT 0 is "Virtual PCD 00 00" (port 35963), 1 is "Virtual PCD 00 01" (35964). Pid files and
# logs go to $VCARD_RUN (default /tmp/jpkid-vcard). Binaries come from $CARGO_TARGET_DIR or
# target/, profile $VCARD_PROFILE (default debug; benchmarks use release so the card's RSA is
# not what they measure). Build: cargo build -p jpki-vcard --features pcsc-wait --bins.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/${VCARD_PROFILE:-debug}"
run="${VCARD_RUN:-/tmp/jpkid-vcard}"
mkdir -p "$run"
usage() { echo "usage: $0 start SLOT PERSONA_DIR [vcard options...] | stop SLOT" >&2; exit 2; }
(($# >= 2)) || usage
cmd=$1 slot=$2; shift 2
[[ $slot == 0 || $slot == 1 ]] || { echo "slot must be 0 or 1" >&2; exit 2; }
port=$((35963 + slot))

case $cmd in
  start)
    (($# >= 1)) || usage
    persona=$1; shift
    "$bin/vcard" --persona "$persona" --port "$port" "$@" >"$run/vcard-$slot.log" 2>&1 &
    echo $! >"$run/vcard-$slot.pid"
    if ! "$bin/pcsc-wait" present --slot "$slot" --timeout 10; then
      cat "$run/vcard-$slot.log" >&2
      exit 1
    fi
    ;;
  stop)
    if [[ -f $run/vcard-$slot.pid ]]; then
      kill "$(cat "$run/vcard-$slot.pid")" 2>/dev/null || true
      rm -f "$run/vcard-$slot.pid"
    fi
    "$bin/pcsc-wait" empty --slot "$slot" --timeout 10
    ;;
  *) usage ;;
esac
