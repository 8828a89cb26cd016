#!/usr/bin/env bash
# Builds the Debian package edgeline_<version>_<arch>.deb from a staged tree with
# `dpkg-deb --build --root-owner-group`: the stripped binary, the systemd unit, the env file as a
# conffile (mode 0600), the man page from `edgeline help --man`, copyright, changelog and lintian
# overrides, the maintainer scripts in packaging/deb/, and Depends computed by dpkg-shlibdeps.
# Without --binary it builds the agent (RelWithDebInfo, with dpkg-buildflags' hardening flags) in
# its own build directory.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/package.sh [--binary PATH] [--build-dir DIR] [--out DIR]

  --binary PATH    package this edgeline binary instead of building one
  --build-dir DIR  where to build the binary (default build-deb in the source tree)
  --out DIR        where to write the .deb (default: the current directory)

Prints the path of the .deb on its last line. Environment: DEB_MAINTAINER (default: the author
of the source tree's last commit), SOURCE_DATE_EPOCH (default: that commit's time).
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BINARY=""
BUILD_DIR=$ROOT/build-deb
OUT=$PWD

say() { echo "edgeline package: $*" >&2; }
die() {
  echo "edgeline package: error: $*" >&2
  exit 1
}
value_of() {  # value_of OPTION "$@" : the option's argument, or a clear error
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
  echo "$2"
}

while (($#)); do
  case $1 in
    --binary) BINARY=$(value_of "$@"); shift 2 ;;
    --binary=*) BINARY=${1#*=}; shift ;;
    --build-dir) BUILD_DIR=$(value_of "$@"); shift 2 ;;
    --build-dir=*) BUILD_DIR=${1#*=}; shift ;;
    --out) OUT=$(value_of "$@"); shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture strip gzip; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install dpkg-dev binutils)"
done

# ---- Version (CMake's project() VERSION; the binary must say the same) and architecture
VERSION=$(sed -nE 's/^project\(edgeline VERSION ([0-9][0-9.]*)[ )].*/\1/p' "$ROOT/CMakeLists.txt")
[[ -n $VERSION ]] || die "no project(edgeline VERSION x.y.z ...) in $ROOT/CMakeLists.txt"
ARCH=$(dpkg --print-architecture)

# ---- Binary
if [[ -z $BINARY ]]; then
  say "building the agent in $BUILD_DIR (RelWithDebInfo, dpkg-buildflags with hardening=+all)"
  export DEB_BUILD_MAINT_OPTIONS=hardening=+all
  # Given as cache values (the environment's CFLAGS are read only when the directory is first
  # configured); CMake has no CPPFLAGS, so _FORTIFY_SOURCE goes with the compiler flags.
  CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS)
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGELINE_BUILD_TESTS=OFF \
    -DCMAKE_C_FLAGS="$(dpkg-buildflags --get CFLAGS) $CPPFLAGS" \
    -DCMAKE_CXX_FLAGS="$(dpkg-buildflags --get CXXFLAGS) $CPPFLAGS" \
    -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" >&2
  cmake --build "$BUILD_DIR" -j2 --target edgeline >&2
  BINARY=$BUILD_DIR/agent/edgeline
fi
[[ -f $BINARY && -x $BINARY ]] || die "$BINARY is not an executable file"
BINARY=$(realpath "$BINARY")
BINARY_VERSION=$("$BINARY" --version) || die "$BINARY --version failed"
[[ $BINARY_VERSION == "edgeline $VERSION" ]] ||
  die "$BINARY says '$BINARY_VERSION' but CMakeLists.txt's project() VERSION is $VERSION"

if [[ -z ${DEB_MAINTAINER:-} ]]; then
  DEB_MAINTAINER=$(git -C "$ROOT" log -1 --format='%an <%ae>' 2>/dev/null || true)
  [[ -n $DEB_MAINTAINER ]] || die "set DEB_MAINTAINER='Name <email>' (no git history to take it from)"
fi
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH  # dpkg-deb uses it for the archive's timestamps

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/edgeline
DEB=$OUT/edgeline_${VERSION}_${ARCH}.deb
umask 022

# ---- Staged tree
install -d "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/etc/edgeline" \
  "$STAGE/usr/share/man/man1" "$STAGE/usr/share/doc/edgeline" "$STAGE/usr/share/lintian/overrides"

# What dh_strip removes: debugging symbols, .comment and .note.
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$STAGE/usr/bin/edgeline" "$BINARY"
chmod 0755 "$STAGE/usr/bin/edgeline"

sed 's|@BINDIR@|/usr/bin|g' "$ROOT/packaging/edgeline.service" >"$STAGE/lib/systemd/system/edgeline.service"
! grep -q '@[A-Z_]*@' "$STAGE/lib/systemd/system/edgeline.service" || die "unsubstituted placeholder in the unit"
chmod 0644 "$STAGE/lib/systemd/system/edgeline.service"

# Every setting commented at its default, except the queue path, set to the unit's state directory.
"$BINARY" config --env-example >"$WORK/edgeline.env"
sed -i 's|^#EDGELINE_QUEUE_PATH=.*|EDGELINE_QUEUE_PATH=/var/lib/edgeline/queue.db|' "$WORK/edgeline.env"
grep -qx 'EDGELINE_QUEUE_PATH=/var/lib/edgeline/queue.db' "$WORK/edgeline.env" ||
  die "the binary's env example has no EDGELINE_QUEUE_PATH line"
# Root-only: it holds the InfluxDB token once filled in, and systemd reads EnvironmentFile= as root.
install -m 0600 "$WORK/edgeline.env" "$STAGE/etc/edgeline/edgeline.env"

"$BINARY" help --man >"$WORK/edgeline.1"
gzip -9n <"$WORK/edgeline.1" >"$STAGE/usr/share/man/man1/edgeline.1.gz"

install -m 0644 "$ROOT/packaging/deb/copyright" "$STAGE/usr/share/doc/edgeline/copyright"
install -m 0644 "$ROOT/packaging/deb/lintian-overrides" "$STAGE/usr/share/lintian/overrides/edgeline"
COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# The version has no Debian revision (the package is built from this tree, native), so the
# changelog is changelog.gz, as Debian policy 12.7 names a native package's.
cat >"$WORK/changelog" <<EOF
edgeline ($VERSION) unstable; urgency=medium

  * Built by scripts/package.sh from commit $COMMIT.

 -- $DEB_MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9n <"$WORK/changelog" >"$STAGE/usr/share/doc/edgeline/changelog.gz"
chmod 0644 "$STAGE/usr/share/doc/edgeline/changelog.gz" "$STAGE/usr/share/man/man1/edgeline.1.gz"

# ---- Depends: the shared libraries' packages, from dpkg-shlibdeps in a scratch source tree
mkdir -p "$WORK/src/debian"
printf 'Source: edgeline\n\nPackage: edgeline\nArchitecture: any\n' >"$WORK/src/debian/control"
SHLIBS=$(cd "$WORK/src" && dpkg-shlibdeps -O "$STAGE/usr/bin/edgeline") || die "dpkg-shlibdeps failed"
SHLIBS=${SHLIBS#shlibs:Depends=}
[[ -n $SHLIBS ]] || die "dpkg-shlibdeps found no dependency"

for script in postinst prerm postrm; do
  install -m 0755 "$ROOT/packaging/deb/$script" "$STAGE/DEBIAN/$script"
done
echo /etc/edgeline/edgeline.env >"$STAGE/DEBIAN/conffiles"
INSTALLED_SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<EOF
Package: edgeline
Version: $VERSION
Architecture: $ARCH
Maintainer: $DEB_MAINTAINER
Installed-Size: $INSTALLED_SIZE
Depends: $SHLIBS, adduser
Section: net
Priority: optional
Description: edge agent: MQTT to a durable SQLite queue to InfluxDB
 edgeline takes JSON or line-protocol telemetry from an MQTT broker and writes
 each message to a durable SQLite queue on the device before the broker is
 acknowledged. The queue is replicated to InfluxDB (v1, v2 or v3 write APIs),
 optionally also to a local downsampler and to Kafka, and survives network and
 InfluxDB outages and process crashes.
 .
 The package installs the systemd service edgeline.service, enabled but not
 started: set the broker and InfluxDB in /etc/edgeline/edgeline.env first.
EOF
(cd "$STAGE" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  >"$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles" "$STAGE/DEBIAN/md5sums"

mkdir -p "$OUT"
dpkg-deb --build --root-owner-group -Zxz "$STAGE" "$DEB" >&2
say "Depends: $SHLIBS, adduser"
echo "$DEB"
