#!/usr/bin/env bash
# Builds jpkid's Debian package and prints the path of the .deb on its last line.
#
# The package is made with debhelper from debian/ (dh with the systemd, sysusers, tmpfiles and
# man-page helpers writing the maintainer scripts), by `debian/rules build` and `binary` — the
# heart of dpkg-buildpackage, without the source package and .changes a counter machine has no
# use for. The Rust build is the production one: `--no-default-features --features pcsc` (no
# virtual card, no Testing interface), with the machine's own toolchain (rustup). Needs the
# Debian packages debhelper and fakeroot (scripts/test.sh installs them).
#
# Usage: scripts/package.sh                  the .deb in target/deb/
#        OUT=DIR scripts/package.sh          elsewhere
#        JPKID_CARGO_PROFILE=dev scripts/package.sh  the binaries from the dev profile (the
#                                                    install test's shortcut; never shipped)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
dpkg-checkbuilddeps
export DEB_DESTDIR="$OUT"
export JPKID_CARGO_PROFILE=${JPKID_CARGO_PROFILE:-release}
if [[ $JPKID_CARGO_PROFILE == dev ]]; then
  export DEB_BUILD_OPTIONS="noautodbgsym ${DEB_BUILD_OPTIONS:-}"
fi
# debhelper's working files go, whether the build succeeds or not.
trap 'fakeroot debian/rules clean >&2' EXIT
# Output of the build on stderr: the last line of stdout is the package. Only the packing
# needs fakeroot (the files owned by root); the compile runs as the caller.
debian/rules build >&2
fakeroot debian/rules binary >&2
echo "$OUT/jpkid_$(dpkg-parsechangelog -S Version)_$(dpkg --print-architecture).deb"
