#!/usr/bin/env bash
# Integration test of scripts/install.sh in temp DESTDIRs: files and modes, unit content, the env
# file (parsed by the agent), idempotence, --uninstall keeping data and --purge deleting it, and
# `systemd-analyze verify` of the unit when the host has it. Never touches the live system.
# Usage: install_test.sh EDGELINE_BINARY SOURCE_DIR. Prints PASS/FAIL lines; exit 1 on a failure.
# shellcheck disable=SC2016  # the single-quoted `bash -c` scripts take their values as "$1": intended
set -uo pipefail

BIN=$(realpath "$1")
SRC=$(realpath "$2")
INSTALL=$SRC/scripts/install.sh
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
mode_is() { [[ -e $1 && $(stat -c %a "$1") == "$2" ]]; }
has_line() { grep -qxF -- "$2" "$1"; }
# The agent reads EDGELINE_* from the environment too, and the environment wins over the env
# file: run it with a clean environment so only the file under test counts.
agent() { env -i PATH="$PATH" "$BIN" "$@"; }

D=$WORK/root
UNIT=$D/etc/systemd/system/edgeline.service
ENVF=$D/etc/edgeline/edgeline.env
BIN_DEST=$D/usr/local/bin/edgeline
QUEUE_LINE=EDGELINE_QUEUE_PATH=/var/lib/edgeline/queue.db

# What must stay untouched on the host: staging never creates the user or writes to /etc.
host_state() {
  getent passwd edgeline || true
  ls -ld /etc/edgeline /etc/systemd/system/edgeline.service 2>/dev/null || true
}
HOST_BEFORE=$(host_state)

# ---- First install
bash "$INSTALL" --destdir "$D" --binary "$BIN" >"$WORK/install1.out" 2>&1
check "install exits 0" test $? -eq 0
check "binary installed with mode 755" mode_is "$BIN_DEST" 755
check "installed binary is the given one" cmp -s "$BIN" "$BIN_DEST"
check "unit installed with mode 644" mode_is "$UNIT" 644
check "env file installed with mode 600" mode_is "$ENVF" 600
check "output shows the next steps" grep -q "systemctl enable --now edgeline" "$WORK/install1.out"

# ---- Unit content
for line in \
  "ExecStart=/usr/local/bin/edgeline run" \
  "EnvironmentFile=/etc/edgeline/edgeline.env" \
  "User=edgeline" "Group=edgeline" \
  "Type=notify" "NotifyAccess=main" "WatchdogSec=30s" \
  "StateDirectory=edgeline" "StateDirectoryMode=0700" \
  "Restart=always" "RestartSec=2s" "TimeoutStopSec=20s" "UMask=0077" \
  "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
  "PrivateDevices=yes" "ProtectKernelTunables=yes" "ProtectKernelModules=yes" \
  "ProtectControlGroups=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
  "RestrictNamespaces=yes" "LockPersonality=yes" "MemoryDenyWriteExecute=yes" \
  "ReadWritePaths=/var/lib/edgeline" "CapabilityBoundingSet=" \
  "SystemCallArchitectures=native" "WantedBy=multi-user.target"; do
  check "unit has '$line'" has_line "$UNIT" "$line"
done
check "unit has no unsubstituted placeholder" bash -c '! grep -q "@[A-Z_]*@" "$1"' _ "$UNIT"
check "unit has exactly one ExecStart" test "$(grep -c '^ExecStart=' "$UNIT")" -eq 1

# ---- Env file
check "env file sets only the queue path, uncommented" \
  test "$(grep -v -e '^#' -e '^[[:space:]]*$' "$ENVF")" == "$QUEUE_LINE"
# Every variable of the agent's table appears in the file (commented), and nothing else.
agent config >"$WORK/table.out" 2>/dev/null
grep -oE '^EDGELINE_[A-Z0-9_]+' "$WORK/table.out" | sort >"$WORK/table.names"
grep -oE '^#?EDGELINE_[A-Z0-9_]+=' "$ENVF" | tr -d '#=' | sort >"$WORK/env.names"
check "env file lists every EDGELINE_* variable ($(wc -l <"$WORK/table.names") in the table)" \
  bash -c '[[ -s $1 ]] && cmp -s "$1" "$2"' _ "$WORK/table.names" "$WORK/env.names"

# It parses: exit 2 is allowed only for the InfluxDB credentials the user still has to fill in.
agent --env-file "$ENVF" config >"$WORK/config.out" 2>"$WORK/config.err"
rc=$?
check "env file parses (config exit $rc; 0, or 2 for the missing credentials)" test $rc -eq 0 -o $rc -eq 2
check "env file has no unknown variable" bash -c '! grep -qi "unknown variable" "$1" "$2"' _ \
  "$WORK/config.out" "$WORK/config.err"
check "env file has no syntax error" bash -c '! grep -q "cannot\|expected KEY=VALUE\|invalid variable" "$1"' _ \
  "$WORK/config.err"
check "env file's queue path is the one in effect" \
  grep -qE '^EDGELINE_QUEUE_PATH +/var/lib/edgeline/queue.db +env' "$WORK/config.out"
# The commented defaults are real defaults: uncommenting all of them must stay valid (the only
# problems left are the credentials, which have no default).
sed 's/^#\(EDGELINE_[A-Z0-9_]*=\)/\1/' "$ENVF" >"$WORK/all.env"
agent --env-file "$WORK/all.env" config >/dev/null 2>"$WORK/all.err"
check "every commented default parses when uncommented" \
  bash -c '! grep -E "^  EDGELINE_" "$1" | grep -v "required when"' _ "$WORK/all.err"

# ---- Second install: idempotent, keeps an edited env file
printf '# edited by the operator\nEDGELINE_LOG_LEVEL=debug\n' >>"$ENVF"
cp "$ENVF" "$WORK/edited.env"
cp "$UNIT" "$WORK/unit.first"
bash "$INSTALL" --destdir "$D" --binary "$BIN" >"$WORK/install2.out" 2>&1
check "second install exits 0" test $? -eq 0
check "second install keeps the edited env file" cmp -s "$ENVF" "$WORK/edited.env"
check "second install says it kept the env file" grep -q "kept existing" "$WORK/install2.out"
check "env file still mode 600" mode_is "$ENVF" 600
check "second install leaves the unit identical" cmp -s "$UNIT" "$WORK/unit.first"
check "binary still mode 755 and current" bash -c '[[ $(stat -c %a "$1") == 755 ]] && cmp -s "$1" "$2"' _ \
  "$BIN_DEST" "$BIN"
check "no temp file left next to the binary" test ! -e "$BIN_DEST.new"

# ---- Another prefix: ExecStart follows it
P=$WORK/prefix-root
bash "$INSTALL" --destdir "$P" --prefix /opt/edgeline --binary "$BIN" >"$WORK/install3.out" 2>&1
check "--prefix /opt/edgeline installs there" mode_is "$P/opt/edgeline/bin/edgeline" 755
check "--prefix /opt/edgeline sets ExecStart" \
  has_line "$P/etc/systemd/system/edgeline.service" "ExecStart=/opt/edgeline/bin/edgeline run"

# ---- Bad invocations fail without installing anything
E=$WORK/error-root
bash "$INSTALL" --destdir "$E" --binary "$WORK/no-such-binary" >"$WORK/err1.out" 2>&1
check "a missing --binary fails" test $? -ne 0
check "a missing --binary installs nothing" test ! -e "$E/etc/systemd/system/edgeline.service"
bash "$INSTALL" --destdir "$E" --purge >"$WORK/err2.out" 2>&1
check "--purge without --uninstall fails" test $? -ne 0
bash "$INSTALL" --destdir "$E" --bogus >"$WORK/err3.out" 2>&1
check "an unknown option fails" test $? -ne 0
bash "$INSTALL" --destdir "$E" --prefix 'relative/path' --binary "$BIN" >"$WORK/err4.out" 2>&1
check "a relative --prefix fails" test $? -ne 0

# ---- systemd-analyze verify
# The unit names /usr/local/bin/edgeline, which does not exist on the host, and verify fails on a
# missing ExecStart binary; `--root=DESTDIR` does not help (verify then also looks for
# sysinit.target etc. in the empty root). So a copy of the unit with ExecStart pointing at the
# staged binary is verified; nothing else is changed. User=edgeline need not exist: verify does
# not resolve users (they are looked up at start). Verify exits 0 even on unknown keys or bad
# values (it only warns), so any output at all is a failure. A control unit with a bogus key
# proves the warnings are visible here; if they are not, the check would be meaningless: skip.
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$WORK/verify" "$WORK/control"
  sed "s|^ExecStart=/usr/local/bin/edgeline|ExecStart=$BIN_DEST|" "$UNIT" >"$WORK/verify/edgeline.service"
  sed 's/^\[Service\]$/[Service]\nNoSuchKey=1/' "$WORK/verify/edgeline.service" >"$WORK/control/edgeline.service"
  systemd-analyze verify --man=no "$WORK/control/edgeline.service" >"$WORK/control.out" 2>&1
  if ! grep -q NoSuchKey "$WORK/control.out"; then
    echo "SKIP: systemd-analyze verify does not report a bogus key on this host:"
    sed 's/^/  /' "$WORK/control.out"
  else
    systemd-analyze verify --man=no "$WORK/verify/edgeline.service" >"$WORK/verify.out" 2>&1
    rc=$?
    if [[ $rc -eq 0 && ! -s $WORK/verify.out ]]; then
      pass "systemd-analyze verify: no error, no warning"
    else
      fail "systemd-analyze verify (exit $rc):"
      sed 's/^/  /' "$WORK/verify.out"
    fi
  fi
else
  echo "SKIP: systemd-analyze not installed"
fi

# ---- Uninstall keeps configuration and data
mkdir -p "$D/var/lib/edgeline"
echo "queued" >"$D/var/lib/edgeline/queue.db"
bash "$INSTALL" --destdir "$D" --uninstall >"$WORK/uninstall.out" 2>&1
check "--uninstall exits 0" test $? -eq 0
check "--uninstall removes the binary" test ! -e "$BIN_DEST"
check "--uninstall removes the unit" test ! -e "$UNIT"
check "--uninstall keeps the edited env file" cmp -s "$ENVF" "$WORK/edited.env"
check "--uninstall keeps the queue" test -f "$D/var/lib/edgeline/queue.db"
check "--uninstall says what it kept" grep -q "kept .*/etc/edgeline" "$WORK/uninstall.out"
bash "$INSTALL" --destdir "$D" --uninstall >"$WORK/uninstall2.out" 2>&1
check "a second --uninstall exits 0" test $? -eq 0

# ---- Purge deletes them
bash "$INSTALL" --destdir "$D" --uninstall --purge >"$WORK/purge.out" 2>&1
check "--uninstall --purge exits 0" test $? -eq 0
check "--purge removes /etc/edgeline" test ! -e "$D/etc/edgeline"
check "--purge removes /var/lib/edgeline" test ! -e "$D/var/lib/edgeline"
check "--purge says so" grep -q "purged" "$WORK/purge.out"

# ---- The live path (no --destdir: system user, paths under /), run as root in a private mount
# namespace where /etc, /usr/local and /var are throwaway overlays and /run/systemd is hidden
# (so systemctl is not called on the host's systemd). Any failed mount stops before install.sh.
LIVE=$WORK/live
if [[ $(id -u) -eq 0 ]] && command -v unshare >/dev/null 2>&1; then
  mkdir -p "$LIVE"/{etc,usr,var}/{up,work}
  unshare --mount --propagation private bash -c '
    set -e
    L=$1 INSTALL=$2 BIN=$3
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$L/etc/up,workdir=$L/etc/work" /etc
    mount -t overlay overlay -o "lowerdir=/usr/local,upperdir=$L/usr/up,workdir=$L/usr/work" /usr/local
    mount -t overlay overlay -o "lowerdir=/var,upperdir=$L/var/up,workdir=$L/var/work" /var
    if [[ -d /run/systemd ]]; then mount -t tmpfs tmpfs /run/systemd; fi
    echo mounted=yes
    set +e
    bash "$INSTALL" --binary "$BIN" >"$L/install.out" 2>&1
    echo "install_rc=$?"
    echo "shell=$(getent passwd edgeline | cut -d: -f7)"
    getent group edgeline >/dev/null && echo group=yes
    echo "modes=$(stat -c %a /usr/local/bin/edgeline /etc/systemd/system/edgeline.service \
      /etc/edgeline/edgeline.env | tr "\n" " ")"
    bash "$INSTALL" --binary "$BIN" >"$L/install2.out" 2>&1
    echo "install2_rc=$?"
    bash "$INSTALL" --uninstall --purge >"$L/purge.out" 2>&1
    echo "purge_rc=$?"
    [[ -e /etc/edgeline || -e /usr/local/bin/edgeline ]] || echo purged=yes
  ' _ "$LIVE" "$INSTALL" "$BIN" >"$LIVE/facts" 2>&1
  if grep -qx mounted=yes "$LIVE/facts"; then
    check "live install exits 0" grep -qx install_rc=0 "$LIVE/facts"
    check "live install creates the system user edgeline with nologin" \
      grep -qx "shell=/usr/sbin/nologin" "$LIVE/facts"
    check "live install has the group edgeline" grep -qx group=yes "$LIVE/facts"
    check "live install modes 755 644 600" grep -qx "modes=755 644 600 " "$LIVE/facts"
    check "live re-install exits 0 and finds the user" \
      bash -c 'grep -qx install2_rc=0 "$1" && grep -q "user edgeline exists" "$2"' _ \
      "$LIVE/facts" "$LIVE/install2.out"
    check "live --uninstall --purge removes everything" \
      bash -c 'grep -qx purge_rc=0 "$1" && grep -qx purged=yes "$1"' _ "$LIVE/facts"
  else
    echo "SKIP: live install path (no private mount namespace with overlayfs here):"
    sed 's/^/  /' "$LIVE/facts"
  fi
else
  echo "SKIP: live install path (needs root and unshare)"
fi

check "the host was not touched (no user, nothing in /etc)" test "$(host_state)" == "$HOST_BEFORE"

if ((FAILURES)); then
  echo "install_test: $FAILURES check(s) failed"
  exit 1
fi
echo "install_test: all checks passed"
