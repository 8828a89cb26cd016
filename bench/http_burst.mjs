// http_burst.mjs: posts N points to an InfluxDB v2 write endpoint with the official JavaScript
// client (@influxdata/influxdb-client, its write API with its own batching, timeout and retries),
// over at most C keep-alive connections, and prints one JSON line of figures. A driver for
// bench/http_burst.sh; it asserts nothing.
//
//   node bench/http_burst.mjs URL POINTS CONNECTIONS [BATCH]
//
// The client sends each batch as soon as it is full, so POINTS/BATCH requests are in flight at
// once; CONNECTIONS caps the sockets of the client's http.Agent (1 = one connection, the requests
// wait their turn in the client). Client settings other than batchSize are the client's
// defaults (10 s timeout, 5 retries honouring Retry-After, gzip above 1000 bytes).
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(process.env.INFLUX_CLIENT_DIR ? `${process.env.INFLUX_CLIENT_DIR}/` : import.meta.url);
const { InfluxDB } = require('@influxdata/influxdb-client');

const [url, pointsArg, connsArg, batchArg] = process.argv.slice(2);
if (!url || !pointsArg || !connsArg) {
  console.error('usage: node http_burst.mjs URL POINTS CONNECTIONS [BATCH]');
  process.exit(2);
}
const points = Number(pointsArg);
const conns = Number(connsArg);
const batch = Number(batchArg || 500);
const tag = process.env.RUN_TAG || `run${Date.now()}`;

const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
let sockets = 0;
let maxOpen = 0;
let open = 0;
const createConnection = agent.createConnection.bind(agent);
agent.createConnection = (...args) => {
  const s = createConnection(...args);
  ++sockets;
  maxOpen = Math.max(maxOpen, ++open);
  s.once('close', () => --open);
  return s;
};

const failures = { timeouts: 0, http429: 0, http503: 0, other: 0, lost: 0, otherMessages: new Set() };
// The write API sends a full batch without waiting for it, and close() waits only for the last
// one: the run ends when every line is either acknowledged or given up (the client's last try).
let settled = 0;
let finish;
const allSettled = new Promise((resolve) => (finish = resolve));
const settle = (n) => {
  settled += n;
  if (settled >= points) finish();
};
const client = new InfluxDB({ url, token: 'bench', transportOptions: { agent } });
const writeApi = client.getWriteApi('bench', 'burst', 'ns', {
  batchSize: batch,
  writeSuccess(lines) {
    settle(lines.length);
  },
  // Counts each failed attempt, then lets the client retry as it would (return nothing).
  writeFailed(error, lines, attempt) {
    // The client's own rule: no retry after the last attempt, nor for a 4xx other than 429.
    const status = error && error.statusCode;
    if (attempt > this.writeOptions.maxRetries || (status && status < 429) || /Max retry time/.test(error.message)) {
      failures.lost += lines.length;
      settle(lines.length);
    }
    if (error && (error.name === 'RequestTimedOutError' || /timed? ?out/i.test(String(error.message)))) {
      ++failures.timeouts;
    } else if (error && error.statusCode === 429) {
      ++failures.http429;
    } else if (error && error.statusCode === 503) {
      ++failures.http503;
    } else {
      ++failures.other;
      failures.otherMessages.add(String(error && error.message).slice(0, 120));
    }
  },
});

// About 100 bytes a point, like the simulator's; distinct series and timestamps so that every
// point is its own.
const base = 1_700_000_000_000_000_000n;
const lines = [];
for (let i = 0; i < points; ++i) {
  lines.push(
    `burst,run=${tag},gen=g${i % 10} fuel=${(50 + (i % 37) * 0.5).toFixed(1)},rpm=${1500 + (i % 11)}i,` +
      `temp=${(70 + (i % 13) * 0.25).toFixed(2)},seq=${i}i ${base + BigInt(i) * 1000n}`,
  );
}

const t0 = process.hrtime.bigint();
writeApi.writeRecords(lines);
let closeError = null;
try {
  await writeApi.flush();
} catch (e) {
  closeError = String(e && e.message);
}
await allSettled;
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
await writeApi.close().catch(() => {});
agent.destroy();
console.log(
  JSON.stringify({
    connections: conns,
    points,
    batch,
    seconds: Number(seconds.toFixed(3)),
    points_per_s: Math.round(points / seconds),
    sockets_opened: sockets,
    max_open_sockets: maxOpen,
    timeouts: failures.timeouts,
    http429: failures.http429,
    http503: failures.http503,
    other_failures: failures.other,
    lost_points: failures.lost,
    other_messages: [...failures.otherMessages],
    close_error: closeError,
  }),
);
