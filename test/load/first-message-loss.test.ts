// A real gateway whose first messages never reach subscribers that were live before
// publishing began: the load tester must charge those losses (and a stream a live
// subscriber never heard from at all), and must not charge a subscriber that joined after
// publishing began for what was published before it joined (roll-call.ts). A proxy
// between the gateway and the load tester loses exactly the messages named below.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad } from '../../src/load/coordinator.js';
import { startEmbeddedGateway, type EmbeddedGateway } from '../../src/load/embedded-gateway.js';
import { createFanoutStreams } from '../../src/load/target.js';
import { resolveThresholds } from '../../src/load/thresholds.js';
import type { RunSpec } from '../../src/load/spec.js';
import { startLossyProxy, type InFlight, type LossyProxy } from './fixtures/lossy-proxy.js';

let gw: EmbeddedGateway;
let proxy: LossyProxy;
/** Measured messages the gateway sent each subscriber, by `who|kind`, whether or not the proxy then lost them. */
const sent: Record<string, number> = {};

/** Who loses what on the way from the gateway (connections 0–3 of one SSE stream, users 0–3 of one project; user 0 sends the documents). */
function lose(who: string, m: InFlight): boolean {
  const count = (kind: string): number => (sent[`${who}|${kind}`] = (sent[`${who}|${kind}`] ?? 0) + 1);
  if (m.kind === 'sse') {
    if (typeof m.data?.seq !== 'number') return false;
    const n = count('sse');
    // Connection 0 loses its first message; connection 1 every message.
    return (who === 'sse:0' && n === 1) || who === 'sse:1';
  }
  const { event, payload } = m.frame;
  if (event === 'broadcast') {
    count('doc');
    // User 1 loses the first document broadcast it is owed: the first one sent after the roll call closed.
    const stamp = (payload as { payload?: { seq?: unknown; o?: unknown } } | null)?.payload;
    return who === 'rt:user-0-1' && stamp?.o !== undefined && stamp.seq === stamp.o;
  }
  if (event === 'postgres_changes') {
    const n = count('comment');
    // User 1 loses its first comment; user 3 every comment.
    return (who === 'rt:user-0-1' && n === 1) || who === 'rt:user-0-3';
  }
  return false;
}

beforeAll(async () => {
  // No replay window after start-up: a change committed before a channel joined must not reach it.
  gw = await startEmbeddedGateway({ env: { FANOUT_CHANGES_REPLAY_MS: '0' } });
  // Connection 2 and user 2 arrive at 500 ms but reach the gateway 3 s later, well after publishing began.
  proxy = await startLossyProxy(gw.url, { holdMs: (who) => (who === 'sse:2' || who === 'rt:user-0-2' ? 3000 : 0), lose });
}, 60_000);
afterAll(async () => {
  await proxy?.close();
  await gw?.stop();
});

const spec = (): RunSpec => ({
  name: 'first-message-loss',
  // Everything goes through the proxy; the sampler still reads the gateway itself.
  target: { ...gw.target, url: proxy.url },
  durationMs: 6000,
  rampMs: 1000,
  pattern: 'gradual',
  sse: { connections: 4, streams: 1, ratePerStream: 5, path: 'user', reconnect: true },
  realtime: { projects: 1, usersPerProject: 4, presence: false, presenceIntervalMs: 0, docRate: 2, commentRate: 1, reconnect: true },
  thresholds: resolveThresholds([]),
  generator: { maxLagMs: 5000, maxCpuPct: 100 },
  drainMs: 1500,
});

describe('losses of a stream’s first messages', () => {
  it('are charged to subscribers live before publishing began, never to a late joiner', async () => {
    const target = { ...gw.target, url: proxy.url };
    const r = await runLoad(spec(), { baselineMs: 300, prepareSse: async (n) => ({ streams: await createFanoutStreams(target, n, `fml${Date.now().toString(36)}`) }) });
    // Live at the roll call: SSE connections 0, 1, 3 and users 0 (comments only), 1, 3; not the two held back.
    expect(r.notes.join('\n')).toMatch(/roll call at ramp \+ 300 ms: 6 of 8 subscribers live/);
    expect(r.groups.sse!.established).toBe(4);
    expect(r.groups.realtime!.established).toBe(4);

    // SSE: one stream, numbered by the gateway from 1.
    const published = r.publish.sse!;
    expect(published.failed).toBe(0);
    const sse = r.groups.sse!.deliveryTotal;
    // Connection 0's first message, and every message of connection 1, which only ever saw `ready`.
    expect(sse.lost).toBe(1 + published.ok);
    expect(sse.duplicates).toBe(0);
    // The late joiner was sent fewer messages than connection 3 (it missed the first ones) and is not charged for them.
    expect(sent['sse:2|sse']).toBeLessThan(sent['sse:3|sse']!);
    expect(sent['sse:3|sse']).toBe(published.ok);

    // Realtime: user 1's first owed document; user 1's first comment and every comment of user 3.
    const rt = r.groups.realtime!.delivery;
    const comments = r.publish.comments!;
    expect(comments.failed).toBe(0);
    expect(rt.broadcast).toMatchObject({ lost: 1, duplicates: 0 });
    expect(rt.comments).toMatchObject({ lost: 1 + comments.ok, duplicates: 0 });
    expect(sent['rt:user-0-3|comment']).toBe(comments.ok);
    // The late joiner missed the first documents and comments, uncharged.
    expect(sent['rt:user-0-2|doc']).toBeLessThan(sent['rt:user-0-3|doc']!);
    expect(sent['rt:user-0-2|comment']).toBeLessThan(comments.ok);
  }, 90_000);
});
