// One load-generator process of bench/realtime-channels.ts: raw `ws` sockets speaking the
// Phoenix 2.0.0 protocol as realtime-js does (join, heartbeat, presence track, kind-3
// broadcast pushes), bound to its own source address. It records latencies in HDR
// histograms (µs; the orchestrator merges them) and its own CPU and event-loop lag, so a
// saturated generator is reported as such instead of being read as server latency.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import WebSocket from 'ws';

export interface MemberSpec {
  channel: number;
  member: number;
}

export type LoadCommand =
  | { cmd: 'connect'; url: string; key: string; localAddress: string; members: MemberSpec[]; join: boolean; concurrency: number }
  | { cmd: 'track'; ratePerSec: number }
  | { cmd: 'broadcast'; perSenderRate: number; durationMs: number }
  | { cmd: 'progress' }
  | { cmd: 'report' }
  | { cmd: 'closeAll' };

export interface LoadReport {
  join: string;
  presence: string;
  broadcast: string;
  joinsFailed: number;
  connectFailed: number;
  diffs: number;
  broadcastsSent: number;
  broadcastsReceived: number;
  lost: number;
  duplicates: number;
  reordered: number;
  cpuMs: number;
  wallMs: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

export type LoadReply =
  | { type: 'connected'; opened: number; failed: number }
  | { type: 'tracked'; sent: number }
  | { type: 'broadcasted'; sent: number }
  | { type: 'progress'; diffs: number; broadcastsReceived: number }
  | ({ type: 'report' } & LoadReport)
  | { type: 'closed' };

interface Member extends MemberSpec {
  ws: WebSocket;
  topic: string;
  joinRef: string;
  joined: boolean;
  tracked: boolean;
  onJoin?: () => void;
  /** Broadcast sequence: next to send (senders) or last seen (receivers). */
  seq: number;
}

const send = (reply: LoadReply): void => void process.send!(reply);
const now = (): number => performance.timeOrigin + performance.now();
const histogram = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });

let joinHist = histogram();
let presenceHist = histogram();
let broadcastHist = histogram();
const counters = { joinsFailed: 0, connectFailed: 0, diffs: 0, broadcastsSent: 0, broadcastsReceived: 0, lost: 0, duplicates: 0, reordered: 0 };
const members: Member[] = [];
let refCounter = 0;
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let statsFrom = { cpu: process.cpuUsage(), wall: Date.now() };

const record = (h: hdr.Histogram, ms: number): void => h.recordValue(Math.max(1, Math.round(ms * 1000)));

function onMessage(m: Member, data: Buffer, isBinary: boolean): void {
  if (isBinary) {
    // Kind 4: 4, len(topic), len(event), len(meta), encoding, topic, event, meta, payload.
    if (data[0] !== 4) return;
    const start = 5 + data[1]! + data[2]! + data[3]!;
    const { t, s } = JSON.parse(data.toString('utf8', start)) as { t: number; s: number };
    record(broadcastHist, now() - t);
    counters.broadcastsReceived++;
    if (s === m.seq + 1) m.seq = s;
    else if (s > m.seq + 1) {
      counters.lost += s - m.seq - 1;
      m.seq = s;
    } else if (s === m.seq) counters.duplicates++;
    else counters.reordered++;
    return;
  }
  const frame = JSON.parse(data.toString('utf8')) as [string | null, string | null, string, string, Record<string, unknown>];
  const event = frame[3];
  if (event === 'phx_reply' && frame[1] === m.joinRef && !m.joined) {
    m.joined = (frame[4] as { status: string }).status === 'ok';
    if (!m.joined) counters.joinsFailed++;
    m.onJoin?.();
  } else if (event === 'presence_diff') {
    const joins = (frame[4] as { joins: Record<string, { metas: { t?: number }[] }> }).joins;
    const at = now();
    for (const key in joins) {
      for (const meta of joins[key]!.metas) {
        if (typeof meta.t === 'number') {
          record(presenceHist, at - meta.t);
          counters.diffs++;
        }
      }
    }
  }
}

async function openMember(spec: MemberSpec, url: string, key: string, localAddress: string, join: boolean): Promise<void> {
  const ws = new WebSocket(`${url}?apikey=${key}&vsn=2.0.0`, { localAddress, perMessageDeflate: false });
  const m: Member = { ...spec, ws, topic: `realtime:bench-${spec.channel}`, joinRef: String(++refCounter), joined: false, tracked: false, seq: 0 };
  const opened = await new Promise<boolean>((resolve) => {
    ws.once('open', () => resolve(true));
    ws.once('error', () => resolve(false));
  });
  if (!opened) {
    counters.connectFailed++;
    return;
  }
  ws.on('error', () => undefined);
  ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(m, data, isBinary));
  members.push(m);
  if (!join) return;
  const sentAt = now();
  await new Promise<void>((resolve) => {
    m.onJoin = resolve;
    ws.send(JSON.stringify([m.joinRef, m.joinRef, m.topic, 'phx_join', { config: { broadcast: { ack: false, self: false }, presence: { key: `m${m.member}`, enabled: true }, postgres_changes: [], private: false } }]));
  });
  record(joinHist, now() - sentAt);
}

/** Runs `fn` at `perSec` calls per second in 10 ms slices until it returns false or `untilMs` passes. */
async function paced(perSec: number, untilMs: number, fn: () => boolean): Promise<void> {
  let tokens = 0;
  let last = now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 10));
    const t = now();
    tokens += ((t - last) / 1000) * perSec;
    last = t;
    for (; tokens >= 1; tokens--) if (!fn()) return;
    if (t >= untilMs) return;
  }
}

function userBroadcastPush(m: Member, payload: string): Buffer {
  const parts = [m.joinRef, '', m.topic, 'b', ''].map((s) => Buffer.from(s));
  return Buffer.concat([Buffer.from([3, ...parts.map((p) => p.length), 1]), ...parts, Buffer.from(payload)]);
}

// Heartbeats like realtime-js: every member every 25 s, from one timer for the whole
// process. Real clients heartbeat 25 s after their own connect, so their heartbeats are
// spread out; sending all of a process's at once would make the gateway answer thousands
// in one burst, a stall no real population produces. Each 250 ms tick takes 1/100 of them.
const HEARTBEAT_SLICES = 100;
let heartbeatSlice = 0;
setInterval(() => {
  const slice = heartbeatSlice++ % HEARTBEAT_SLICES;
  for (let i = slice; i < members.length; i += HEARTBEAT_SLICES) {
    const m = members[i]!;
    if (m.ws.readyState === WebSocket.OPEN) m.ws.send(`[null,"${++refCounter}","phoenix","heartbeat",{}]`);
  }
}, 25_000 / HEARTBEAT_SLICES).unref();

process.on('message', (msg: LoadCommand) => {
  void (async () => {
    switch (msg.cmd) {
      case 'connect': {
        const queue = [...msg.members];
        let failed = counters.connectFailed;
        const workers = Array.from({ length: msg.concurrency }, async () => {
          for (let spec = queue.shift(); spec; spec = queue.shift()) await openMember(spec, msg.url, msg.key, msg.localAddress, msg.join);
        });
        await Promise.all(workers);
        failed = counters.connectFailed - failed;
        send({ type: 'connected', opened: msg.members.length - failed, failed });
        break;
      }
      case 'track': {
        const pending = members.filter((m) => m.joined && !m.tracked);
        let i = 0;
        await paced(msg.ratePerSec, Infinity, () => {
          const m = pending[i++];
          if (!m) return false;
          m.tracked = true;
          m.ws.send(JSON.stringify([m.joinRef, String(++refCounter), m.topic, 'presence', { type: 'presence', event: 'track', payload: { t: now() } }]));
          return i < pending.length;
        });
        send({ type: 'tracked', sent: pending.length });
        break;
      }
      case 'broadcast': {
        const senders = members.filter((m) => m.joined && m.member === 0);
        let rr = 0;
        const sentBefore = counters.broadcastsSent;
        if (senders.length) {
          await paced(msg.perSenderRate * senders.length, now() + msg.durationMs, () => {
            const m = senders[rr++ % senders.length]!;
            m.seq++;
            m.ws.send(userBroadcastPush(m, `{"t":${now()},"s":${m.seq}}`));
            counters.broadcastsSent++;
            return true;
          });
        }
        send({ type: 'broadcasted', sent: counters.broadcastsSent - sentBefore });
        break;
      }
      case 'progress':
        send({ type: 'progress', diffs: counters.diffs, broadcastsReceived: counters.broadcastsReceived });
        break;
      case 'report': {
        const cpu = process.cpuUsage(statsFrom.cpu);
        const wallNow = Date.now();
        send({
          type: 'report',
          join: hdr.encodeIntoCompressedBase64(joinHist),
          presence: hdr.encodeIntoCompressedBase64(presenceHist),
          broadcast: hdr.encodeIntoCompressedBase64(broadcastHist),
          ...counters,
          cpuMs: (cpu.user + cpu.system) / 1000,
          wallMs: wallNow - statsFrom.wall,
          loopP99Ms: loop.percentile(99) / 1e6,
          loopMaxMs: loop.max / 1e6,
        });
        // Each report covers one phase.
        joinHist = histogram();
        presenceHist = histogram();
        broadcastHist = histogram();
        for (const k of Object.keys(counters) as (keyof typeof counters)[]) counters[k] = 0;
        statsFrom = { cpu: process.cpuUsage(), wall: wallNow };
        loop.reset();
        break;
      }
      case 'closeAll': {
        await Promise.all(
          members.splice(0).map(
            (m) =>
              new Promise<void>((resolve) => {
                if (m.ws.readyState === WebSocket.CLOSED) return resolve();
                m.ws.once('close', () => resolve());
                m.ws.terminate();
              }),
          ),
        );
        send({ type: 'closed' });
        break;
      }
    }
  })();
});
process.on('disconnect', () => process.exit(0));
