#!/usr/bin/env bash
# MQTT -> committed throughput, side by side with a baseline, in one invocation.
# The broker first holds N QoS 1 messages in a persistent session (the client is down); then
# the client connects and drains them. Baseline: mosquitto_sub (QoS 1, acks on receipt, writes
# to /dev/null). Agent: edgeline with ack-after-commit into its SQLite queue (InfluxDB sink
# off), timed until every message is committed. Prints msgs/s and the ratio agent/baseline for
# EDGELINE_QUEUE_SYNC=full and normal. Not a test: nothing is asserted.
# Usage: bench/ingest_bench.sh [N]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
EDGELINE=${EDGELINE:-build/agent/edgeline}
[ -x "$EDGELINE" ] || { echo "build first: cmake --build build -j2" >&2; exit 1; }
WORK=$(mktemp -d /tmp/edgeline-bench-XXXXXX)
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=18930; while ! port_free $PORT; do PORT=$((PORT + 1)); done
cat >"$WORK/m.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 100
CONF
mosquitto -c "$WORK/m.conf" >"$WORK/m.log" 2>&1 &
MOSQ=$!
AGENT=""
trap 'kill $AGENT $MOSQ 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
sleep 0.3
PAYLOAD='{"generatorID": "generator1", "lat": 40.68066, "lon": -73.47429, "temperature": 186, "power": 186, "load": 2, "fuel": 277}'
for _ in $(seq "$N"); do echo "$PAYLOAD"; done >"$WORK/payloads"
preload() { mosquitto_pub -p $PORT -q 1 -t emergency_generator/generator1 -l <"$WORK/payloads"; }
now() { date +%s.%N; }

# Baseline
mosquitto_sub -p $PORT -q 1 -c -i bench-base -t 'emergency_generator/+' -C 1 -W 1 >/dev/null 2>&1 || true
preload
t0=$(now)
mosquitto_sub -p $PORT -q 1 -c -i bench-base -t 'emergency_generator/+' -C "$N" >/dev/null
t1=$(now)
base=$(echo "$N / ($t1 - $t0)" | bc -l)
printf "%-40s %10.0f msgs/s\n" "baseline mosquitto_sub (QoS 1)" "$base"

# Second baseline: the Paho client edgeline uses, with a no-op callback.
PAHO_DRAIN=${PAHO_DRAIN:-build/bench/paho_drain}
if [ -x "$PAHO_DRAIN" ]; then
  "$PAHO_DRAIN" tcp://127.0.0.1:$PORT bench-paho 'emergency_generator/+' 0 >/dev/null  # creates the session
  preload
  paho=$("$PAHO_DRAIN" tcp://127.0.0.1:$PORT bench-paho 'emergency_generator/+' "$N")
  printf "%-40s %10.0f msgs/s   ratio %.3f\n" "baseline Paho C++ no-op callback (QoS 1)" "$paho" "$(echo "$paho / $base" | bc -l)"
fi

for sync in full normal; do
  export EDGELINE_MQTT_URL=tcp://127.0.0.1:$PORT EDGELINE_MQTT_CLIENT_ID=bench-$sync \
    EDGELINE_QUEUE_PATH=$WORK/q-$sync.db EDGELINE_INFLUX_ENABLED=false EDGELINE_QUEUE_SYNC=$sync \
    EDGELINE_LOG_LEVEL=warn
  # Create the persistent session, stop, preload while down, then time the drain.
  "$EDGELINE" run >"$WORK/agent-$sync.log" 2>&1 & pid=$!; AGENT=$pid
  until mosquitto_sub -p $PORT -t "edgeline/bench-$sync/status" -C 1 -W 5 2>/dev/null | grep -q online; do sleep 0.1; done
  kill -TERM $pid; wait $pid || true
  preload
  t0=$(now)
  "$EDGELINE" run >>"$WORK/agent-$sync.log" 2>&1 & pid=$!; AGENT=$pid
  while :; do
    pts=$("$EDGELINE" status --json 2>/dev/null | sed -n 's/^    "points": \([0-9]*\).*/\1/p' | head -1 || true)
    [ "${pts:-0}" -ge "$N" ] && break
    sleep 0.05
  done
  t1=$(now)
  kill -TERM $pid; wait $pid || true
  rate=$(echo "$N / ($t1 - $t0)" | bc -l)
  printf "%-40s %10.0f msgs/s   ratio %.3f\n" "edgeline sync=$sync (ack-after-commit)" "$rate" "$(echo "$rate / $base" | bc -l)"
done
