// Several gateways on one bus behave as one: for each bus (the in-process MemoryCluster,
// the machine's Redis and NATS), messages published on any node reach subscribers on every
// node with the same ids; a client resumes on another node without loss or duplicate (or
// is told `reset`); content items, Realtime broadcasts and presence span the nodes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, openClient, rawGet, seqs, waitFor } from '../sse/helpers.js';
import { closeClients, joined, supabase } from '../realtime/helpers.js';
import { KINDS, startCluster, type Cluster } from './helpers.js';

async function post(url: string, token: string, body: unknown): Promise<Awaited<ReturnType<typeof http>>> {
  return http('POST', url, { token, body });
}

describe.each(KINDS)('a cluster of three gateways on the %s bus', (kind) => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster(kind, 3, { historySize: 20 });
  }, 30_000);
  afterAll(async () => {
    await closeClients();
    await cluster?.stop();
  }, 30_000);

  const node = (i: number) => cluster.nodes[i]!;

  it('delivers a message published on one node to streams on the others, with the same ids', async () => {
    const [a, b, c] = [node(0), node(1), node(2)];
    const user = `u-${kind}-1`;
    const onB = openClient(`${b.url}/api/content/progress?userId=${user}`, b.keys.service_role);
    const onC = openClient(`${c.url}/v1/stream?topic=user:${user}`, c.keys.service_role);
    await waitFor(() => onB.of('ready').length === 1 && onC.of('ready').length === 1, 'both streams ready');
    for (let i = 1; i <= 5; i++) {
      const r = await post(`${a.url}/api/content/item-${kind}-1/progress`, a.keys.service_role, { progress: i * 10, userId: user });
      expect(r.status).toBe(i === 1 ? 201 : 200);
      expect(r.json.seq).toBe(i);
    }
    await waitFor(() => onB.of('progress').length === 5 && onC.of('progress').length === 5, 'five events on B and C');
    expect(onB.of('progress').map((e) => e.data.progress)).toEqual([10, 20, 30, 40, 50]);
    expect(seqs(onB.of('progress'))).toEqual([1, 2, 3, 4, 5]);
    expect(onC.of('progress').map((e) => e.id)).toEqual(onB.of('progress').map((e) => e.id));
    onB.close();
    onC.close();
  });

  it('resumes on another node exactly after the last id seen: no loss, no duplicate', async () => {
    const [a, b, c] = [node(0), node(1), node(2)];
    const created = await post(`${a.url}/api/content`, a.keys.service_role, { userId: `u-${kind}-2`, simulate: false });
    expect(created.status).toBe(201);
    const id = created.json.contentId as string;
    // The item was created on A; B and C know it through the bus.
    const first = openClient(`${b.url}/api/content/${id}/progress`, b.keys.service_role);
    await waitFor(() => first.of('ready').length === 1, 'ready on B');
    for (let i = 1; i <= 3; i++) expect((await post(`${a.url}/api/content/${id}/progress`, a.keys.service_role, { progress: i })).status).toBe(200);
    await waitFor(() => first.of('progress').length === 3, 'three events on B');
    const lastId = first.of('progress').at(-1)!.id;
    first.close();
    for (let i = 4; i <= 7; i++) expect((await post(`${c.url}/api/content/${id}/progress`, c.keys.service_role, { progress: i })).status).toBe(200);
    const resumed = await rawGet(`${c.url}/api/content/${id}/progress`, { authorization: `Bearer ${c.keys.service_role}`, 'last-event-id': lastId });
    expect(resumed.status).toBe(200);
    await waitFor(() => resumed.frames().some((f) => f.fields.event === 'ready'), 'ready after the replay on C');
    const replayed = resumed.frames().filter((f) => f.fields.event === 'progress');
    expect(replayed.map((f) => (JSON.parse(f.fields.data!) as { seq: number }).seq)).toEqual([4, 5, 6, 7]);
    const ready = JSON.parse(resumed.frames().find((f) => f.fields.event === 'ready')!.fields.data!) as { resumed: boolean };
    expect(ready.resumed).toBe(true);
    // Live events keep flowing on C after the replay, from a publish on B.
    expect((await post(`${b.url}/api/content/${id}/progress`, b.keys.service_role, { progress: 8 })).status).toBe(200);
    await waitFor(() => resumed.frames().filter((f) => f.fields.event === 'progress').length === 5, 'the live event after the replay');
    resumed.destroy();
    // The long-poll fallback on the third node answers from the same positions.
    const poll = await http('GET', `${a.url}/api/content/${id}/progress/poll?after=${encodeURIComponent(lastId)}&wait=0`, { token: a.keys.service_role });
    expect(poll.status).toBe(200);
    expect((poll.json.events as { data: { seq: number } }[]).map((e) => e.data.seq)).toEqual([4, 5, 6, 7, 8]);
    const multi = await http('GET', `${b.url}/v1/poll?topic=content:${id}&after=${encodeURIComponent(lastId)}&wait=0`, { token: b.keys.service_role });
    expect(multi.status).toBe(200);
    expect((multi.json.events as { data: { seq: number } }[]).map((e) => e.data.seq)).toEqual([4, 5, 6, 7, 8]);
    const state = await http('GET', `${c.url}/api/content/${id}`, { token: c.keys.service_role });
    expect(state.json).toMatchObject({ progress: 8, status: 'running', lastEventId: expect.stringMatching(/:8$/) as unknown });
  });

  it('tells a client resuming on another node `reset` when the cluster history no longer covers its gap', async () => {
    const [a, b] = [node(0), node(1)];
    const created = await post(`${a.url}/api/content`, a.keys.service_role, { userId: `u-${kind}-3`, simulate: false });
    const id = created.json.contentId as string;
    const first = await post(`${a.url}/api/content/${id}/progress`, a.keys.service_role, { progress: 1 });
    for (let i = 2; i <= 30; i++) await post(`${a.url}/api/content/${id}/progress`, a.keys.service_role, { progress: i }); // history keeps 20
    const resumed = await rawGet(`${b.url}/api/content/${id}/progress`, { authorization: `Bearer ${b.keys.service_role}`, 'last-event-id': first.json.id as string });
    await waitFor(() => resumed.frames().some((f) => f.fields.event === 'ready'), 'ready');
    const frames = resumed.frames().filter((f) => f.fields.event);
    expect(frames.map((f) => f.fields.event)).toEqual(['reset', 'ready']);
    expect(JSON.parse(frames[0]!.fields.data!)).toMatchObject({ reason: 'expired' });
    // The reset names the cluster's current position, the same on every node.
    expect(frames[0]!.fields.id).toMatch(/:30$/);
    resumed.destroy();
  });

  it('carries many topics on one stream, published from different nodes', async () => {
    const [a, b, c] = [node(0), node(1), node(2)];
    const ids: string[] = [];
    for (const [i, n] of [a, b].entries()) {
      const r = await post(`${n.url}/api/content`, n.keys.service_role, { userId: `u-${kind}-4`, simulate: false, contentId: `multi-${kind}-${i}` });
      ids.push(r.json.contentId as string);
    }
    const stream = openClient(`${c.url}/v1/stream?topic=content:${ids[0]}&topic=content:${ids[1]}`, c.keys.service_role);
    await waitFor(() => stream.of('ready').length === 1, 'ready');
    await post(`${a.url}/api/content/${ids[0]}/progress`, a.keys.service_role, { progress: 1 });
    await post(`${b.url}/api/content/${ids[1]}/progress`, b.keys.service_role, { progress: 2 });
    await post(`${c.url}/api/content/${ids[0]}/progress`, c.keys.service_role, { progress: 3 });
    await waitFor(() => stream.of('progress').length === 3, 'three events');
    expect(stream.of('progress').map((e) => [e.data.topic, e.data.seq])).toEqual([
      [`content:${ids[0]}`, 1],
      [`content:${ids[1]}`, 1],
      [`content:${ids[0]}`, 2],
    ]);
    stream.close();
  });

  it('relays supabase-js broadcasts between clients on different nodes (self: false respected)', async () => {
    const [a, b] = [node(0), node(1)];
    const topic = `room-${kind}`;
    const gotOnA: unknown[] = [];
    const gotOnB: unknown[] = [];
    const chA = await joined(supabase(a).channel(topic, { config: { broadcast: { self: false, ack: true } } }).on('broadcast', { event: 'cursor' }, (m) => gotOnA.push(m.payload)));
    await joined(supabase(b).channel(topic).on('broadcast', { event: 'cursor' }, (m) => gotOnB.push(m.payload)));
    expect(await chA.send({ type: 'broadcast', event: 'cursor', payload: { x: 1 } })).toBe('ok');
    await waitFor(() => gotOnB.length === 1, 'the broadcast on B');
    expect(gotOnB).toEqual([{ x: 1 }]);
    // REST broadcast on the third node reaches both.
    const r = await fetch(`${node(2).url}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: { apikey: node(2).keys.service_role, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ topic, event: 'cursor', payload: { x: 2 } }] }),
    });
    expect(r.status).toBe(202);
    await waitFor(() => gotOnA.length === 1 && gotOnB.length === 2, 'the REST broadcast on A and B');
    expect(gotOnA).toEqual([{ x: 2 }]); // never its own { x: 1 }
  });

  it('shows presence across nodes: presence_state on B includes members tracked on A, and leaves reach the others', async () => {
    const [a, b] = [node(0), node(1)];
    const topic = `presence-${kind}`;
    const chA = await joined(supabase(a).channel(topic, { config: { presence: { key: 'alice' } } }));
    expect(await chA.track({ status: 'online' })).toBe('ok');
    const chB = supabase(b).channel(topic, { config: { presence: { key: 'bob' } } });
    let synced = 0;
    chB.on('presence', { event: 'sync' }, () => synced++);
    await joined(chB);
    await waitFor(() => Object.keys(chB.presenceState()).includes('alice'), 'alice (tracked on A) in B’s presence state');
    expect(chB.presenceState().alice).toMatchObject([{ status: 'online' }]);
    expect(await chB.track({ status: 'busy' })).toBe('ok');
    await waitFor(() => Object.keys(chA.presenceState()).includes('bob'), 'bob (tracked on B) in A’s presence state');
    await chA.untrack();
    await waitFor(() => !Object.keys(chB.presenceState()).includes('alice'), 'alice’s leave on B');
    expect(synced).toBeGreaterThan(0);
    // A third node joining now sees bob only.
    const chC = await joined(supabase(node(2)).channel(topic).on('presence', { event: 'sync' }, () => undefined));
    await waitFor(() => Object.keys(chC.presenceState()).length > 0, 'presence state on C');
    expect(Object.keys(chC.presenceState())).toEqual(['bob']);
  });
});
