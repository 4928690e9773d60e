// A load process for the SSE bench: holds thousands of raw SSE streams and measures,
// for one published event at a time, publish-to-receipt latency on every stream (server
// publish time `ts` from the payload to this process's receive time) in an HDR
// histogram. Several of these run at once; the bench merges their histograms.
//
// Messages in:  {cmd: 'open', url, path, token, count, localAddress}
//               {cmd: 'arm', seq}      expect event `seq` on every stream
//               {cmd: 'report'}        the histogram of the rounds since the last report
//               {cmd: 'close'}
// Messages out: {type: 'opened'} {type: 'armed'} {type: 'round'} {type: 'report'} {type: 'closed'}
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { openRawStreams } from './sse-harness.js';

export type LoadCommand =
  | { cmd: 'open'; url: string; path: string; token: string; count: number; localAddress: string }
  | { cmd: 'arm'; seq: number; timeoutMs: number }
  | { cmd: 'report' }
  | { cmd: 'close' };

export type LoadReply =
  | { type: 'opened'; total: number; failed: number; firstError?: string }
  | { type: 'armed'; seq: number }
  /** One round: how many streams got the event, the slowest, and how busy this process was. */
  | { type: 'round'; seq: number; received: number; expected: number; maxUs: number; elu: number }
  | { type: 'report'; histogram: string; received: number; missed: number }
  | { type: 'closed' };

const SEQ = Buffer.from('"seq":');
const TS = Buffer.from(',"ts":');

const sockets: Socket[] = [];
const all = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
let armed = -1;
let received = 0;
let expected = 0;
let roundMaxUs = 0;
let totalReceived = 0;
let totalMissed = 0;
let roundTimer: NodeJS.Timeout | undefined;
let eluStart = performance.eventLoopUtilization();

const send = (reply: LoadReply): void => void process.send?.(reply);

/** Reads a non-negative integer at `at`; -1 if none. */
function readInt(buf: Buffer, at: number): number {
  let n = 0;
  let digits = 0;
  for (let i = at; i < buf.length; i++, digits++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return digits ? n : -1;
}

/** One listener for every stream: finds `"seq":N,"ts":T` of the armed event and records its latency. */
function onData(chunk: Buffer): void {
  if (armed < 0) return;
  const now = performance.timeOrigin + performance.now();
  for (let at = chunk.indexOf(SEQ); at >= 0; at = chunk.indexOf(SEQ, at + SEQ.length)) {
    if (readInt(chunk, at + SEQ.length) !== armed) continue;
    const tsAt = chunk.indexOf(TS, at);
    if (tsAt < 0) continue;
    const ts = readInt(chunk, tsAt + TS.length);
    const us = Math.max(1, Math.round((now - ts) * 1000));
    all.recordValue(us);
    if (us > roundMaxUs) roundMaxUs = us;
    if (++received === expected) finishRound();
  }
}

function finishRound(): void {
  if (armed < 0) return;
  clearTimeout(roundTimer);
  const elu = performance.eventLoopUtilization(eluStart).utilization;
  send({ type: 'round', seq: armed, received, expected, maxUs: roundMaxUs, elu });
  totalReceived += received;
  totalMissed += expected - received;
  armed = -1;
}

process.on('message', (msg: LoadCommand) => {
  switch (msg.cmd) {
    case 'open':
      void openRawStreams({ ...msg, onData, concurrency: 150 }).then((r) => {
        sockets.push(...r.sockets);
        send({ type: 'opened', total: sockets.length, failed: r.failed, firstError: r.firstError });
      });
      return;
    case 'arm':
      armed = msg.seq;
      received = 0;
      roundMaxUs = 0;
      expected = sockets.length;
      eluStart = performance.eventLoopUtilization();
      roundTimer = setTimeout(finishRound, msg.timeoutMs);
      return send({ type: 'armed', seq: msg.seq });
    case 'report':
      // Each report covers the rounds since the previous one (one fan-out size).
      send({ type: 'report', histogram: hdr.encodeIntoCompressedBase64(all), received: totalReceived, missed: totalMissed });
      all.reset();
      totalReceived = 0;
      totalMissed = 0;
      return;
    case 'close':
      for (const s of sockets.splice(0)) s.destroy();
      return send({ type: 'closed' });
  }
});
process.on('disconnect', () => process.exit(0));
