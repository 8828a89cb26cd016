#!/usr/bin/env bash
# The local write endpoint under a burst of concurrent writers (issue 16, item 5): the same
# POINTS points posted to /api/v2/write in batches of BATCH from 1 keep-alive connection, then
# from CONNS concurrent ones, by a client nobody here wrote: the official InfluxDB v2 JavaScript
# client (@influxdata/influxdb-client 1.35 through bench/http_burst.mjs: its write API, its 10 s
# timeout, its retries honouring Retry-After). Without node/npm it falls back to curl --parallel
# (no retries; a timeout is curl's exit 28 after 10 s). Prints points/s for both, their ratio
# (target >= 0.8), client timeouts (target 0), the points the agent committed (each run must be
# exactly POINTS: a timed-out request that was committed anyway and then retried shows up here
# as a duplicate), and the agent's peak threads and memory. A benchmark: asserts nothing.
#
#   bench/http_burst.sh [--build DIR] [--points N] [--conns C] [--batch B] [--repeat R] [--curl]
#     --build   build dir with agent/edgeline (default build-bench)
#     --repeat  runs of each mode, alternating; the median is printed (default 3)
#     --curl    use curl even when the JavaScript client is available
# The agent runs with a queue in a temp dir (removed on exit, KEEP=1 keeps it), HTTP on a free
# loopback port, MQTT and InfluxDB pointed at closed loopback ports: it only queues. Extra agent
# settings can be passed as EDGELINE_* environment variables. The JavaScript client is installed
# once with npm into ${HTTP_BURST_NPM:-~/.cache/edgeline-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build-bench
POINTS=20000
CONNS=40
BATCH=500
REPEAT=3
USE_CURL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --points) POINTS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --curl) USE_CURL=1; shift ;;
    *) sed -n '12,16p' "$0" >&2; exit 2 ;;
  esac
done
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
EDGELINE=$BUILD/agent/edgeline
[ -x "$EDGELINE" ] || { echo "missing $EDGELINE; build first:
  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD -j2 --target edgeline" >&2; exit 1; }
for tool in curl jq; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 1; }; done

# ---- the client
NPM_DIR=${HTTP_BURST_NPM:-$HOME/.cache/edgeline-bench}
CLIENT=curl
if [ "$USE_CURL" = 0 ] && command -v node >/dev/null; then
  if [ ! -d "$NPM_DIR/node_modules/@influxdata/influxdb-client" ] && command -v npm >/dev/null; then
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent @influxdata/influxdb-client@1.35.0 >&2 ||
      echo "  .. npm install of @influxdata/influxdb-client failed: falling back to curl" >&2
  fi
  [ -d "$NPM_DIR/node_modules/@influxdata/influxdb-client" ] && CLIENT=js
fi

WORK=$(mktemp -d /tmp/edgeline-http-burst-XXXXXX)
AGENT=""
SAMPLER=""
cleanup() {
  [ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true
  [ -z "$AGENT" ] || { kill -TERM "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; }
  [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
log() { echo "  .. $*" >&2; }

# ---- the agent: only queues
HTTP_PORT=$(pick_port 19600)
export EDGELINE_MQTT_URL=tcp://127.0.0.1:$(pick_port 19700) EDGELINE_MQTT_CLIENT_ID=http-burst \
  EDGELINE_QUEUE_PATH=$WORK/queue.db EDGELINE_QUEUE_MAX_BYTES=1TiB EDGELINE_QUEUE_MAX_AGE=0 \
  EDGELINE_HTTP_LISTEN=127.0.0.1:$HTTP_PORT EDGELINE_LOG_LEVEL=${EDGELINE_LOG_LEVEL:-warn} \
  EDGELINE_INFLUX_ENABLED=true EDGELINE_INFLUX_API=v1 EDGELINE_INFLUX_DB=x \
  EDGELINE_INFLUX_URL=http://127.0.0.1:$(pick_port 19800)
"$EDGELINE" run >"$WORK/agent.log" 2>&1 &
AGENT=$!
URL=http://127.0.0.1:$HTTP_PORT
for _ in $(seq 100); do curl -sf -o /dev/null "$URL/ping" && break; kill -0 "$AGENT" 2>/dev/null || break; sleep 0.1; done
curl -sf -o /dev/null "$URL/ping" || { echo "agent did not start:" >&2; cat "$WORK/agent.log" >&2; exit 1; }
# Peak threads of the agent, sampled every 20 ms.
(peak=0; while kill -0 "$AGENT" 2>/dev/null; do
   t=$(awk '/^Threads:/ {print $2}' "/proc/$AGENT/status" 2>/dev/null || echo 0)
   [ "${t:-0}" -gt "$peak" ] && { peak=$t; echo "$peak" >"$WORK/threads.peak"; }
   sleep 0.02
 done) &
SAMPLER=$!
metric() { curl -sf "$URL/metrics" | awk -v m="$1" '$1 == m {printf "%.0f\n", $2}'; }
committed() { metric edgeline_http_points_written_total; }

# ---- curl fallback: POINTS/BATCH bodies, one request each, at most C at once, no retries.
if [ "$CLIENT" = curl ]; then
  mkdir -p "$WORK/bodies"
  awk -v n="$POINTS" -v b="$BATCH" -v dir="$WORK/bodies" 'BEGIN {
    for (i = 0; i < n; ++i) {
      f = sprintf("%s/%05d.lp", dir, int(i / b))
      line = sprintf("burst,gen=g%d fuel=%.1f,rpm=%di,temp=%.2f,seq=%di 1700000000%09d", i % 10,
                     50 + (i % 37) * 0.5, 1500 + (i % 11), 70 + (i % 13) * 0.25, i, i)
      print line > f
    }
  }'
fi
run_curl() {  # connections -> JSON like http_burst.mjs
  local c=$1 run=$2 cfg=$WORK/curl.cfg t0 t1 codes
  : >"$cfg"
  for f in "$WORK"/bodies/*.lp; do
    [ ! -s "$cfg" ] || echo next >>"$cfg"  # options apply to the one URL before the next "next"
    printf 'url = "%s/api/v2/write?org=bench&bucket=burst%s&precision=ns"\ndata-binary = "@%s"\noutput = "/dev/null"\nmax-time = 10\nwrite-out = "%%{http_code} %%{exitcode}\\n"\n' \
      "$URL" "$run" "$f" >>"$cfg"
  done
  t0=$(date +%s%N)
  if [ "$c" = 1 ]; then
    codes=$(curl -s -K "$cfg" || true)
  else
    codes=$(curl -s --parallel --parallel-immediate --parallel-max "$c" -K "$cfg" || true)
  fi
  t1=$(date +%s%N)
  echo "$codes" | awk -v c="$c" -v n="$POINTS" -v b="$BATCH" -v ns=$((t1 - t0)) '
    { if ($2 == 28) to++; else if ($1 == 503) s503++; else if ($1 == 429) s429++; else if ($1 != 204) other++ }
    END { s = ns / 1e9; printf "{\"connections\":%d,\"points\":%d,\"batch\":%d,\"seconds\":%.3f,\"points_per_s\":%d,\"timeouts\":%d,\"http429\":%d,\"http503\":%d,\"other_failures\":%d}\n",
          c, n, b, s, n / s, to, s429, s503, other }'
}
run_one() {  # connections run-tag -> JSON line, plus "committed" from the agent's counter
  local c=$1 tag=$2 before after commits0 commits1 out
  before=$(committed)
  commits0=$(metric edgeline_ingest_commits_total)
  if [ "$CLIENT" = js ]; then
    out=$(INFLUX_CLIENT_DIR=$NPM_DIR/node_modules RUN_TAG=$tag node bench/http_burst.mjs "$URL" "$POINTS" "$c" "$BATCH" \
      2>>"$WORK/client.log")
  else
    out=$(run_curl "$c" "$tag")
  fi
  after=$(committed)
  commits1=$(metric edgeline_ingest_commits_total)
  echo "$out" | jq -c --argjson committed $((after - before)) --argjson commits $((commits1 - commits0)) \
    '. + {committed: $committed, queue_commits: $commits}'
}

log "client: $([ "$CLIENT" = js ] && echo "@influxdata/influxdb-client $(jq -r .version "$NPM_DIR/node_modules/@influxdata/influxdb-client/package.json") (node $(node --version))" || echo "curl --parallel (no retries)")"
log "agent: $EDGELINE on $URL"
: >"$WORK/runs.jsonl"
for r in $(seq "$REPEAT"); do
  for c in 1 "$CONNS"; do
    log "run $r: $POINTS points in batches of $BATCH over $c connection(s)"
    run_one "$c" "r$r-c$c" | tee -a "$WORK/runs.jsonl" >&2
  done
done
HWM=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$AGENT/status")
PEAK_THREADS=$(cat "$WORK/threads.peak" 2>/dev/null || echo "?")

summary() {  # connections -> medians of points/s, seconds and queue commits; totals; committed min/max
  jq -s -r --argjson c "$1" '
    def median: sort | .[length / 2 | floor];
    [.[] | select(.connections == $c)] as $runs
    | [($runs | map(.points_per_s) | median), ($runs | map(.timeouts) | add), ($runs | map(.http503) | add),
       ($runs | map(.http429) | add), ($runs | map(.committed) | min), ($runs | map(.committed) | max),
       ($runs | map(.seconds) | median), ($runs | map(.queue_commits) | median)] | @tsv' "$WORK/runs.jsonl"
}
read -r P1 T1 S1 Q1 CMIN1 CMAX1 SEC1 K1 < <(summary 1)
read -r PC TC SC QC CMINC CMAXC SECC KC < <(summary "$CONNS")
RATIO=$(echo "scale=3; $PC / $P1" | bc)
ROW='%-12s %10s %8s %9s %5s %5s %8s %22s\n'
printf "\n$ROW" "connections" "points/s" "seconds" "timeouts" "503" "429" "commits" "committed/run"
printf "$ROW" 1 "$P1" "$SEC1" "$T1" "$S1" "$Q1" "$K1" "$CMIN1..$CMAX1 of $POINTS"
printf "$ROW" "$CONNS" "$PC" "$SECC" "$TC" "$SC" "$QC" "$KC" "$CMINC..$CMAXC of $POINTS"
MET_RATIO=$(echo "$RATIO >= 0.8" | bc); MET_TO=$([ "$TC" = 0 ] && [ "$T1" = 0 ] && echo 1 || echo 0)
echo
echo "ratio ${CONNS}/1 connections: $RATIO (target >= 0.8: $([ "$MET_RATIO" = 1 ] && echo met || echo NOT met))"
echo "client timeouts: $((T1 + TC)) (target 0: $([ "$MET_TO" = 1 ] && echo met || echo NOT met))"
echo "agent: peak threads $PEAK_THREADS, peak RSS ${HWM} MiB; medians of $REPEAT runs (commits: queue transactions"
echo "per run, requests committed together); client $CLIENT"
