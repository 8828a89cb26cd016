#!/usr/bin/env bash
# edgeline benchmark harness: each figure measured side by side with its baseline in
# the same invocation, printed as a table and written as JSON. Benchmarks, not tests: nothing is
# asserted; "met?" only compares with the targets. mosquitto and influxd run on free
# loopback ports with their data in a temp dir, removed on exit (KEEP=1 keeps it).
#
#   bench/run.sh [--quick] [--only P1,P2,...] [--out FILE] [--build DIR]
#     --quick   small sizes, a smoke run (< 2 min)
#     --only    run only these figures (P1 P1b P2 P3 P4 P4c P5 P6 P7 P8; P3 includes P4 and P6)
#     --out     JSON results (default bench/results/<date>[-quick].json)
#     --build   build dir with agent/edgeline and bench/* (default build-bench, Release)
# Sizes can be overridden: P1_N P1B_N P1B_FULL_N P2_N P3_SECONDS BACKLOG_N P4C_N P4C_WAIT
# P5_SECONDS P7_N P8_POINTS P8_REPEAT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
ONLY=""
OUT=""
BUILD=$ROOT/build-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --only) ONLY=",$2,"; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) sed -n '8,14p' "$0" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  : "${P1_N:=20000}" "${P1B_N:=20000}" "${P1B_FULL_N:=3000}" "${P2_N:=100000}" "${P3_SECONDS:=5}"
  : "${BACKLOG_N:=1000000}" "${P5_SECONDS:=5}" "${P7_N:=100000}"
  : "${P4C_N:=10000}" "${P4C_WAIT:=30}" "${P8_POINTS:=5000}" "${P8_REPEAT:=1}"
else
  : "${P1_N:=200000}" "${P1B_N:=200000}" "${P1B_FULL_N:=20000}" "${P2_N:=1000000}" "${P3_SECONDS:=20}"
  : "${BACKLOG_N:=10000000}" "${P5_SECONDS:=20}" "${P7_N:=10000000}"
  : "${P4C_N:=60000}" "${P4C_WAIT:=30}" "${P8_POINTS:=20000}" "${P8_REPEAT:=3}"
fi
SUFFIX=""; [ "$QUICK" = 1 ] && SUFFIX=-quick
[ -n "$OUT" ] || OUT=bench/results/$(date +%F)$SUFFIX.json
EDGELINE=$BUILD/agent/edgeline
QB=$BUILD/bench/queue_bench
for b in "$EDGELINE" "$QB" "$BUILD/bench/latency_probe" "$BUILD/bench/downsample_bench"; do
  [ -x "$b" ] || { echo "missing $b; build first:
  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD -j2 --target edgeline queue_bench latency_probe downsample_bench paho_drain" >&2; exit 1; }
done
want() { [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]; }

WORK=$(mktemp -d /tmp/edgeline-bench-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
calc() { echo "$@" | bc -l; }
hwm_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
log() { echo "  .. $*" >&2; }

# ---- servers
MQTT_PORT=$(pick_port 19830)
cat >"$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 100
CONF
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
MQTT_URL=tcp://127.0.0.1:$MQTT_PORT

INFLUX_PORT=""
start_influxd() {
  mkdir -p "$WORK"/influxd/{meta,data,wal}
  INFLUX_PORT=$(pick_port 19086)
  local rpc; rpc=$(pick_port $((INFLUX_PORT + 1)))
  cat >"$WORK/influxd.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$WORK/influxd/meta"
[data]
  dir = "$WORK/influxd/data"
  wal-dir = "$WORK/influxd/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
CONF
  influxd -config "$WORK/influxd.conf" >>"$WORK/influxd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$INFLUX_PORT/ping" && return 0; sleep 0.2; done
  echo "influxd did not start, see $WORK/influxd.log" >&2; exit 1
}
influx_q() { curl -sf -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=$1" >/dev/null; }
influx_count() {  # db -> count(fuel) of genData
  curl -s -G "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "db=$1" \
    --data-urlencode "q=SELECT count(fuel) FROM genData" | jq -r '.results[0].series[0].values[0][1] // 0'
}
if want P2 || want P3 || want P5 || want P6 || want P4; then start_influxd; fi

# ---- agent
AGENT=""
agent_env() {  # client-id queue-path influx-db|off sync
  export EDGELINE_MQTT_URL=$MQTT_URL EDGELINE_MQTT_CLIENT_ID=$1 EDGELINE_QUEUE_PATH=$2 \
    EDGELINE_QUEUE_SYNC=${4:-normal} EDGELINE_QUEUE_MAX_BYTES=1TiB EDGELINE_QUEUE_MAX_AGE=0 \
    EDGELINE_LOG_LEVEL=info EDGELINE_HTTP_LISTEN=off EDGELINE_INFLUX_API=v1 EDGELINE_RETRY_MAX=2s
  if [ "$3" = off ]; then
    export EDGELINE_INFLUX_ENABLED=false
  elif [ "$3" = offline ]; then  # a sink whose server is down: the backlog is held
    export EDGELINE_INFLUX_ENABLED=true EDGELINE_INFLUX_URL=http://127.0.0.1:$(pick_port 19500) EDGELINE_INFLUX_DB=x
  else
    export EDGELINE_INFLUX_ENABLED=true EDGELINE_INFLUX_URL=http://127.0.0.1:$INFLUX_PORT EDGELINE_INFLUX_DB=$3
  fi
}
start_agent() {  # log file
  "$EDGELINE" run >>"$1" 2>&1 &
  AGENT=$!
  PIDS+=($AGENT)
}
stop_agent() { [ -z "$AGENT" ] || { kill -TERM "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; AGENT=""; }; }
wait_online() {  # client-id
  for _ in $(seq 100); do
    mosquitto_sub -p "$MQTT_PORT" -t "edgeline/$1/status" -C 1 -W 1 2>/dev/null | grep -q online && return 0
  done
  echo "agent $1 did not come online" >&2; return 1
}
status_json() { "$EDGELINE" status --json 2>/dev/null || true; }
sink_field() { status_json | jq -r "[.sinks[] | select(.stream == \"raw\")][0].$1 // 0"; }

# ---- results
ROWS=()   # id|what|edgeline|baseline|ratio|unit|target|met
add_row() { ROWS+=("$1|$2|$3|$4|$5|$6|$7|$8"); }
fmt() { [ -z "$1" ] || [ "$1" = - ] && echo - || printf "%.${2:-0}f" "$1"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ] && printf "%.3f" "$(calc "$1 / $2")" || echo -; }
met() { [ "$(calc "$1")" = 1 ] && echo yes || echo no; }
declare -A EXTRA  # extra figures for JSON

# ---- P1: MQTT QoS1 -> committed, held persistent session drained
p1() {
  local n=$P1_N topic=emergency_generator/generator1
  log "P1: $n QoS 1 messages held in a persistent session"
  # The simulator's payload for every message (one generator), as in bench/ingest_bench.sh.
  local payload='{"generatorID": "generator1", "lat": 40.68066, "lon": -73.47429, "temperature": 186, "power": 186, "load": 2, "fuel": 277}'
  # mosquitto 2.0 disconnects a publisher that sends much more than ~30k messages in one burst
  # ("out of memory"), so the stream is published in chunks of at most 20k.
  local chunk=$((n < 20000 ? n : 20000))
  n=$((n / chunk * chunk))
  awk -v n="$chunk" -v p="$payload" 'BEGIN { for (i = 0; i < n; i++) print p }' >"$WORK/payloads"
  preload() {
    for _ in $(seq $((n / chunk))); do mosquitto_pub -p "$MQTT_PORT" -q 1 -t $topic -l <"$WORK/payloads"; done
  }
  mosquitto_sub -p "$MQTT_PORT" -q 1 -c -i bench-base -t 'emergency_generator/+' -C 1 -W 1 >/dev/null 2>&1 || true
  preload
  local t0 t1 base rate
  t0=$(now_ns)
  mosquitto_sub -p "$MQTT_PORT" -q 1 -c -i bench-base -t 'emergency_generator/+' -C "$n" >/dev/null
  t1=$(now_ns)
  base=$(calc "$n * 1000000000 / ($t1 - $t0)")
  for sync in normal full; do
    local id=bench-p1-$sync q=$WORK/p1-$sync.db
    agent_env "$id" "$q" off "$sync"
    start_agent "$WORK/agent-p1.log"; wait_online "$id"; stop_agent
    preload
    t0=$(now_ns)
    start_agent "$WORK/agent-p1.log"
    while :; do
      pts=$(status_json | jq -r '.queue.points // 0')
      [ "${pts:-0}" -ge "$n" ] && break
      sleep 0.05
    done
    t1=$(now_ns)
    stop_agent
    rate=$(calc "$n * 1000000000 / ($t1 - $t0)")
    # Issue 16's target for sync=normal; issue 7's (>= 0.9x) stays for sync=full.
    if [ "$sync" = normal ]; then
      add_row "P1" "MQTT QoS1 -> committed, sync=$sync (msg/s)" "$rate" "$base" "$(ratio "$rate" "$base")" \
        "msg/s" ">= 0.2x" "$(met "$rate >= 0.2 * $base")"
    else
      add_row "P1" "MQTT QoS1 -> committed, sync=$sync (msg/s)" "$rate" "$base" "$(ratio "$rate" "$base")" \
        "msg/s" ">= 0.9x" "$(met "$rate >= 0.9 * $base")"
    fi
  done
  EXTRA[p1_n]=$n
}

# ---- P1b: mapping + commit, no network, 1 thread
p1b() {
  for sync in normal full; do
    local n=$P1B_N; [ "$sync" = full ] && n=$P1B_FULL_N
    log "P1b: $n messages, sync=$sync"
    local j; j=$("$QB" p1b "$n" "$sync" "$WORK")
    local e r g m
    e=$(jq -r .edgeline_msgs_s <<<"$j"); r=$(jq -r .raw_sqlite_msgs_s <<<"$j")
    g=$(jq -r .grouped_append_msgs_s <<<"$j"); m=$(jq -r .map_only_msgs_s <<<"$j")
    # Issue 16's target for sync=normal; issue 7's stays for sync=full.
    if [ "$sync" = normal ]; then
      add_row "P1b" "map+commit 1 thread, sync=$sync (msg/s)" "$e" "$r" "$(ratio "$e" "$r")" "msg/s" \
        ">= 80k" "$(met "$e >= 80000")"
    else
      add_row "P1b" "map+commit 1 thread, sync=$sync (msg/s)" "$e" "$r" "$(ratio "$e" "$r")" "msg/s" \
        ">= 300k and >= 0.5x" "$(met "$e >= 300000 && $e >= 0.5 * $r")"
    fi
    add_row "P1b*" "  info: Mapper+Append 1000 msg/txn, sync=$sync" "$g" "$r" "$(ratio "$g" "$r")" "msg/s" "-" "-"
    EXTRA[p1b_${sync}_map_only_msgs_s]=$m
    if [ "$sync" = normal ]; then P1B_RATE=$e; fi
  done
}

# ---- P2: drain a backlog to influxd vs curl posting the same lines
p2() {
  local n=$P2_N
  log "P2: backlog of $n points (1 line per batch, as MQTT ingest stores them)"
  "$QB" fill "$WORK/p2.db" "$n" 1 "$WORK/p2.lp" >/dev/null
  influx_q "CREATE DATABASE bench_curl"; influx_q "CREATE DATABASE bench_agent"
  mkdir -p "$WORK/p2-files"
  split -l 5000 -d -a 5 "$WORK/p2.lp" "$WORK/p2-files/f"
  gzip -1 "$WORK"/p2-files/f*
  local cfg=$WORK/p2-curl.cfg first=1
  : >"$cfg"
  for f in "$WORK"/p2-files/f*.gz; do
    [ $first = 1 ] || echo "next" >>"$cfg"; first=0
    printf 'url = "http://127.0.0.1:%s/write?db=bench_curl"\ndata-binary = "@%s"\nheader = "Content-Encoding: gzip"\nsilent\nfail\noutput = /dev/null\n' \
      "$INFLUX_PORT" "$f" >>"$cfg"
  done
  local t0 t1 base rate
  t0=$(now_ns); curl -K "$cfg"; t1=$(now_ns)
  base=$(calc "$n * 1000000000 / ($t1 - $t0)")
  log "P2: curl $(influx_count bench_curl) points in influxd"
  agent_env bench-p2 "$WORK/p2.db" bench_agent normal
  t0=$(now_ns)
  start_agent "$WORK/agent-p2.log"
  while :; do
    sent=$(sink_field sent_points)
    [ "${sent:-0}" -ge "$n" ] && break
    sleep 0.1
  done
  t1=$(now_ns)
  EXTRA[p2_agent_peak_rss_mb]=$(hwm_mb "$AGENT")
  stop_agent
  rate=$(calc "$n * 1000000000 / ($t1 - $t0)")
  log "P2: agent $(influx_count bench_agent) points in influxd"
  add_row "P2" "drain $n-point backlog to influxd (points/s)" "$rate" "$base" "$(ratio "$rate" "$base")" \
    "points/s" ">= 0.8x" "$(met "$rate >= 0.8 * $base")"
}

# ---- P3 (+P4, P6): RSS ingesting at max rate; RSS with a backlog; disk ratio; restart time
p3() {
  log "P3: agent RSS while ingesting at --rate max for ${P3_SECONDS}s"
  agent_env bench-p3 "$WORK/p3.db" off normal
  start_agent "$WORK/agent-p3.log"; wait_online bench-p3
  "$EDGELINE" simulate --url "$MQTT_URL" --generators 10 --rate max --qos 1 --duration "${P3_SECONDS}s" \
    >"$WORK/sim-p3.log" 2>&1 || true
  local hwm msgs
  hwm=$(hwm_mb "$AGENT")
  msgs=$(status_json | jq -r '.queue.points // 0')
  stop_agent
  EXTRA[p3_ingest_msgs_s]=$(calc "$msgs / $P3_SECONDS")
  add_row "P3" "peak RSS ingesting at max rate ($(printf %.0f "${EXTRA[p3_ingest_msgs_s]}") msg/s)" \
    "$hwm" - - MB "<= 16 MB" "$(met "$hwm <= 16")"

  local n=$BACKLOG_N
  log "P3: RSS with $n points queued vs empty (sink offline so the backlog is held)"
  local t0 t1
  t0=$(now_ns)
  "$QB" fill "$WORK/p3-empty.db" 0 1 >/dev/null
  local fill; fill=$("$QB" fill "$WORK/backlog.db" "$n" 1)
  t1=$(now_ns)
  log "P3: filled in $(calc "($t1 - $t0) / 1000000000" | xargs printf %.0f) s: $fill"
  # P4: compare bytes on disk after a checkpoint with the raw line protocol they hold.
  p4_measure() {  # db label
    sqlite3 "$1" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
    local disk raw; disk=$(( $(stat -c %s "$1") + $(stat -c %s "$1-wal" 2>/dev/null || echo 0) ))
    raw=$(sqlite3 "$1" "SELECT SUM(raw_bytes) FROM batch")  # the lines, each with its newline
    add_row "P4" "disk bytes / raw LP bytes, $2" "$(calc "$disk / $raw")" - - ratio "<= 0.2" \
      "$(met "$disk / $raw <= 0.2")"
    EXTRA[p4_${3}_disk_bytes]=$disk; EXTRA[p4_${3}_raw_bytes]=$raw
  }
  # Before any agent runs on it: a drain would leave free pages behind.
  p4_measure "$WORK/backlog.db" "$n pts, 1 line/batch" ingest
  local rss_empty rss_full
  agent_env bench-p3e "$WORK/p3-empty.db" offline normal
  start_agent "$WORK/agent-p3e.log"; wait_online bench-p3e; sleep 3
  rss_empty=$(hwm_mb "$AGENT"); stop_agent
  agent_env bench-p3f "$WORK/backlog.db" offline normal
  start_agent "$WORK/agent-p3f.log"; wait_online bench-p3f; sleep 3
  rss_full=$(hwm_mb "$AGENT")
  add_row "P3" "peak RSS, $n points queued vs empty (MB)" "$rss_full" "$rss_empty" \
    "$(printf %.1f "$(calc "$rss_full - $rss_empty")") MB diff" MB "diff <= 2 MB" "$(met "$rss_full - $rss_empty <= 2")"

  if want P6 || want P3; then
    log "P6: SIGKILL with $n points queued, restart, time to the first successful write"
    kill -9 "$AGENT"; wait "$AGENT" 2>/dev/null || true; AGENT=""
    influx_q "CREATE DATABASE bench_p6"
    agent_env bench-p3f "$WORK/backlog.db" bench_p6 normal
    sync; sleep 1
    t0=$(now_ns)
    start_agent "$WORK/agent-p6.log"
    # Watched from outside: the first point visible in influxd (edgeline status would scan the
    # 10M-point file on every poll and compete with the agent for the disk).
    local ok=0
    for _ in $(seq 3000); do
      if [ "$(influx_count bench_p6)" != 0 ]; then ok=$(now_ns); break; fi
      sleep 0.01
    done
    stop_agent
    local ms; ms=$(calc "($ok - $t0) / 1000000")
    add_row "P6" "restart after SIGKILL, $n queued -> first write (ms)" "$ms" - - ms "<= 1000 ms" "$(met "$ms <= 1000")"
  fi

  rm -f "$WORK"/backlog.db*
  "$QB" fill "$WORK/p4-1000.db" "$n" 1000 >/dev/null
  p4_measure "$WORK/p4-1000.db" "$n pts, 1000 lines/batch" batch1000
  rm -f "$WORK"/p4-1000.db*
}

# ---- P4c: disk / LP bytes for MQTT ingest, through the agent, after compaction
p4c() {
  local n=$P4C_N id=bench-p4c q=$WORK/p4c.db
  log "P4c: $n simulator messages over MQTT (QoS 1) into the agent, InfluxDB unreachable"
  agent_env "$id" "$q" offline normal
  start_agent "$WORK/agent-p4c.log"; wait_online "$id"
  local t0 t1; t0=$(now_ns)
  # The simulator's payloads (10 generators, seed 1), as fast as the broker acknowledges.
  "$EDGELINE" simulate --url "$MQTT_URL" --generators 10 --rate max --qos 1 --count "$n" --seed 1 \
    >"$WORK/sim-p4c.log" 2>&1 || true
  local pts=0
  for _ in $(seq 3000); do  # at most ~10 min
    pts=$(status_json | jq -r '.queue.points // 0')
    [ "${pts:-0}" -ge "$n" ] && break
    sleep 0.2
  done
  t1=$(now_ns)
  [ "${pts:-0}" -ge "$n" ] || log "P4c: only $pts of $n points committed"
  EXTRA[p4c_ingest_s]=$(calc "($t1 - $t0) / 1000000000")
  P4C_RATIO=""
  p4c_measure() {  # tag -> P4C_RATIO: queue file + WAL on disk / raw line-protocol bytes held
    local j disk raw; j=$(status_json)
    disk=$(( $(stat -c %s "$q") + $(stat -c %s "$q-wal" 2>/dev/null || echo 0) ))
    raw=$(jq -r '.queue.raw_bytes // 0' <<<"$j")
    EXTRA[p4c_${1}_disk_bytes]=$disk; EXTRA[p4c_${1}_raw_bytes]=$raw
    EXTRA[p4c_${1}_status_file_bytes]=$(jq -r '.queue.file_bytes // 0' <<<"$j")
    EXTRA[p4c_${1}_counted_bytes]=$(jq -r '.queue.counted_bytes // 0' <<<"$j")
    EXTRA[p4c_${1}_batches]=$(jq -r '.queue.batches // 0' <<<"$j")
    EXTRA[p4c_${1}_points]=$(jq -r '.queue.points // 0' <<<"$j")
    P4C_RATIO=$(calc "$disk / $raw")
  }
  local r0 r1
  p4c_measure 0s; r0=$P4C_RATIO
  log "P4c: ${pts} points committed; at 0 s: disk/LP $(printf %.3f "$r0"), ${EXTRA[p4c_0s_batches]} batches"
  sleep "$P4C_WAIT"
  p4c_measure "${P4C_WAIT}s"; r1=$P4C_RATIO
  log "P4c: after ${P4C_WAIT} s: disk/LP $(printf %.3f "$r1"), ${EXTRA[p4c_${P4C_WAIT}s_batches]} batches"
  stop_agent
  add_row "P4c" "disk / LP bytes, MQTT ingest via agent, $n msgs, ${P4C_WAIT} s after" "$r1" - - ratio \
    "<= 0.12 (check 0.15)" "$(met "$r1 <= 0.12")"
  add_row "P4c*" "  info: same, right after ingest (0 s)" "$r0" - - ratio "-" "-"
  # Where the bytes are (after the agent stopped): pages of the batch table and of the QoS 1
  # receipts (mqtt_receipt), each with its indexes, over the same line-protocol bytes.
  local raw=${EXTRA[p4c_${P4C_WAIT}s_raw_bytes]} tb
  for tb in batch mqtt_receipt; do
    EXTRA[p4c_${tb}_bytes]=$(sqlite3 "$q" "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = '$tb'
      OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '$tb')" 2>/dev/null || echo 0)
    add_row "P4c*" "  info: of which table $tb (+ indexes)" "$(calc "${EXTRA[p4c_${tb}_bytes]} / $raw")" - - ratio "-" "-"
  done
  EXTRA[p4c_n]=$n
  EXTRA[p4c_compact_points]=${EDGELINE_QUEUE_COMPACT_POINTS:-1000}
}

# ---- P5: publish -> visible in influxd at 1k msg/s
p5() {
  log "P5: 1000 msg/s for ${P5_SECONDS}s, publish -> visible in influxd"
  influx_q "CREATE DATABASE bench_p5"
  agent_env bench-p5 "$WORK/p5.db" bench_p5 normal
  start_agent "$WORK/agent-p5.log"; wait_online bench-p5
  local j; j=$("$BUILD/bench/latency_probe" "$MQTT_URL" "http://127.0.0.1:$INFLUX_PORT" bench_p5 1000 "$P5_SECONDS" 10)
  stop_agent
  local p50 p99; p50=$(jq -r .p50_ms <<<"$j"); p99=$(jq -r .p99_ms <<<"$j")
  EXTRA[p5_raw]=$j
  add_row "P5" "publish -> visible, 1k msg/s: p99 (p50 $(printf %.0f "$p50")) ms" "$p99" - - ms "p99 <= 250 ms" \
    "$(met "$p99 <= 250 && $p99 >= 0")"
  # Same at sync=full, the default.
  influx_q "CREATE DATABASE bench_p5f"  # fresh: the probe's seqs start at 0 again
  agent_env bench-p5f "$WORK/p5f.db" bench_p5f full
  start_agent "$WORK/agent-p5.log"; wait_online bench-p5f
  j=$("$BUILD/bench/latency_probe" "$MQTT_URL" "http://127.0.0.1:$INFLUX_PORT" bench_p5f 1000 "$P5_SECONDS" 10)
  stop_agent
  p50=$(jq -r .p50_ms <<<"$j"); p99=$(jq -r .p99_ms <<<"$j")
  EXTRA[p5_full_raw]=$j
  add_row "P5" "  same, sync=full: p99 (p50 $(printf %.0f "$p50")) ms" "$p99" - - ms "p99 <= 250 ms" \
    "$(met "$p99 <= 250 && $p99 >= 0")"
}

# ---- P7: downsampler replay
p7() {
  log "P7: downsampler replay of $P7_N points"
  # Line-buffered and its exit status only logged: downsample_bench prints its figures, then
  # frees the queue before the DownsampleTask that watches it, and can crash on the way out
  # (SIGSEGV in ~QueueConsumer); the figures are measured by then.
  local out rc=0
  out=$(stdbuf -oL "$BUILD/bench/downsample_bench" "$P7_N" 100 "$WORK" 2>>"$WORK/downsample.log") || rc=$?
  [ "$rc" = 0 ] || { log "P7: downsample_bench exited with status $rc after printing"; EXTRA[p7_exit_status]=$rc; }
  local base rate
  base=$(sed -n 's/.*baseline read+parse+ack : *\([0-9.]*\) points.*/\1/p' <<<"$out")
  rate=$(sed -n 's/.*edgeline downsampler *: *\([0-9.]*\) points.*/\1/p' <<<"$out")
  add_row "P7" "downsampler replay $P7_N pts vs read+parse+ack" "$rate" "$base" "$(ratio "$rate" "$base")" \
    "points/s" "-" "-"
  if [ -n "${P1B_RATE:-}" ]; then
    add_row "P7" "downsampler replay vs P1b rate (sync=normal)" "$rate" "$P1B_RATE" "$(ratio "$rate" "$P1B_RATE")" \
      "points/s" ">= 0.5x" "$(met "$rate >= 0.5 * $P1B_RATE")"
  fi
}

# ---- P8: the local HTTP write endpoint, 40 concurrent clients vs 1 (bench/http_burst.sh)
p8() {
  log "P8: write endpoint, $P8_POINTS points, 1 vs 40 connections, $P8_REPEAT runs each (bench/http_burst.sh)"
  local out; out=$(bench/http_burst.sh --build "$BUILD" --points "$P8_POINTS" --conns 40 --repeat "$P8_REPEAT" \
    2>"$WORK/http_burst.err") || { log "P8: http_burst.sh failed:"; cat "$WORK/http_burst.err" >&2; return 0; }
  echo "$out" >"$WORK/http_burst.out"
  local p1 t1 pc tc s503
  read -r p1 t1 < <(awk '$1 == "1" && $3 ~ /^[0-9.]+$/ {print $2, $4}' <<<"$out")
  read -r pc tc s503 < <(awk '$1 == "40" && $3 ~ /^[0-9.]+$/ {print $2, $4, $5}' <<<"$out")
  local timeouts=$((t1 + tc))
  add_row "P8" "write endpoint 40 conns vs 1 (points/s), $timeouts timeouts" "$pc" "$p1" "$(ratio "$pc" "$p1")" \
    "points/s" ">= 0.8x, 0 timeouts" "$(met "$pc >= 0.8 * $p1 && $timeouts == 0")"
  EXTRA[p8_timeouts]=$timeouts; EXTRA[p8_http503_40]=$s503; EXTRA[p8_points]=$P8_POINTS
  EXTRA[p8_client]=$(sed -n 's/.*client \(js\|curl\)$/\1/p' <<<"$out")
  EXTRA[p8_agent]=$(grep '^agent:' <<<"$out" || true)
}

START=$(date +%s)
# The source the binaries were built from: BENCH_COMMIT when given (a build of another tree),
# else this tree's HEAD (which says nothing of uncommitted edits in it).
EXTRA[commit]=${BENCH_COMMIT:-$(git -C "$ROOT" log --oneline -1 2>/dev/null | cut -c1-72 || true)}
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "edgeline bench $(date -u +%FT%TZ)  $(nproc) cores, $CPU, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "mode: $([ "$QUICK" = 1 ] && echo quick || echo full); binary: $EDGELINE ($("$EDGELINE" version 2>/dev/null | head -1)); source: ${EXTRA[commit]}"
want P1 && p1
{ want P1b || want P7; } && p1b
want P2 && p2
{ want P3 || want P4 || want P6; } && p3
want P4c && p4c
want P5 && p5
want P7 && p7
want P8 && p8
ELAPSED=$(( $(date +%s) - START ))

printf '\n%-5s %-58s %12s %12s %16s %-20s %s\n' Id What edgeline baseline ratio target met?
for r in "${ROWS[@]}"; do
  IFS='|' read -r id what e b ra unit target m <<<"$r"
  dec=0; [ "$unit" = MB ] || [ "$unit" = ratio ] && dec=2
  [ "$unit" = ms ] && dec=1
  printf '%-5s %-58s %12s %12s %16s %-20s %s\n' "$id" "$what" "$(fmt "$e" $dec)" "$(fmt "$b" $dec)" "$ra" "$target" "$m"
done
echo "elapsed ${ELAPSED}s"

mkdir -p "$(dirname "$OUT")"
{
  for r in "${ROWS[@]}"; do
    IFS='|' read -r id what e b ra unit target m <<<"$r"
    jq -n --arg id "$id" --arg what "$what" --arg e "$e" --arg b "$b" --arg ra "$ra" --arg unit "$unit" \
      --arg target "$target" --arg m "$m" \
      '{id: $id, what: $what, edgeline: ($e | tonumber? // null), baseline: ($b | tonumber? // null),
        ratio: ($ra | tonumber? // $ra), unit: $unit, target: $target, met: $m}'
  done
} | jq -s --arg date "$(date -u +%FT%TZ)" --arg cpu "$CPU" --argjson nproc "$(nproc)" \
  --arg mode "$([ "$QUICK" = 1 ] && echo quick || echo full)" --argjson elapsed "$ELAPSED" \
  --argjson extra "$(for k in "${!EXTRA[@]}"; do jq -n --arg k "$k" --arg v "${EXTRA[$k]}" '{($k): ($v | fromjson? // $v)}'; done | jq -s 'add // {}')" \
  '{date: $date, machine: {nproc: $nproc, cpu: $cpu}, mode: $mode, elapsed_s: $elapsed, rows: ., extra: $extra}' >"$OUT"
echo "results: $OUT"
