// Load process of bench/postgres-changes.ts: holds the subscribers (raw Phoenix v2
// WebSockets, each joined to up to 100 `bench:<n>` channels with the seed's filter
// `project_id=eq.<n>`), writes comments at a fixed rate, and measures commit-to-receipt
// latency of every delivery into HDR histograms. Runs apart from the gateway so the
// generator's work does not land on the server's event loop; it reports its own CPU and
// event-loop delay so a saturated generator can be told apart from a slow server.
import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import pg from 'pg';
import WebSocket from 'ws';

export type LoadCommand =
  | { type: 'setup'; wsUrl: string; anonKey: string; channels: number; members: number; channelsPerSocket: number }
  | { type: 'run'; rate: number; seconds: number; write: { kind: 'sql'; databaseUrl: string } | { kind: 'api'; httpUrl: string; serviceKey: string } }
  | { type: 'close' };

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** The histogram, compressed, so several load processes could be merged. */
  encoded: string;
}

export type LoadReply =
  | { type: 'ready'; sockets: number; subscriptions: number; joinMs: number; failures: string[] }
  | {
      type: 'done';
      inserts: number;
      insertErrors: number;
      firstInsertError?: string;
      achievedRate: number;
      expected: number;
      received: number;
      lost: number;
      duplicates: number;
      /** Scheduled insert time → receipt (includes the insert's own round trip and any queueing: no coordinated omission). */
      scheduledToReceipt: LatencySummary;
      /** commit_timestamp (captured at commit, by the database clock) → receipt. */
      commitToReceipt: LatencySummary;
      loadCpuPct: number;
      loadLoopDelayP99Ms: number;
    };

const send = (reply: LoadReply): void => void process.send!(reply);

let sockets: WebSocket[] = [];
let channels = 0;
let members = 0;
/** Per insert sequence number: deliveries seen. */
let seen = new Uint16Array(0);
const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
let scheduled = histogram();
let committed = histogram();
let heartbeat: NodeJS.Timeout | undefined;

function summary(h: hdr.Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    count: h.totalCount,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    encoded: hdr.encodeIntoCompressedBase64(h),
  };
}

function onFrame(raw: WebSocket.RawData): void {
  const now = Date.now();
  const frame = JSON.parse(raw.toString()) as [string | null, string | null, string, string, Record<string, unknown>];
  if (frame[3] !== 'postgres_changes') return;
  const data = (frame[4] as { data: { commit_timestamp: string; record: { body: string } } }).data;
  const [seq, at] = data.record.body.split(':').map(Number) as [number, number];
  if (seq < seen.length) seen[seq]!++;
  scheduled.recordValue(Math.max(1, (now - at) * 1000));
  committed.recordValue(Math.max(1, (now - Date.parse(data.commit_timestamp)) * 1000));
}

async function setup(cmd: Extract<LoadCommand, { type: 'setup' }>): Promise<void> {
  channels = cmd.channels;
  members = cmd.members;
  const started = Date.now();
  const failures: string[] = [];
  let subscribed = 0;
  let ref = 0;
  const opened: Promise<void>[] = [];
  for (let m = 0; m < members; m++) {
    for (let first = 0; first < channels; first += cmd.channelsPerSocket) {
      const mine = Array.from({ length: Math.min(cmd.channelsPerSocket, channels - first) }, (_, i) => first + i);
      const ws = new WebSocket(`${cmd.wsUrl}?apikey=${cmd.anonKey}&vsn=2.0.0`);
      sockets.push(ws);
      opened.push(
        new Promise<void>((resolve, reject) => {
          let waiting = mine.length;
          ws.once('error', reject);
          ws.on('open', () => {
            for (const c of mine) {
              const r = String(++ref);
              const config = {
                broadcast: { ack: false, self: false },
                presence: { key: '', enabled: false },
                postgres_changes: [{ event: '*', schema: 'public', table: 'project_comments', filter: `project_id=eq.${c}` }],
                private: false,
              };
              ws.send(JSON.stringify([r, r, `realtime:bench:${c}`, 'phx_join', { config }]));
            }
          });
          ws.on('message', (raw) => {
            const frame = JSON.parse(raw.toString()) as [unknown, unknown, string, string, Record<string, unknown>];
            if (frame[3] === 'system' && frame[4].extension === 'postgres_changes') {
              if (frame[4].status === 'ok') subscribed++;
              else failures.push(String(frame[4].message));
              if (--waiting === 0) {
                ws.removeAllListeners('message');
                ws.on('message', onFrame);
                resolve();
              }
            } else if (frame[3] === 'phx_reply' && (frame[4] as { status?: string }).status === 'error') {
              failures.push(JSON.stringify(frame[4]));
              if (--waiting === 0) resolve();
            }
          });
        }),
      );
    }
  }
  await Promise.all(opened);
  heartbeat = setInterval(() => {
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify([null, String(++ref), 'phoenix', 'heartbeat', {}]));
  }, 20_000);
  send({ type: 'ready', sockets: sockets.length, subscriptions: subscribed, joinMs: Date.now() - started, failures: failures.slice(0, 5) });
}

async function run(cmd: Extract<LoadCommand, { type: 'run' }>): Promise<void> {
  const total = Math.round(cmd.rate * cmd.seconds);
  seen = new Uint16Array(total);
  scheduled = histogram();
  committed = histogram();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const pool = cmd.write.kind === 'sql' ? new pg.Pool({ connectionString: cmd.write.databaseUrl, max: 32, options: '-c synchronous_commit=off' }) : undefined;
  const write = cmd.write;
  let errors = 0;
  let firstError: string | undefined;
  const failed = new Set<number>();
  const insert = async (seq: number, at: number): Promise<void> => {
    const project = String(Math.floor(Math.random() * channels));
    const body = `${seq}:${at}`;
    try {
      if (pool) {
        await pool.query(`insert into public.project_comments (project_id, user_id, body) values ($1, 'bench', $2)`, [project, body]);
      } else if (write.kind === 'api') {
        await post(`${write.httpUrl}/api/projects/${project}/comments`, write.serviceKey, JSON.stringify({ body, user_id: 'bench' }));
      }
    } catch (err) {
      errors++;
      failed.add(seq);
      firstError ??= (err as Error).message;
    }
  };
  const started = Date.now();
  const interval = 1000 / cmd.rate;
  const pending: Promise<void>[] = [];
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = Date.now();
      // Every insert is stamped with the time it was due, not the time it went out.
      while (next < total && started + next * interval <= now) {
        const at = Math.round(started + next * interval);
        pending.push(insert(next, at));
        next++;
      }
      if (next >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  await Promise.all(pending);
  const elapsed = (Date.now() - started) / 1000;
  const expected = (total - errors) * members;
  const deadline = Date.now() + 10_000;
  const received = () => seen.reduce((s, n) => s + n, 0);
  while (received() < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300)); // late duplicates
  let duplicates = 0;
  let lost = 0;
  seen.forEach((n, seq) => {
    if (n > members) duplicates += n - members;
    else if (!failed.has(seq)) lost += members - n;
  });
  const got = received();
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  await pool?.end();
  send({
    type: 'done',
    inserts: total,
    insertErrors: errors,
    firstInsertError: firstError,
    achievedRate: Math.round(total / elapsed),
    expected,
    received: got,
    lost,
    duplicates,
    scheduledToReceipt: summary(scheduled),
    commitToReceipt: summary(committed),
    loadCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / ((Date.now() - started) || 1)) * 100),
    loadLoopDelayP99Ms: Math.round(loop.percentile(99) / 1e4) / 100,
  });
}

/** A bounded keep-alive pool, as an application server would use: excess requests queue here (and that time counts). */
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

function post(url: string, token: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

process.on('message', (cmd: LoadCommand) => {
  const fail = (err: unknown) => {
    console.error(err);
    process.exit(1);
  };
  if (cmd.type === 'setup') setup(cmd).catch(fail);
  else if (cmd.type === 'run') run(cmd).catch(fail);
  else {
    if (heartbeat) clearInterval(heartbeat);
    for (const ws of sockets) ws.terminate();
    sockets = [];
    process.exit(0);
  }
});
