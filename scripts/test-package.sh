#!/usr/bin/env bash
# The install test of jpkid's Debian package (README "Installing on a counter machine"), run by
# scripts/test.sh: the package is built, checked with lintian, repacked as the next version
# (its conffile changed) for the upgrade, and installed into scratch roots — overlays of this
# machine's own / in a private mount namespace, thrown away at the end: nothing is installed on
# the build machine itself.
#
#   lifecycle:     install; the files are where README's table says; the user, group,
#                  directories and the enabled (not started) unit exist; jpkid --version and
#                  jpkictl --help run; systemd-analyze verify passes on the installed unit;
#                  dbus-daemon reads the installed policy without a warning; an upgrade keeps
#                  the edited configuration (the new one beside it), the CRL indexes and the
#                  state, and restarts the daemon after a daemon-reload; remove stops it (masked
#                  first) while its files are there and keeps the conffile and the state; purge
#                  removes them too.
#   clean-upgrade: an unedited configuration is replaced by the new version's.
#   no-pcscd:      without pcscd the install is a dependency error.
#
# No systemd runs in a scratch root: `systemctl` and `deb-systemd-invoke` are replaced there by
# scripts that record each call (with /run/systemd/system present, as on a booted machine), so
# the maintainer scripts' systemd actions and their order are checked, not performed.
#
# Usage: scripts/test-package.sh   (as root: it mounts and chroots)
#        JPKID_CARGO_PROFILE=release scripts/test-package.sh   test the shipped build itself
# By default the binaries come from the dev profile, whose dependencies scripts/test.sh has just
# compiled (a release build from scratch would add minutes to CI); the package's files, scripts
# and features are the same, only dwz and the -dbgsym package are skipped. The dev build
# replaces target/debug/jpkid{,ctl} with the production features: scripts/test.sh runs this last.
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
# Inside a scratch root (chrooted): /pkg holds the packages, the expected paths and the logs.
if ((inside)); then
  phase=$1
  export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
  deb1=/pkg/$(cat /pkg/deb1) deb2=/pkg/$(cat /pkg/deb2)
  v1=$(cat /pkg/v1) v2=$(cat /pkg/v2)
  calls=/pkg/systemd-calls.$phase

  # As on a booted machine, with systemd's actions recorded instead of performed (the unit
  # file work — preset, enable, disable — still done by a real systemctl where the machine has
  # one: it needs no running systemd for it); no init script runs (policy-rc.d); no user or
  # group of jpkid's exists beforehand.
  mkdir -p /run/systemd/system
  if [[ -x /usr/bin/systemctl ]]; then mv /usr/bin/systemctl /usr/bin/systemctl.real; fi
  for tool in systemctl deb-systemd-invoke; do
    cat >"/usr/bin/$tool" <<EOF
#!/bin/sh
if [ -e /usr/bin/jpkid ]; then files=present; else files=absent; fi
echo "$tool \$* (jpkid \$files)" >>$calls
case "$tool \$*" in
  "systemctl "*preset*|"systemctl "*enable*|"systemctl "*disable*)
    if [ -x /usr/bin/systemctl.real ]; then exec systemctl.real "\$@"; fi ;;
  *"is-active pcscd.socket") exit 0 ;;
  *is-active*) exit 3 ;;
esac
exit 0
EOF
    chmod 0755 "/usr/bin/$tool"
  done
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  ! getent passwd jpkid >/dev/null || userdel jpkid
  ! getent group jpkid >/dev/null || groupdel jpkid
  ! getent group jpki >/dev/null || groupdel jpki
  : >"$calls"
  dpkg_() { # dpkg ARGS... LOG: never a prompt, the output kept for a failure
    local log=${*: -1}
    dpkg "${@:1:$#-1}" </dev/null >"$log" 2>&1 || { cat "$log"; return 1; }
  }
  called() { grep -c -- "$1" "$calls" || true; }

  case $phase in
  lifecycle)
    dpkg_ -i "$deb1" /pkg/install.log || fail "dpkg -i"
    [[ $(dpkg-query -W -f='${Status} ${Version}' jpkid) == "install ok installed $v1" ]] \
      || fail "jpkid $v1 not installed"
    ok "installed $v1"

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
    if grep -q 'io.jpkid.Jpki1.Testing' /usr/bin/jpkid; then
      fail "the Testing interface is compiled in"
    fi
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
    # Enabled: by deb-systemd-helper's own links where there is no systemctl, by `systemctl
    # preset` (Debian's preset enables) where there is one.
    [[ -L /etc/systemd/system/multi-user.target.wants/jpkid.service ]] \
      || (($(called 'preset jpkid.service') > 0)) || fail "jpkid.service not enabled"
    (($(called 'start jpkid') + $(called 'restart jpkid') == 0)) || fail "install started jpkid"
    grep -A3 -- 'daemon-reload' "$calls" | grep -q 'deb-systemd-invoke start pcscd.socket' \
      || { cat "$calls"; fail "pcscd.socket not restarted with jpkid's drop-in"; }
    ok "jpkid.service enabled, not started; pcscd.socket restarted after a daemon-reload"

    grep -qx "jpkid ${v1%%[+~-]*}" <<<"$(jpkid --version)" || fail "jpkid --version: $(jpkid --version)"
    grep -q 'link' <<<"$(jpkictl --help)" || fail "jpkictl --help"
    man_dir=/usr/share/man
    [[ -f $man_dir/man8/jpkid.8.gz && -f $man_dir/man1/jpkictl-link.1.gz ]] || fail "man pages"
    ok "jpkid --version, jpkictl --help, man pages"

    systemd-analyze verify /lib/systemd/system/jpkid.service >/pkg/verify.log 2>&1 \
      || { cat /pkg/verify.log; fail "systemd-analyze verify"; }
    [[ ! -s /pkg/verify.log ]] || { cat /pkg/verify.log; fail "systemd-analyze verify warned"; }
    ok "systemd-analyze verify jpkid.service"

    # The policy as the system bus reads it: a bus whose config includes the installed file
    # must start without a word on stderr (an unknown user or group is only a warning there);
    # the same with the file cut short must not start (the check can fail).
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
    # (A system bus started by root tries to raise its fd limit: not a word about the policy.)
    if grep -v 'Failed to set fd limit' /pkg/bus.err; then fail "dbus-daemon warned about $policy"; fi
    head -c 200 "$policy" >/pkg/cut.conf
    if bus_check /pkg/cut.conf; then fail "dbus-daemon accepted a policy cut short"; fi
    ok "dbus-daemon reads the installed policy without a warning (and refuses it cut short)"

    # Upgrade: the administrator's configuration (the new version's beside it), the CRL indexes
    # and the state stay; a running daemon is restarted on the new files.
    echo '# edited at the counter' >>/etc/jpkid/jpkid.toml
    echo 'index' >/var/lib/jpkid/crl/test.idx
    install -d -m 0700 -o jpkid -g jpkid /var/lib/jpkid/state
    echo 'key' >/var/lib/jpkid/state/audit.key
    : >"$calls"
    dpkg_ --force-confold -i "$deb2" /pkg/upgrade.log || fail "upgrade"
    [[ $(dpkg-query -W -f='${Status} ${Version}' jpkid) == "install ok installed $v2" ]] \
      || fail "$v2 not installed"
    grep -q 'edited at the counter' /etc/jpkid/jpkid.toml || fail "upgrade lost the edited conffile"
    grep -q "new in $v2" /etc/jpkid/jpkid.toml.dpkg-dist \
      || fail "the new configuration is not beside the edited one"
    [[ -f /var/lib/jpkid/crl/test.idx && -f /var/lib/jpkid/state/audit.key ]] \
      || fail "upgrade lost the CRL index or the state"
    [[ $(stat -c %U /var/lib/jpkid/state) == jpkid ]] || fail "upgrade changed the state's owner"
    grep -A99 'daemon-reload' "$calls" | grep -q 'deb-systemd-invoke try-restart jpkid.service' \
      || { cat "$calls"; fail "no try-restart of jpkid after a daemon-reload"; }
    ok "upgrade to $v2: the edited conffile kept (the new one as .dpkg-dist), the CRL index and"
    ok "  the state kept, jpkid try-restarted after a daemon-reload"

    dpkg-query -L jpkid >/pkg/files
    : >"$calls"
    dpkg_ -r jpkid /pkg/remove.log || fail "dpkg -r"
    [[ ! -e /usr/bin/jpkid && ! -e /lib/systemd/system/jpkid.service ]] || fail "remove left files"
    [[ -f /etc/jpkid/jpkid.toml && -f /var/lib/jpkid/state/audit.key ]] \
      || fail "remove took the conffile or the state"
    grep -A1 'systemctl mask --runtime jpkid.service' "$calls" |
      grep -q 'deb-systemd-invoke stop jpkid.service (jpkid present)' \
      || { cat "$calls"; fail "jpkid not masked and stopped while its files were there"; }
    grep -q 'systemctl unmask --runtime jpkid.service (jpkid absent)' "$calls" \
      || { cat "$calls"; fail "jpkid left masked"; }
    ok "remove: masked and stopped while its files were there, then the programs gone, the"
    ok "  conffile and the state kept"

    dpkg_ -P jpkid /pkg/purge.log || fail "dpkg -P"
    if dpkg-query -W jpkid >/dev/null 2>&1; then fail "jpkid still known to dpkg after purge"; fi
    left=()
    while read -r f; do
      [[ -d $f ]] && continue # a directory left is one shared with another package
      if [[ -e $f || -L $f ]]; then left+=("$f"); fi
    done </pkg/files
    ((${#left[@]} == 0)) || fail "purge left: ${left[*]}"
    for f in /etc/jpkid /var/lib/jpkid /usr/share/jpkid /usr/share/doc/jpkid \
      /etc/systemd/system/multi-user.target.wants/jpkid.service; do
      if [[ -e $f || -L $f ]]; then fail "purge left $f"; fi
    done
    ok "purge removed every file, the configuration, the CRL indexes and the state"
    ;;
  clean-upgrade)
    dpkg_ -i "$deb1" /pkg/install.log || fail "dpkg -i"
    dpkg_ -i "$deb2" /pkg/upgrade.log || fail "upgrade"
    grep -q "new in $v2" /etc/jpkid/jpkid.toml || fail "the unedited conffile was not updated"
    if compgen -G '/etc/jpkid/*.dpkg-*' >/dev/null; then fail "left beside it: $(ls /etc/jpkid)"; fi
    ok "an unedited configuration is replaced by $v2's"
    ;;
  no-pcscd)
    dpkg_ --purge --force-depends pcscd /pkg/pcscd-purge.log || fail "could not remove pcscd"
    if dpkg -i "$deb1" </dev/null >/pkg/install.log 2>&1; then
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
# Outside: build, lintian, the next version, then each phase in a scratch root of its own.
[[ $(id -u) == 0 ]] || fail "run as root (it mounts and chroots)"
work=$(mktemp -d /tmp/jpkid-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
export JPKID_CARGO_PROFILE=${JPKID_CARGO_PROFILE:-dev}

echo "building the package ($JPKID_CARGO_PROFILE profile)"
deb1=$(OUT=$work scripts/package.sh 2>"$work/build.log" | tail -n1) \
  || { tail -40 "$work/build.log"; fail "scripts/package.sh"; }
[[ -f $deb1 ]] || fail "scripts/package.sh did not print the .deb"
ok "built $(basename "$deb1")"

# lintian: no error, no warning. The informational tags left are explained in README.
lintian --allow-root --fail-on error,warning --display-info "$deb1" | tee "$work/lintian.log" \
  || fail "lintian reports errors or warnings"
ok "lintian: no error or warning ($(grep -c '^I:' "$work/lintian.log" || true) info tags, README explains them)"

# The next version: the same package repacked with another version and a changed conffile.
v1=$(dpkg-deb -f "$deb1" Version)
v2="$v1+1"
dpkg-deb -R "$deb1" "$work/next"
sed -i "s/^Version: .*/Version: $v2/" "$work/next/DEBIAN/control"
echo "# new in $v2" >>"$work/next/etc/jpkid/jpkid.toml"
(cd "$work/next" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z |
  xargs -0 md5sum >DEBIAN/md5sums)
deb2=$work/jpkid_${v2}_$(dpkg --print-architecture).deb
dpkg-deb --root-owner-group -b "$work/next" "$deb2" >/dev/null
rm -rf "$work/next"
basename "$deb1" >"$work/deb1"
basename "$deb2" >"$work/deb2"
echo "$v1" >"$work/v1"
echo "$v2" >"$work/v2"
ok "repacked as $(basename "$deb2") with a changed conffile"

# The paths README's table promises: the first column of the table below "Installing on a
# counter machine", `/…` in back-quotes.
awk '/^## Installing on a counter machine/{on=1; next} /^## /{on=0} on' README.md |
  { grep -o '^| `/[^`]*`' || true; } | sed 's/^| `//; s/`$//' >"$work/paths"
(($(wc -l <"$work/paths") >= 10)) || fail "README's install table has fewer than 10 paths"

# A fresh overlay of / per phase, in a private mount namespace: the upper layer is a tmpfs that
# disappears with the namespace. The sources are there read-only (for this script).
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
    mount -o remount,bind,ro "$dir/root/src"
    exec chroot "$dir/root" /src/scripts/test-package.sh --inside "$phase"
  ' _ "$dir" "$work" "$PWD" "$phase"
}
for phase in lifecycle clean-upgrade no-pcscd; do
  echo "scratch root: $phase"
  scratch "$phase"
done
echo "test-package: all passed"
