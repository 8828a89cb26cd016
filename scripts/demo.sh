#!/usr/bin/env bash
# edgeline demo in one command: builds, starts a local mosquitto and influxd on loopback
# (data under ./.demo), runs a small emergency-generator publisher and the agent, shows
# `edgeline status` while data flows, stops influxd for a while to show the backlog being kept
# and drained, queries influxd to show the points arrived, then stops everything it started.
# Ctrl-C safe. DEMO_SECONDS (default 40) sets how long generators publish.
# (The ops issue replaces the bash publisher with `edgeline simulate` and adds downsampling.)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.demo
DEMO_SECONDS=${DEMO_SECONDS:-40}

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target edgeline >/dev/null
EDGELINE=$ROOT/build/agent/edgeline

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }

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
"$EDGELINE" run >"$DEMO/agent.log" 2>&1 &
PIDS+=($!)

# Emergency generators, as the seed's simulator publishes them (flat JSON, no timestamp).
publish_generators() {
  local lat=(40.68066 34.05223 41.87811) lon=(-73.47429 -118.24368 -87.6298) fuel=(900 950 700)
  local end=$((SECONDS + DEMO_SECONDS))
  while [ $SECONDS -lt $end ]; do
    for i in 0 1 2; do
      local load=$((RANDOM % 100)) id="generator$((i + 1))"
      fuel[$i]=$((fuel[i] - load / 10)); [ "${fuel[$i]}" -lt 100 ] && fuel[$i]=1000
      mosquitto_pub -p "$MQTT_PORT" -q 1 -t "emergency_generator/$id" -m \
        "{\"generatorID\": \"$id\", \"lat\": ${lat[$i]}, \"lon\": ${lon[$i]}, \"temperature\": $((150 + load)), \"power\": $((load * 26)), \"load\": $load, \"fuel\": ${fuel[$i]}}"
    done
    sleep 1
  done
}
publish_generators &
PUBLISHER=$!
PIDS+=($PUBLISHER)

show() { echo; echo "---- $1"; "$EDGELINE" status || true; }
sleep 5; show "running"
echo; echo "---- stopping influxd for 10s: the agent keeps everything in its queue"
kill "$INFLUXD_PID"; wait "$INFLUXD_PID" 2>/dev/null || true
sleep 10; show "influxd down"
start_influxd
sleep 5; show "influxd back: backlog drained"
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
echo "---- retained alarm state on MQTT (edgeline/alarms/#):"
mosquitto_sub -p "$MQTT_PORT" -t 'edgeline/alarms/#' -v -W 2 2>/dev/null || true
