#!/usr/bin/env bash
# D-Bus benchmark (BENCHMARKS.md): time from start until jpkid owns its bus name, idle RSS, and
# Sign (auth key, SHA-256, PIN) over D-Bus — with the in-process virtual card, then through
# pcscd + vpcd — next to OpenSC's `pkcs11-tool --sign` on the same virtual card.
# Usage: N=500 scripts/bench-dbus.sh      (root: the pcscd part runs in scripts/pcsc-ns.sh)
#        JPKID=/path/to/other/jpkid N=300 scripts/bench-dbus.sh   (the same driver, another daemon
#        binary: an older build beside the current one, to tell a change from the VM's mood;
#        DAEMON_PERSONA=DIR gives it a persona directory its own loader reads, for --virtual)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [[ ${1:-} != --inside ]]; then
  cargo build -q --release --bin jpkid --example bench_dbus
  # A release card: its RSA in a debug build (~4 ms) would hide jpkid's own cost.
  cargo build -q --release -p jpki-vcard --features pcsc-wait --bins
  export VCARD_PROFILE=release
  exec scripts/pcsc-ns.sh "$0" --inside
fi

rel=$CARGO_TARGET_DIR/release
jpkid=${JPKID:-$rel/jpkid}
echo "daemon: $jpkid"
persona=hw-fixtures/personas/ordinary
daemon_persona=${DAEMON_PERSONA:-$persona}
pin=$(sed -n '/^\[pins.auth\]/,/^\[/s/^value = "\(.*\)"/\1/p' "$persona/persona.toml")
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/vcard.sh stop 0 >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
cat >"$work/jpkid.toml" <<TOML
[trust]
hierarchy = "test"
roots_dir = "$PWD/hw-fixtures/testpki"
[revocation]
mode = "off"
[audit]
enabled = false
TOML
# Sets $addr and records the bus's pid (not in a $(…) subshell, where pids+= would be lost).
bus() {
  dbus-daemon --session --fork --nopidfile --print-address=3 --print-pid=4 3>"$work/addr" 4>"$work/pid"
  pids+=("$(cat "$work/pid")")
  addr=$(head -n1 "$work/addr")
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo "== jpkid --virtual (in-process virtual card)"
bus
out=$("$rel/examples/bench_dbus" start "$addr" -- "$jpkid" --bus "$addr" --no-pcsc \
  --config "$work/jpkid.toml" --virtual "$daemon_persona")
echo "$out"; pid=${out##*pid=}; pids+=("$pid")
sleep 2; echo "idle RSS: $(rss_kib "$pid") KiB"
"$rel/examples/bench_dbus" sign "$addr" "$N" "$pin"
echo "RSS after $N signatures: $(rss_kib "$pid") KiB"
kill "$pid"

echo "== jpkid through pcscd + vpcd"
scripts/vcard.sh start 0 "$persona"
bus
out=$("$rel/examples/bench_dbus" start "$addr" -- "$jpkid" --bus "$addr" --config "$work/jpkid.toml")
echo "$out"; pid=${out##*pid=}; pids+=("$pid")
sleep 2; echo "idle RSS: $(rss_kib "$pid") KiB"
"$rel/examples/bench_dbus" sign "$addr" "$N" "$pin"
kill "$pid"; sleep 0.5

echo "== pkcs11-tool --sign (OpenSC) on the same virtual card, 20 runs"
module=$(find /usr/lib -name opensc-pkcs11.so -print -quit)
auth_id=$(pkcs15-tool --reader 0 --list-certificates | awk '/Authentication/ {f=1} f && /ID/ {print $NF; exit}')
printf 'jpkid bench\n' >"$work/data"
times=()
for _ in $(seq 20); do
  t0=$(date +%s%N)
  pkcs11-tool --module "$module" --slot-index 0 --login --pin "$pin" --sign \
    --mechanism SHA256-RSA-PKCS --id "$auth_id" --input-file "$work/data" --output-file "$work/sig" >/dev/null 2>&1
  times+=($(( ($(date +%s%N) - t0) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "pkcs11-tool sign p50=%.1fms max=%.1fms (whole process: load, card match, login, sign)\n", a[int(NR/2)]/1000, a[NR]/1000}'
