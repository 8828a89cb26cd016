#!/usr/bin/env bash
# Test of scripts/package.sh and the Debian package it builds: contents, modes, control fields,
# conffiles, the man page (groff warnings, when groff is installed), lintian (when installed: an
# E: fails, warnings are shown), then a real dpkg install, remove, reinstall and purge into a
# throwaway root (dpkg --root with --force-script-chrootless, so the maintainer scripts run with
# DPKG_ROOT set). adduser, deluser, delgroup and chown are PATH stubs that record their calls (the
# host's users must not change; the stubs make no user); systemctl and deb-systemd-invoke are
# stubs that must not be called. deb-systemd-helper is the real one when it honours DPKG_ROOT.
# Never installs onto the host: the host's users, dpkg database and systemd files are compared
# before and after.
# Usage: package_test.sh EDGELINE_BINARY SOURCE_DIR. Prints PASS/FAIL lines; exit 1 on a failure,
# 77 (skipped) without dpkg-deb, dpkg-shlibdeps or dpkg.
# shellcheck disable=SC2016,SC2317  # single-quoted `bash -c` scripts take their values as "$1"; functions run via check
set -uo pipefail

for tool in dpkg-deb dpkg-shlibdeps dpkg; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool not installed (apt-get install dpkg-dev)"
    exit 77
  fi
done

BIN=$(realpath "$1")
SRC=$(realpath "$2")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

FAILURES=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  FAILURES=$((FAILURES + 1))
}
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
  if ((FAILURES)); then
    echo "package_test: $FAILURES check(s) failed"
    exit 1
  fi
  echo "package_test: all checks passed"
  exit 0
}

host_state() {
  getent passwd edgeline || true
  getent group edgeline || true
  dpkg-query -W -f='${Package} ${Status}\n' edgeline 2>/dev/null || true
  ls -ld /etc/edgeline /var/lib/edgeline /usr/bin/edgeline /lib/systemd/system/edgeline.service \
    /etc/systemd/system/edgeline.service /etc/systemd/system/multi-user.target.wants/edgeline.service \
    /var/lib/systemd/deb-systemd-helper-enabled/edgeline.service.dsh-also 2>/dev/null || true
}
HOST_BEFORE=$(host_state)

# ---- Build
VERSION=$("$BIN" --version | cut -d' ' -f2)
CMAKE_VERSION=$(sed -nE 's/^project\(edgeline VERSION ([0-9][0-9.]*)[ )].*/\1/p' "$SRC/CMakeLists.txt")
ARCH=$(dpkg --print-architecture)
check "edgeline --version ($VERSION) is CMakeLists.txt's project() VERSION ($CMAKE_VERSION)" \
  test "$VERSION" == "$CMAKE_VERSION"
# package.sh takes the maintainer from git; a tree git will not read (another user's checkout,
# a tarball) needs DEB_MAINTAINER.
if ! git -C "$SRC" log -1 >/dev/null 2>&1; then
  export DEB_MAINTAINER="edgeline package test <package-test@example.invalid>"
fi
bash "$SRC/scripts/package.sh" --binary "$BIN" --out "$WORK/out" >"$WORK/package.out" 2>"$WORK/package.err"
rc=$?
DEB=$(tail -n 1 "$WORK/package.out")
check "package.sh exits 0" test $rc -eq 0
check "package.sh prints the .deb's path, edgeline_${VERSION}_${ARCH}.deb" \
  test "$DEB" == "$WORK/out/edgeline_${VERSION}_${ARCH}.deb" -a -f "$DEB"
if [[ $rc -ne 0 || ! -f $DEB ]]; then
  sed 's/^/  /' "$WORK/package.err"
  finish
fi

# ---- Contents
dpkg-deb -c "$DEB" >"$WORK/contents"
has_entry() {  # has_entry MODE PATH: a file of the package, owned root/root
  grep -qE "^$1 root/root +[0-9]+ [0-9-]+ [0-9:]+ \./$2\$" "$WORK/contents"
}
check "binary /usr/bin/edgeline -rwxr-xr-x" has_entry -rwxr-xr-x usr/bin/edgeline
check "unit /lib/systemd/system/edgeline.service -rw-r--r--" has_entry -rw-r--r-- lib/systemd/system/edgeline.service
check "env file /etc/edgeline/edgeline.env -rw-------" has_entry -rw------- etc/edgeline/edgeline.env
check "man page /usr/share/man/man1/edgeline.1.gz" has_entry -rw-r--r-- usr/share/man/man1/edgeline.1.gz
check "copyright file" has_entry -rw-r--r-- usr/share/doc/edgeline/copyright
check "changelog" has_entry -rw-r--r-- usr/share/doc/edgeline/changelog.gz
check "every entry is owned root/root" bash -c '! grep -v " root/root " "$1"' _ "$WORK/contents"

dpkg-deb -x "$DEB" "$WORK/x"
dpkg-deb -e "$DEB" "$WORK/x/DEBIAN"
check "the binary is stripped (no .debug_info, no symbol table)" \
  bash -c '! readelf -S "$1" | grep -qE "\.debug_info|\.symtab"' _ "$WORK/x/usr/bin/edgeline"
check "the unit runs /usr/bin/edgeline" grep -qx "ExecStart=/usr/bin/edgeline run" \
  "$WORK/x/lib/systemd/system/edgeline.service"
check "the unit has no placeholder left" bash -c '! grep -q "@[A-Z_]*@" "$1"' _ \
  "$WORK/x/lib/systemd/system/edgeline.service"
check "the env file sets only the queue path, in the state directory" \
  test "$(grep -v -e '^#' -e '^[[:space:]]*$' "$WORK/x/etc/edgeline/edgeline.env")" == \
  "EDGELINE_QUEUE_PATH=/var/lib/edgeline/queue.db"

# ---- Control
field() { dpkg-deb -f "$DEB" "$1"; }
check "Package: edgeline" test "$(field Package)" == edgeline
check "Version: $VERSION" test "$(field Version)" == "$VERSION"
check "Architecture: $ARCH" test "$(field Architecture)" == "$ARCH"
DEPENDS=$(field Depends)
echo "  Depends: $DEPENDS"
for dep in libpaho-mqttpp3 libpaho-mqtt libsqlite3-0 libcurl4 librdkafka1 libzstd1 libc6 adduser; do
  check "Depends names $dep" bash -c '[[ ", $1" == *", $2"* ]]' _ "$DEPENDS" "$dep"
done
check "conffiles lists /etc/edgeline/edgeline.env (only)" \
  test "$(cat "$WORK/x/DEBIAN/conffiles")" == /etc/edgeline/edgeline.env
for script in postinst prerm postrm; do
  check "$script is executable and parses" bash -c '[[ -x $1 ]] && sh -n "$1"' _ "$WORK/x/DEBIAN/$script"
done
check "md5sums match the files" bash -c 'cd "$1" && md5sum --quiet -c DEBIAN/md5sums' _ "$WORK/x"

# ---- Man page
zcat "$WORK/x/usr/share/man/man1/edgeline.1.gz" >"$WORK/edgeline.1"
check "man page is edgeline help --man" bash -c '"$1" help --man | cmp -s - "$2"' _ "$BIN" "$WORK/edgeline.1"
if command -v groff >/dev/null 2>&1; then
  LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$WORK/edgeline.1" >"$WORK/groff.out" 2>&1
  rc=$?
  check "groff -man -Tutf8 -ww renders the man page without a warning (exit $rc)" \
    test $rc -eq 0 -a ! -s "$WORK/groff.out"
  sed 's/^/  /' "$WORK/groff.out"
  LC_ALL=C.UTF-8 groff -man -Tutf8 "$WORK/edgeline.1" 2>/dev/null | sed 's/.\x08//g' >"$WORK/man.txt"
  for section in NAME SYNOPSIS DESCRIPTION COMMANDS ENVIRONMENT "EXIT STATUS" FILES; do
    check "man page has $section" grep -qx "$section" "$WORK/man.txt"
  done
else
  echo "SKIP: groff not installed: the man page is not rendered"
fi

# ---- lintian
if command -v lintian >/dev/null 2>&1; then
  lintian --tag-display-limit 0 "$DEB" >"$WORK/lintian.out" 2>&1
  sed 's/^/  lintian: /' "$WORK/lintian.out"
  check "lintian reports no error" bash -c '! grep -q "^E: " "$1"' _ "$WORK/lintian.out"
else
  echo "SKIP: lintian not installed"
fi

# ---- Install into a throwaway root
R=$WORK/root
STUBS=$WORK/stubs
CALLS=$WORK/calls
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" "$STUBS"
touch "$R/var/lib/dpkg/status" "$CALLS"
stub() {  # stub NAME: records "NAME ARGS... [DPKG_ROOT=...]" in $CALLS and exits 0
  printf '#!/bin/sh\necho "%s $* [DPKG_ROOT=${DPKG_ROOT:-}]" >>"%s"\n' "$1" "$CALLS" >"$STUBS/$1"
  chmod +x "$STUBS/$1"
}
for name in adduser deluser delgroup chown systemctl deb-systemd-invoke; do stub "$name"; done
REAL_DSH=0
if DSH=$(command -v deb-systemd-helper) && grep -q DPKG_ROOT "$DSH"; then
  REAL_DSH=1
else
  stub deb-systemd-helper
  echo "NOTE: deb-systemd-helper is missing or ignores DPKG_ROOT here: stubbed"
fi
dpkg_root() {
  PATH=$STUBS:$PATH dpkg --root="$R" --admindir="$R/var/lib/dpkg" --log="$R/dpkg.log" \
    --force-script-chrootless --force-not-root --force-depends "$@"
}
status_in_root() { dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Status}' edgeline 2>/dev/null; }
called() { grep -qxF -- "$1 [DPKG_ROOT=$R]" "$CALLS"; }
mode_is() { [[ -e $1 && $(stat -c %a "$1") == "$2" ]]; }

dpkg_root -i "$DEB" >"$WORK/install.out" 2>&1
rc=$?
check "dpkg -i into the throwaway root exits 0" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/  /' "$WORK/install.out"
check "dpkg says installed" test "$(status_in_root)" == "install ok installed"
check "installed binary mode 755" mode_is "$R/usr/bin/edgeline" 755
check "installed env file mode 600" mode_is "$R/etc/edgeline/edgeline.env" 600
check "installed unit mode 644" mode_is "$R/lib/systemd/system/edgeline.service" 644
check "postinst creates /var/lib/edgeline mode 700" mode_is "$R/var/lib/edgeline" 700
check "postinst adds the system user: adduser --system --group --quiet --home /var/lib/edgeline --no-create-home edgeline" \
  called "adduser --system --group --quiet --home /var/lib/edgeline --no-create-home edgeline"
check "postinst gives /var/lib/edgeline to edgeline:edgeline" called "chown edgeline:edgeline $R/var/lib/edgeline"
check "postinst tells the admin what to do next" grep -q "set the MQTT broker and InfluxDB" "$WORK/install.out"
if ((REAL_DSH)); then
  check "postinst enables the unit in the root (multi-user.target.wants)" \
    test "$(readlink "$R/etc/systemd/system/multi-user.target.wants/edgeline.service")" == \
    /lib/systemd/system/edgeline.service
else
  check "postinst enables the unit" called "deb-systemd-helper enable edgeline.service"
fi
check "no systemctl or deb-systemd-invoke call outside a live systemd" \
  bash -c '! grep -qE "^(systemctl|deb-systemd-invoke) " "$1"' _ "$CALLS"

# ---- The installed agent runs, with the installed env file
agent() { env -i PATH="$PATH" "$R/usr/bin/edgeline" "$@"; }
check "installed edgeline --version" test "$(agent --version)" == "edgeline $VERSION"
agent --env-file "$R/etc/edgeline/edgeline.env" config >"$WORK/config.out" 2>"$WORK/config.err"
rc=$?
check "installed edgeline config with the installed env file: exit 2 for the credentials to fill in ($rc)" \
  test $rc -eq 2
check "config shows the packaged queue path from the env file" \
  grep -qE '^EDGELINE_QUEUE_PATH +/var/lib/edgeline/queue.db +env' "$WORK/config.out"
check "config's only problems are the InfluxDB settings to fill in" \
  bash -c '! grep -E "^  EDGELINE_" "$1" | grep -v "required when"' _ "$WORK/config.err"
env -i PATH="$PATH" EDGELINE_INFLUX_ORG=org EDGELINE_INFLUX_BUCKET=bucket EDGELINE_INFLUX_TOKEN=token \
  "$R/usr/bin/edgeline" --env-file "$R/etc/edgeline/edgeline.env" config >/dev/null 2>"$WORK/config2.err"
rc=$?
check "with org, bucket and token the installed env file is valid (config exit $rc)" test $rc -eq 0

# ---- Remove keeps configuration and data
printf '# edited by the operator\nEDGELINE_LOG_LEVEL=debug\n' >>"$R/etc/edgeline/edgeline.env"
cp "$R/etc/edgeline/edgeline.env" "$WORK/edited.env"
echo queued >"$R/var/lib/edgeline/queue.db"
dpkg_root -r edgeline >"$WORK/remove.out" 2>&1
rc=$?
check "dpkg -r exits 0" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/  /' "$WORK/remove.out"
check "dpkg says config-files after remove" test "$(status_in_root)" == "deinstall ok config-files"
check "remove deletes the binary" test ! -e "$R/usr/bin/edgeline"
check "remove deletes the unit" test ! -e "$R/lib/systemd/system/edgeline.service"
check "remove keeps the edited env file" cmp -s "$R/etc/edgeline/edgeline.env" "$WORK/edited.env"
check "remove keeps the queue" test "$(cat "$R/var/lib/edgeline/queue.db" 2>/dev/null)" == queued
check "remove keeps the system user (no deluser)" bash -c '! grep -qE "^(deluser|delgroup) " "$1"' _ "$CALLS"
if ((REAL_DSH)); then
  check "remove masks the unit" test "$(readlink "$R/etc/systemd/system/edgeline.service")" == /dev/null
fi

# ---- Reinstall: the edited env file and the queue are kept, the unit unmasked
dpkg_root -i "$DEB" >"$WORK/reinstall.out" 2>&1
check "reinstall exits 0" test $? -eq 0
check "reinstall keeps the edited env file" cmp -s "$R/etc/edgeline/edgeline.env" "$WORK/edited.env"
check "reinstall keeps the queue" test "$(cat "$R/var/lib/edgeline/queue.db" 2>/dev/null)" == queued
check "reinstall keeps the env file mode 600" mode_is "$R/etc/edgeline/edgeline.env" 600
if ((REAL_DSH)); then
  check "reinstall unmasks the unit" test ! -e "$R/etc/systemd/system/edgeline.service"
fi

# ---- Purge deletes them
dpkg_root -P edgeline >"$WORK/purge.out" 2>&1
rc=$?
check "dpkg -P exits 0" test $rc -eq 0
[[ $rc -eq 0 ]] || sed 's/^/  /' "$WORK/purge.out"
check "dpkg no longer knows the package after purge" test -z "$(status_in_root)" -o "$(status_in_root)" == \
  "unknown ok not-installed"
check "purge deletes /etc/edgeline" test ! -e "$R/etc/edgeline"
check "purge deletes /var/lib/edgeline" test ! -e "$R/var/lib/edgeline"
check "purge deletes the system user: deluser --system --quiet edgeline" called "deluser --system --quiet edgeline"
check "purge deletes the group: delgroup --system --quiet edgeline" called "delgroup --system --quiet edgeline"
if ((REAL_DSH)); then
  check "purge removes the unit's enablement" \
    test ! -e "$R/etc/systemd/system/multi-user.target.wants/edgeline.service" -a \
    ! -L "$R/etc/systemd/system/multi-user.target.wants/edgeline.service" -a \
    ! -e "$R/var/lib/systemd/deb-systemd-helper-enabled/edgeline.service.dsh-also"
fi
check "no systemctl or deb-systemd-invoke call in the whole run" \
  bash -c '! grep -qE "^(systemctl|deb-systemd-invoke) " "$1"' _ "$CALLS"

check "the host was not touched (users, dpkg database, systemd files)" test "$(host_state)" == "$HOST_BEFORE"
finish
