#!/usr/bin/env bash
# edgeline demo in one command: installs what is missing, builds, starts a local mosquitto and
# influxd on loopback (data under ./.demo), runs `edgeline simulate` (the seed's emergency
# generators) and the agent with the seed's configuration (raw to database `kafka`, downsampled
# with alarms to `kafka_downsampled`), shows live status, stops influxd for a while to show the
# backlog being kept and drained, silences generator3 a quarter of the way through so that its
# alarm turns `stale`, then checks that the points and the stale alarm arrived and stops
# everything it started. Ctrl-C safe.
#
#   scripts/demo.sh [--duration SECONDS] [--ci] [--binary PATH] [--dir DIR]
#     --duration  how long the generators publish (default 40, or $DEMO_SECONDS)
#     --ci        non-interactive: no live view; exit 1 unless raw and downsampled points arrived
#     --binary    use this edgeline binary (skips installing dependencies and building)
#     --dir       where data and logs go (default ./.demo)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.demo
DEMO_SECONDS=${DEMO_SECONDS:-40}
CI_MODE=0
EDGELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DEMO_SECONDS=$2; shift 2 ;;
    --ci) CI_MODE=1; shift ;;
    --binary) EDGELINE=$2; shift 2 ;;
    --dir) DEMO=$2; shift 2 ;;
    *) echo "usage: scripts/demo.sh [--duration SECONDS] [--ci] [--binary PATH] [--dir DIR]" >&2; exit 2 ;;
  esac
done
[ -t 1 ] || CI_MODE=1  # no terminal to watch

if [ -z "$EDGELINE" ]; then
  scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j2 --target edgeline >/dev/null
  EDGELINE=$ROOT/build/agent/edgeline
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }

case "$DEMO" in /|"$HOME"|"$ROOT") echo "refusing to use $DEMO as the demo directory" >&2; exit 2 ;; esac
rm -rf "$DEMO"
mkdir -p "$DEMO"/{influxd/meta,influxd/data,influxd/wal}
MQTT_PORT=$(pick_port 18830)
HTTP_PORT=$(pick_port 18086)
RPC_PORT=$(pick_port $((HTTP_PORT + 2)))
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped; data and logs are in $DEMO"
}
trap cleanup EXIT INT TERM

cat >"$DEMO/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
CONF
mosquitto -c "$DEMO/mosquitto.conf" >"$DEMO/mosquitto.log" 2>&1 &
PIDS+=($!)

cat >"$DEMO/influxd.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$RPC_PORT"
[meta]
  dir = "$DEMO/influxd/meta"
[data]
  dir = "$DEMO/influxd/data"
  wal-dir = "$DEMO/influxd/wal"
[http]
  bind-address = "127.0.0.1:$HTTP_PORT"
  log-enabled = false
CONF
start_influxd() {
  influxd -config "$DEMO/influxd.conf" >>"$DEMO/influxd.log" 2>&1 &
  INFLUXD_PID=$!
  PIDS+=($INFLUXD_PID)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/ping" && return 0; sleep 0.2; done
  echo "influxd did not start, see $DEMO/influxd.log" >&2
  exit 1
}
start_influxd
curl -sf -XPOST "http://127.0.0.1:$HTTP_PORT/query" --data-urlencode "q=CREATE DATABASE kafka" >/dev/null
curl -sf -XPOST "http://127.0.0.1:$HTTP_PORT/query" --data-urlencode "q=CREATE DATABASE kafka_downsampled" >/dev/null

export EDGELINE_MQTT_URL=tcp://127.0.0.1:$MQTT_PORT
export EDGELINE_MQTT_CLIENT_ID=edgeline-demo
export EDGELINE_QUEUE_PATH=$DEMO/queue.db
export EDGELINE_INFLUX_URL=http://127.0.0.1:$HTTP_PORT
export EDGELINE_INFLUX_API=v1
export EDGELINE_INFLUX_DB=kafka
export EDGELINE_RETRY_MAX=5s
# The seed's Flux task, computed locally; 10 s windows instead of 1 m so rows appear during the demo.
export EDGELINE_DOWNSAMPLE_PRESET=seed
export EDGELINE_DOWNSAMPLE_EVERY=10s
export EDGELINE_DOWNSAMPLE_LATENESS=2s
export EDGELINE_ALARM_TOPIC=edgeline/alarms
# A generator silent for 15 s gets alarm `stale` (the default is 3 windows, 30 s here).
export EDGELINE_DOWNSAMPLE_STALE_AFTER=15s
export EDGELINE_HTTP_LISTEN=127.0.0.1:$(pick_port 18087)
"$EDGELINE" run >"$DEMO/agent.log" 2>&1 &
PIDS+=($!)

# The seed's emergency generators: three MQTT clients, a reading every 1-2 s each; generator3
# goes silent a quarter of the way through, as a generator whose controller hung.
SILENT_AFTER=$((DEMO_SECONDS / 4))
"$EDGELINE" simulate --generators 3 --interval 1s-2s --duration "${DEMO_SECONDS}s" \
  --silence "generator3@${SILENT_AFTER}s" >"$DEMO/simulate.log" 2>&1 &
PUBLISHER=$!
PIDS+=($PUBLISHER)

show() { echo; echo "---- $1"; "$EDGELINE" status || true; }
watch_for() {  # live view with backlog sparklines when there is a terminal
  if [ "$CI_MODE" = 1 ]; then sleep "$1"; show "$2"; return; fi
  timeout "$1" "$EDGELINE" status --watch 1 || true
}
sleep 3; show "running"
echo; echo "---- stopping influxd for 10s: the agent keeps everything in its queue"
kill "$INFLUXD_PID"; wait "$INFLUXD_PID" 2>/dev/null || true
watch_for 10 "influxd down: the backlog is kept"
start_influxd
watch_for 8 "influxd back: backlog drained"
wait "$PUBLISHER" 2>/dev/null || true
sleep 3; show "done publishing"
echo
echo "---- points in influxd (database kafka):"
curl -s -G "http://127.0.0.1:$HTTP_PORT/query" --data-urlencode "db=kafka" \
  --data-urlencode "q=SELECT count(fuel) FROM genData GROUP BY generatorID"
echo
echo "---- downsampled rows with alarms (database kafka_downsampled, last 5):"
curl -s -G "http://127.0.0.1:$HTTP_PORT/query" --data-urlencode "db=kafka_downsampled" \
  --data-urlencode "q=SELECT generatorID, fuel, alarm FROM genData ORDER BY time DESC LIMIT 5"
echo
echo "---- retained alarm state on MQTT (edgeline/alarms/#); generator3 went silent after ${SILENT_AFTER}s:"
STALE=""
for _ in $(seq 20); do  # its alarm turns stale 15 s after its last reading
  if mosquitto_sub -p "$MQTT_PORT" -t 'edgeline/alarms/generator3/alarm' -C 1 -W 2 2>/dev/null | grep -q '"value":"stale"'; then
    STALE=1; break
  fi
  sleep 1
done
mosquitto_sub -p "$MQTT_PORT" -t 'edgeline/alarms/#' -v -W 2 2>/dev/null || true
echo
echo "---- /health and a few /metrics of the agent ($EDGELINE_HTTP_LISTEN):"
curl -s "http://$EDGELINE_HTTP_LISTEN/health"; echo
curl -s "http://$EDGELINE_HTTP_LISTEN/metrics" | grep -E '^edgeline_(ingest_committed_points_total|sink_sent_points_total|queue_points)[ {]' || true
echo
echo "---- $(tail -1 "$DEMO/simulate.log")"

count() {
  curl -s -G "http://127.0.0.1:$HTTP_PORT/query" --data-urlencode "db=$1" --data-urlencode "q=SELECT count(fuel) FROM genData" |
    sed -n 's/.*"values":\[\["[^"]*",\([0-9]*\)\]\].*/\1/p'
}
RAW=$(count kafka); DOWN=$(count kafka_downsampled)
echo "---- devices, silent longest first:"
"$EDGELINE" status | sed -n '/^devices:/,/^$/p'
echo "---- check: ${RAW:-0} raw points and ${DOWN:-0} downsampled rows in influxd; generator3 $([ -n "$STALE" ] && echo stale || echo "NOT stale")"
if [ "${RAW:-0}" -gt 0 ] && [ "${DOWN:-0}" -gt 0 ] && [ -n "$STALE" ]; then
  echo "demo OK"
else
  echo "demo FAILED: see $DEMO/agent.log" >&2
  exit 1
fi
