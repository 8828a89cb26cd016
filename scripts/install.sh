#!/usr/bin/env bash
# Installs edgeline as a systemd service: the binary, the unit (from packaging/edgeline.service),
# the man page, an example env file with every setting commented, and the `edgeline` system
# user. With --destdir it only stages files under DIR (for tests): no user, no systemctl.
# scripts/package.sh builds a Debian package instead.
# Idempotent: re-running upgrades the binary and unit and never overwrites the env file.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--binary PATH]
       scripts/install.sh --uninstall [--purge] [--prefix DIR] [--destdir DIR]

  --prefix DIR   install the binary to DIR/bin (default /usr/local)
  --destdir DIR  stage everything under DIR instead of / (no user creation, no systemctl)
  --binary PATH  the edgeline binary to install (default build/agent/edgeline, built if missing)
  --uninstall    stop the service and remove the binary, man page and unit; keeps /etc/edgeline
                 (configuration) and /var/lib/edgeline (queued data)
  --purge        with --uninstall: also delete /etc/edgeline and /var/lib/edgeline
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/usr/local
DESTDIR=""
BINARY=""
UNINSTALL=0
PURGE=0

say() { echo "edgeline install: $*"; }
die() {
  echo "edgeline install: error: $*" >&2
  exit 1
}
value_of() {  # value_of OPTION "$@" : the option's argument, or a clear error
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
  echo "$2"
}

while (($#)); do
  case $1 in
    --prefix) PREFIX=$(value_of "$@"); shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --destdir) DESTDIR=$(value_of "$@"); shift 2 ;;
    --destdir=*) DESTDIR=${1#*=}; shift ;;
    --binary) BINARY=$(value_of "$@"); shift 2 ;;
    --binary=*) BINARY=${1#*=}; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

((PURGE == 0 || UNINSTALL == 1)) || die "--purge only goes with --uninstall"
# The prefix ends up in ExecStart=, where spaces or sed metacharacters would need quoting.
[[ $PREFIX =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "--prefix must be an absolute path of [A-Za-z0-9._/+-]: $PREFIX"
PREFIX=${PREFIX%/}
if [[ -n $DESTDIR ]]; then
  mkdir -p "$DESTDIR"
  DESTDIR=$(cd "$DESTDIR" && pwd)
  [[ $DESTDIR != / ]] || DESTDIR=""
fi
if [[ -z $DESTDIR && $(id -u) -ne 0 ]]; then
  die "installing into / needs root: run with sudo, or stage with --destdir DIR"
fi

BIN_DIR=$PREFIX/bin                      # as the running system sees it (ExecStart=)
BIN_DEST=$DESTDIR$BIN_DIR/edgeline
UNIT_DEST=$DESTDIR/etc/systemd/system/edgeline.service
MAN_DEST=$DESTDIR$PREFIX/share/man/man1/edgeline.1
ENV_DIR=$DESTDIR/etc/edgeline
ENV_DEST=$ENV_DIR/edgeline.env
STATE_DIR=$DESTDIR/var/lib/edgeline
QUEUE_PATH=/var/lib/edgeline/queue.db    # inside StateDirectory=edgeline of the unit

# Only touch systemd when installing into this very system and systemd is PID 1 (not in a
# container or chroot without it).
systemd_live() {
  [[ -z $DESTDIR ]] && command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if ((UNINSTALL)); then
  if systemd_live && [[ -e $UNIT_DEST ]]; then
    systemctl disable --now edgeline.service >/dev/null 2>&1 || true
    say "stopped and disabled edgeline.service"
  fi
  for f in "$BIN_DEST" "$MAN_DEST" "$UNIT_DEST"; do
    if [[ -e $f || -L $f ]]; then
      rm -f "$f"
      say "removed $f"
    else
      say "$f: not present"
    fi
  done
  if systemd_live; then systemctl daemon-reload; fi
  if ((PURGE)); then
    rm -rf "$ENV_DIR" "$STATE_DIR"
    say "purged $ENV_DIR (configuration) and $STATE_DIR (queue, including data not yet sent)"
  else
    say "kept $ENV_DIR (configuration) and $STATE_DIR (queue and data not yet sent);" \
      "--uninstall --purge deletes them"
  fi
  if [[ -z $DESTDIR ]] && getent passwd edgeline >/dev/null; then
    say "kept the system user edgeline (remove it with: userdel edgeline)"
  fi
  exit 0
fi

# ---- Binary
if [[ -z $BINARY ]]; then
  BINARY=$ROOT/build/agent/edgeline
  if [[ ! -x $BINARY ]]; then
    say "no binary at $BINARY: building it (Release) in $ROOT/build"
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$ROOT/build" -j2 --target edgeline
  fi
fi
[[ -f $BINARY && -x $BINARY ]] || die "$BINARY is not an executable file"
# Runs the binary once: proves it works on this machine, and gives the env file template.
"$BINARY" config --env-example >"$TMP/edgeline.env" ||
  die "$BINARY config --env-example failed: is it an edgeline binary built for this machine?"

install -d -m 0755 "$DESTDIR$BIN_DIR"
if [[ $BINARY -ef $BIN_DEST ]]; then
  say "$BIN_DEST is the given binary: left as is"
elif cmp -s "$BINARY" "$BIN_DEST"; then
  say "$BIN_DEST: unchanged"
else
  # Copy then rename, so a running agent's executable is replaced, never rewritten in place.
  install -m 0755 "$BINARY" "$BIN_DEST.new"
  mv -f "$BIN_DEST.new" "$BIN_DEST"
  say "installed $BIN_DEST"
fi

# ---- Man page (the unit's Documentation=man:edgeline(1)), from the binary's `help --man`
if "$BINARY" help --man >"$TMP/edgeline.1" 2>/dev/null; then
  install -d -m 0755 "$(dirname "$MAN_DEST")"
  if cmp -s "$TMP/edgeline.1" "$MAN_DEST"; then
    say "$MAN_DEST: unchanged"
  else
    install -m 0644 "$TMP/edgeline.1" "$MAN_DEST"
    say "installed $MAN_DEST"
  fi
else
  say "warning: $BINARY has no 'help --man' (an older build): no man page installed"
fi

# ---- Unit
TEMPLATE=$ROOT/packaging/edgeline.service
[[ -f $TEMPLATE ]] || die "missing unit template $TEMPLATE"
sed "s|@BINDIR@|$BIN_DIR|g" "$TEMPLATE" >"$TMP/edgeline.service"
! grep -q '@[A-Z_]*@' "$TMP/edgeline.service" || die "unsubstituted placeholder left in the unit"
install -d -m 0755 "$(dirname "$UNIT_DEST")"
if cmp -s "$TMP/edgeline.service" "$UNIT_DEST"; then
  say "$UNIT_DEST: unchanged"
else
  install -m 0644 "$TMP/edgeline.service" "$UNIT_DEST"
  say "installed $UNIT_DEST (ExecStart=$BIN_DIR/edgeline run)"
fi

# ---- Env file (holds secrets once edited: 0600, and never overwritten)
install -d -m 0755 "$ENV_DIR"
if [[ -e $ENV_DEST ]]; then
  say "kept existing $ENV_DEST"
  mode=$(stat -c %a "$ENV_DEST")
  [[ $mode == 600 ]] || say "warning: $ENV_DEST has mode $mode; it may hold secrets: chmod 600 it"
else
  sed -i "s|^#EDGELINE_QUEUE_PATH=.*|EDGELINE_QUEUE_PATH=$QUEUE_PATH|" "$TMP/edgeline.env"
  grep -qx "EDGELINE_QUEUE_PATH=$QUEUE_PATH" "$TMP/edgeline.env" ||
    die "the binary's env example has no EDGELINE_QUEUE_PATH line"
  install -m 0600 "$TMP/edgeline.env" "$ENV_DEST"
  say "installed $ENV_DEST (every setting commented at its default)"
fi

# ---- System user and systemd (only on the live system)
if [[ -z $DESTDIR ]]; then
  if getent passwd edgeline >/dev/null; then
    say "system user edgeline exists"
  else
    command -v useradd >/dev/null || die "useradd not found: create a system user 'edgeline'"
    # Group=edgeline in the unit: reuse an existing group of that name, else create it.
    if getent group edgeline >/dev/null; then group_opt=(-g edgeline); else group_opt=(-U); fi
    useradd --system --no-create-home --home-dir /var/lib/edgeline --shell /usr/sbin/nologin \
      "${group_opt[@]}" edgeline
    say "created system user edgeline"
  fi
fi
if systemd_live; then
  systemctl daemon-reload
  say "systemd reloaded"
  if systemctl is-active --quiet edgeline.service; then
    say "edgeline is running the previous binary: systemctl restart edgeline"
  fi
elif [[ -n $DESTDIR ]]; then
  say "staged under $DESTDIR: no user created, systemd not reloaded"
else
  say "systemd is not running here: skipped systemctl daemon-reload"
fi

cat <<EOF

Next steps (as root):
  1. Edit /etc/edgeline/edgeline.env: MQTT broker, InfluxDB URL, org, bucket and token.
     Check it: $BIN_DIR/edgeline --env-file /etc/edgeline/edgeline.env config
  2. systemctl enable --now edgeline
  3. $BIN_DIR/edgeline --env-file /etc/edgeline/edgeline.env status
     (exit 0 healthy, 3 degraded); logs: journalctl -u edgeline -f
EOF
