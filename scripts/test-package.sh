#!/usr/bin/env bash
# The install test of jpkid's Debian package (README "Installing on a counter machine"), run by
# scripts/test.sh: the package is built twice (0.1.0 and 0.1.0+1, for the upgrade), checked with
# lintian, and installed into scratch roots — an overlay of this machine's own / in a private
# mount namespace, thrown away at the end: nothing is installed on the build machine itself.
#
#   scratch root 1: install; the files are where README's table says; the user, group,
#                   directories and the enabled (not started) unit exist; jpkid --version and
#                   jpkictl --help run; systemd-analyze verify passes on the installed unit;
#                   dbus-daemon accepts the installed policy; an upgrade keeps the edited
#                   configuration, the CRL indexes and the daemon's state; remove keeps only the
#                   conffile and the state; purge removes them too.
#   scratch root 2: without pcscd the install is a dependency error.
#
# Usage: scripts/test-package.sh   (as root: it mounts and chroots)
#        JPKID_CARGO_PROFILE=release scripts/test-package.sh   test the shipped build itself
# By default the binaries come from the dev profile, whose dependencies scripts/test.sh has just
# compiled (a release build from scratch would double CI's time); the package's files, scripts
# and features are the same. Note that the dev build replaces target/debug/jpkid{,ctl} with the
# production features: scripts/test.sh runs this last.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == --inside ]]; then
  inside=1
  shift
else
  inside=0
fi

fail() { echo "test-package: FAIL: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }

# ---------------------------------------------------------------------------------------------
# Inside a scratch root (chrooted): /pkg holds the packages and the expected paths.
if ((inside)); then
  phase=$1
  export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
  deb1=$(cat /pkg/deb1) deb2=$(cat /pkg/deb2)
  case $phase in
  lifecycle)
    dpkg -i "/pkg/$deb1" >/pkg/install.log 2>&1 || { cat /pkg/install.log; fail "dpkg -i"; }
    [[ $(dpkg-query -W -f='${Status} ${Version}' jpkid) == "install ok installed 0.1.0" ]] \
      || fail "jpkid 0.1.0 not installed"
    ok "installed 0.1.0"

    # Every path of README's table.
    while read -r path; do
      if [[ $path == */ ]]; then
        [[ -d $path && -n $(ls -A "$path") ]] || fail "README's $path: no such non-empty directory"
      else
        [[ -f $path ]] || fail "README's $path is not installed"
      fi
    done </pkg/paths
    ok "$(wc -l </pkg/paths) paths of README's table"
    [[ $(dpkg-query -W -f='${Conffiles}' jpkid) == *" /etc/jpkid/jpkid.toml "* ]] \
      || fail "/etc/jpkid/jpkid.toml is not a conffile"
    ok "/etc/jpkid/jpkid.toml is a conffile"

    # The production build: no virtual card, no Testing interface.
    grep -q 'io.jpkid.Jpki1.Testing' /usr/bin/jpkid && fail "the Testing interface is compiled in"
    ok "no Testing interface in /usr/bin/jpkid"

    # The maintainer scripts' work.
    getent passwd jpkid >/dev/null || fail "no user jpkid"
    getent group jpki >/dev/null || fail "no group jpki"
    [[ $(getent passwd jpkid | cut -d: -f7) == */nologin ]] || fail "jpkid can log in"
    for d in /var/lib/jpkid /var/lib/jpkid/crl; do
      [[ -d $d ]] || fail "$d not created"
      [[ $(stat -c %U "$d") == root ]] || fail "$d belongs to $(stat -c %U "$d"), not root"
      (( (8#$(stat -c %a "$d") & 8#022) == 0 )) || fail "$d is writable by others"
    done
    ok "user jpkid, group jpki, /var/lib/jpkid/crl root's and read-only for others"
    [[ -L /etc/systemd/system/multi-user.target.wants/jpkid.service ]] \
      || fail "jpkid.service not enabled"
    ok "jpkid.service enabled"

    jpkid --version | grep -qx 'jpkid 0.1.0' || fail "jpkid --version: $(jpkid --version)"
    jpkictl --help | grep -q 'link' || fail "jpkictl --help"
    man_dir=/usr/share/man
    [[ -f $man_dir/man8/jpkid.8.gz && -f $man_dir/man1/jpkictl-link.1.gz ]] || fail "man pages"
    ok "jpkid --version, jpkictl --help, man pages"

    systemd-analyze verify /lib/systemd/system/jpkid.service >/pkg/verify.log 2>&1 \
      || { cat /pkg/verify.log; fail "systemd-analyze verify"; }
    [[ ! -s /pkg/verify.log ]] || { cat /pkg/verify.log; fail "systemd-analyze verify warned"; }
    ok "systemd-analyze verify jpkid.service"

    # The policy as the system bus reads it: a bus whose config includes the installed file
    # must start; the same with the file cut short must not (the check can fail).
    bus_check() {
      cat >/pkg/bus.conf <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/pkg/bus.socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><deny own="*"/><allow send_type="method_call"/></policy>
  <include>$1</include>
</busconfig>
EOF
      rm -f /pkg/bus.socket
      timeout 10 dbus-daemon --config-file=/pkg/bus.conf --nofork --nopidfile --print-address=3 \
        3>/pkg/bus.address 2>/pkg/bus.err &
      local pid=$! n=0
      while [[ ! -s /pkg/bus.address ]] && kill -0 $pid 2>/dev/null && ((n++ < 100)); do
        sleep 0.1
      done
      local started=1
      [[ -s /pkg/bus.address ]] || started=0
      kill $pid 2>/dev/null || true
      wait $pid 2>/dev/null || true
      : >/pkg/bus.address
      return $((1 - started))
    }
    policy=/usr/share/dbus-1/system.d/io.jpkid.Jpki1.conf
    bus_check "$policy" || { cat /pkg/bus.err; fail "dbus-daemon refused $policy"; }
    head -c 200 "$policy" >/pkg/cut.conf
    bus_check /pkg/cut.conf && fail "dbus-daemon accepted a policy cut short"
    ok "dbus-daemon reads the installed policy (and refuses it cut short)"

    # Upgrade: the administrator's configuration, the CRL indexes and the state stay.
    echo '# edited at the counter' >>/etc/jpkid/jpkid.toml
    echo 'index' >/var/lib/jpkid/crl/test.idx
    install -d -m 0700 -o jpkid -g jpkid /var/lib/jpkid/state
    echo 'key' >/var/lib/jpkid/state/audit.key
    dpkg -i "/pkg/$deb2" >/pkg/upgrade.log 2>&1 || { cat /pkg/upgrade.log; fail "upgrade"; }
    [[ $(dpkg-query -W -f='${Status} ${Version}' jpkid) == "install ok installed 0.1.0+1" ]] \
      || fail "0.1.0+1 not installed"
    grep -q 'edited at the counter' /etc/jpkid/jpkid.toml || fail "upgrade lost the edited conffile"
    [[ -f /var/lib/jpkid/crl/test.idx && -f /var/lib/jpkid/state/audit.key ]] \
      || fail "upgrade lost the CRL index or the state"
    [[ $(stat -c %U /var/lib/jpkid/state) == jpkid ]] || fail "upgrade changed the state's owner"
    ok "upgrade to 0.1.0+1 kept the edited conffile, the CRL index and the state"

    dpkg-query -L jpkid >/pkg/files
    dpkg -r jpkid >/pkg/remove.log 2>&1 || { cat /pkg/remove.log; fail "dpkg -r"; }
    [[ ! -e /usr/bin/jpkid && ! -e /lib/systemd/system/jpkid.service ]] || fail "remove left files"
    [[ -f /etc/jpkid/jpkid.toml && -f /var/lib/jpkid/state/audit.key ]] \
      || fail "remove took the conffile or the state"
    ok "remove: the programs gone, the conffile and the state kept"

    dpkg -P jpkid >/pkg/purge.log 2>&1 || { cat /pkg/purge.log; fail "dpkg -P"; }
    dpkg-query -W jpkid >/dev/null 2>&1 && fail "jpkid still known to dpkg after purge"
    left=()
    while read -r f; do
      [[ -d $f ]] && continue # a directory left is one shared with another package
      [[ -e $f || -L $f ]] && left+=("$f")
    done </pkg/files
    ((${#left[@]} == 0)) || fail "purge left: ${left[*]}"
    for f in /etc/jpkid /var/lib/jpkid /usr/share/jpkid /usr/share/doc/jpkid \
      /etc/systemd/system/multi-user.target.wants/jpkid.service; do
      [[ -e $f || -L $f ]] && fail "purge left $f"
    done
    ok "purge removed every file, the configuration, the CRL indexes and the state"
    ;;
  no-pcscd)
    dpkg --purge --force-depends pcscd >/dev/null 2>&1
    if dpkg -i "/pkg/$deb1" >/pkg/install.log 2>&1; then
      fail "installed without pcscd"
    fi
    grep -q 'depends on pcscd' /pkg/install.log || { cat /pkg/install.log; fail "not a dependency error"; }
    [[ $(dpkg-query -W -f='${Status}' jpkid) != "install ok installed" ]] \
      || fail "jpkid configured without pcscd"
    ok "without pcscd: dpkg stops with 'depends on pcscd', jpkid is not configured"
    ;;
  esac
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Outside: build, lintian, then each phase in a scratch root of its own.
[[ $(id -u) == 0 ]] || fail "run as root (it mounts and chroots)"
work=$(mktemp -d /tmp/jpkid-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
export JPKID_CARGO_PROFILE=${JPKID_CARGO_PROFILE:-dev}

echo "building the package ($JPKID_CARGO_PROFILE profile)"
deb1=$(OUT=$work scripts/package.sh 2>"$work/build1.log" | tail -n1) \
  || { tail -40 "$work/build1.log"; fail "scripts/package.sh"; }
deb2=$(OUT=$work JPKID_DEB_VERSION=0.1.0+1 scripts/package.sh 2>"$work/build2.log" | tail -n1) \
  || { tail -40 "$work/build2.log"; fail "scripts/package.sh (0.1.0+1)"; }
[[ -f $deb1 && -f $deb2 ]] || fail "scripts/package.sh did not print the .deb"
basename "$deb1" >"$work/deb1"
basename "$deb2" >"$work/deb2"
ok "built $(basename "$deb1") and $(basename "$deb2")"

# lintian: no error. The remaining tags are explained in README.
lintian --allow-root --fail-on error --display-info "$deb1" | tee "$work/lintian.log" \
  || fail "lintian reports errors"
ok "lintian: no error ($(grep -c '^[EWI]:' "$work/lintian.log" || true) tags, README explains them)"

# The paths README's table promises: the first column of the table below "Installing on a
# counter machine", `/…` in back-quotes.
awk '/^## Installing on a counter machine/{on=1; next} /^## /{on=0} on' README.md |
  grep -o '^| `/[^`]*`' | sed 's/^| `//; s/`$//' >"$work/paths"
(($(wc -l <"$work/paths") >= 10)) || fail "README's install table has no paths"

# A fresh overlay of / per phase, in a private mount namespace: the upper layer is a tmpfs that
# disappears with the namespace.
scratch() {
  local phase=$1 dir
  dir=$(mktemp -d "$work/root.XXXXXX")
  unshare --mount --propagation private bash -euo pipefail -c '
    dir=$1 work=$2 repo=$3 phase=$4
    mount -t tmpfs -o size=1G scratch "$dir"
    mkdir "$dir/upper" "$dir/work" "$dir/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
    mount --rbind /dev "$dir/root/dev"
    mount -t proc proc "$dir/root/proc"
    mount -t tmpfs run "$dir/root/run"
    mkdir -p "$dir/root/pkg" "$dir/root/src"
    mount --bind "$work" "$dir/root/pkg"
    mount --bind "$repo" "$dir/root/src"
    exec chroot "$dir/root" /src/scripts/test-package.sh --inside "$phase"
  ' _ "$dir" "$work" "$PWD" "$phase"
}
echo "scratch root 1: install, upgrade, remove, purge"
scratch lifecycle
echo "scratch root 2: no pcscd"
scratch no-pcscd
echo "test-package: all passed"
