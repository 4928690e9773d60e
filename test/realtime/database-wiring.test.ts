// The channel side of postgres_changes and private channels, against a small in-test fake
// of the contract in src/changes/types.ts. The fake stands in ONLY until the real change
// feed lands; the `changes` branch adds the end-to-end tests against PGlite/PostgreSQL.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Claims } from '../../src/core/auth.js';
import type {
  ChangeData,
  ChangeFeed,
  ChangeSubscriptionRequest,
  ChangeSubscriptionResult,
  ChannelAuthorizer,
  ChannelPermissions,
} from '../../src/changes/types.js';
import { modulesWithDatabase, modulesWithout, type TestGateway } from '../helpers/gateway.js';
import { closeClients, joined, RawClient, sleep, startRealtimeGateway, subscribe, supabase, waitFor } from './helpers.js';

interface FakeSubscription {
  request: ChangeSubscriptionRequest;
  claims: Claims;
  active: boolean;
}

class FakeFeed implements ChangeFeed {
  readonly ready = true;
  readonly subscriptions: FakeSubscription[] = [];
  failWith: string | undefined;
  delayMs = 0;

  async connect(): Promise<void> {}

  async subscribe(request: ChangeSubscriptionRequest): Promise<ChangeSubscriptionResult> {
    if (this.delayMs) await sleep(this.delayMs);
    if (this.failWith) return { ok: false, error: this.failWith };
    const entry: FakeSubscription = { request, claims: request.claims, active: true };
    this.subscriptions.push(entry);
    return {
      ok: true,
      subscription: {
        updateClaims: (claims) => void (entry.claims = claims),
        unsubscribe: () => void (entry.active = false),
      },
    };
  }

  /** Delivers a change the way the real feed will: once per channel, with every matching binding id. */
  emit(data: ChangeData): void {
    for (const sub of this.subscriptions.filter((s) => s.active)) {
      const ids = sub.request.bindings
        .filter(({ params }) => params.table === data.table && (params.event === '*' || params.event === data.type))
        .map((b) => b.id);
      if (ids.length) sub.request.deliver(ids, data, Date.now());
    }
  }

  async close(): Promise<void> {}
}

class FakeAuthorizer implements ChannelAuthorizer {
  /** topic → user sub (or role) → permissions; absent means nothing allowed. */
  readonly read = new Map<string, ChannelPermissions>();
  readonly write = new Set<string>();
  readonly revokedFor = new Set<string>();

  async canRead(subtopic: string, claims: Claims): Promise<ChannelPermissions> {
    if (claims.sub && this.revokedFor.has(claims.sub)) return { broadcastRead: false, presenceRead: false };
    return this.read.get(subtopic) ?? { broadcastRead: false, presenceRead: false };
  }

  async canWrite(subtopic: string, _claims: Claims, extension: 'broadcast' | 'presence'): Promise<boolean> {
    return this.write.has(`${subtopic}:${extension}`);
  }
}

let gw: TestGateway;
let feed: FakeFeed;
let authorizer: FakeAuthorizer;

beforeAll(async () => {
  // The database service forwards to this test's fakes, renewed before each test.
  gw = await startRealtimeGateway({}, { modules: modulesWithDatabase(() => ({ changeFeed: feed, authorizer, archive: { replay: () => Promise.resolve([]) } })) });
});
beforeEach(() => {
  feed = new FakeFeed();
  authorizer = new FakeAuthorizer();
});
afterEach(closeClients);
afterAll(() => gw.stop());

const commentColumns = [
  { name: 'id', type: 'int8' },
  { name: 'project_id', type: 'int8' },
  { name: 'body', type: 'text' },
];

function insert(table: string, record: Record<string, unknown>): ChangeData {
  return { schema: 'public', table, type: 'INSERT', commit_timestamp: '2026-01-01T00:00:00.123Z', columns: commentColumns, record, errors: null };
}

type System = { extension: string; status: string; message: string; channel: string };

describe('postgres_changes bindings', () => {
  it("runs the seed's pattern: presence sync + postgres_changes on project_comments, with ids echoed in the join reply", async () => {
    const id = 42;
    const client = supabase(gw);
    const changes: Record<string, unknown>[] = [];
    const system: System[] = [];
    let syncs = 0;
    const channel = client
      .channel(`project:${id}`)
      .on('presence', { event: 'sync' }, () => void syncs++)
      .on('postgres_changes', { event: '*', schema: 'public', table: 'project_comments', filter: `project_id=eq.${id}` }, (p) => changes.push(p as Record<string, unknown>))
      .on('system', {}, (p: System) => system.push(p));
    await joined(channel);
    await waitFor(() => system.length === 1, 'system message');
    expect(system[0]).toEqual({ extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: `project:${id}` });
    expect(syncs).toBeGreaterThanOrEqual(1);

    const [sub] = feed.subscriptions;
    expect(sub!.request.channel).toBe('project:42');
    expect(sub!.request.claims.role).toBe('anon');
    expect(sub!.request.bindings).toEqual([{ id: expect.any(Number), params: { event: '*', schema: 'public', table: 'project_comments', filter: 'project_id=eq.42' } }]);
    expect(Number.isInteger(sub!.request.bindings[0]!.id)).toBe(true);

    feed.emit(insert('project_comments', { id: 1, project_id: 42, body: 'hello' }));
    await waitFor(() => changes.length === 1, 'change delivered');
    expect(changes[0]).toEqual({
      schema: 'public',
      table: 'project_comments',
      commit_timestamp: '2026-01-01T00:00:00.123Z',
      eventType: 'INSERT',
      new: { id: 1, project_id: 42, body: 'hello' },
      old: {},
      errors: null,
    });
  });

  it('gives identical params identical integer ids, and delivers to exactly the bindings whose ids are listed', async () => {
    const raw = await RawClient.connect(gw);
    const bindings = [
      { event: 'INSERT', schema: 'public', table: 'todos', filter: 'project_id=eq.7' },
      { event: '*', schema: 'public', table: 'other' },
    ];
    const a = await raw.join('ids-a', { postgres_changes: bindings });
    const b = await raw.join('ids-b', { postgres_changes: [bindings[1], bindings[0]] });
    const idsA = ((a.reply[4] as { response: { postgres_changes: { id: number }[] } }).response.postgres_changes);
    const idsB = ((b.reply[4] as { response: { postgres_changes: { id: number }[] } }).response.postgres_changes);
    expect(idsA).toEqual([{ ...bindings[0], id: expect.any(Number) }, { ...bindings[1], id: expect.any(Number) }]);
    expect(idsA[0]!.id).not.toBe(idsA[1]!.id);
    expect(idsB.map((x) => x.id)).toEqual([idsA[1]!.id, idsA[0]!.id]);
    raw.close();

    const client = supabase(gw);
    const inserts: unknown[] = [];
    const others: { eventType: string; new: unknown; old: unknown }[] = [];
    const ch = client
      .channel('ids-client')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos', filter: 'project_id=eq.7' }, (p) => inserts.push(p))
      .on('postgres_changes', { event: '*', schema: 'public', table: 'other' }, (p) => others.push(p as never));
    await joined(ch);
    await waitFor(() => feed.subscriptions.length === 3, 'three subscriptions');
    feed.emit({ schema: 'public', table: 'other', type: 'UPDATE', commit_timestamp: '2026-01-01T00:00:01.000Z', columns: [{ name: 'id', type: 'int4' }, { name: 'title', type: 'text' }], record: { id: 5, title: 'new' }, old_record: { id: 5 }, errors: null });
    feed.emit({ schema: 'public', table: 'other', type: 'DELETE', commit_timestamp: '2026-01-01T00:00:02.000Z', columns: [{ name: 'id', type: 'int4' }], old_record: { id: '5' }, errors: null });
    await waitFor(() => others.length === 2, 'UPDATE and DELETE');
    expect(others.map((o) => [o.eventType, o.new, o.old])).toEqual([
      ['UPDATE', { id: 5, title: 'new' }, { id: 5 }],
      ['DELETE', {}, { id: 5 }],
    ]);
    expect(inserts).toEqual([]);
  });

  it('reports a refused subscription as a system error while the channel stays joined', async () => {
    feed.failWith = 'Unable to subscribe to changes with given parameters';
    const ch = supabase(gw).channel('bad-binding');
    const system: System[] = [];
    ch.on('postgres_changes', { event: '*', schema: 'public', table: 'nope' }, () => undefined).on('system', {}, (p: System) => system.push(p));
    const { statuses } = await subscribe(ch);
    await waitFor(() => system.length === 1, 'system error');
    expect(system[0]).toEqual({ extension: 'postgres_changes', status: 'error', message: 'Unable to subscribe to changes with given parameters', channel: 'bad-binding' });
    expect(statuses.map((s) => s.status)).toEqual(['SUBSCRIBED']);
    expect(await ch.send({ type: 'broadcast', event: 'x', payload: {} })).toBe('ok');
  });

  it('holds the join reply with postgres_changes_options.wait until the feed subscribed, or refuses the join', async () => {
    feed.delayMs = 300;
    const ch = supabase(gw).channel('waiting', { config: { postgres_changes_options: { wait: true } } } as never);
    ch.on('postgres_changes', { event: '*', schema: 'public', table: 't' }, () => undefined);
    const started = Date.now();
    expect((await subscribe(ch)).status).toBe('SUBSCRIBED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    feed.delayMs = 0;
    feed.failWith = 'invalid filter';
    const refused = supabase(gw).channel('waiting-refused', { config: { postgres_changes_options: { wait: true } } } as never);
    refused.on('postgres_changes', { event: '*', schema: 'public', table: 't', filter: 'id=foo.1' }, () => undefined);
    const { status, error } = await subscribe(refused);
    expect(status).toBe('CHANNEL_ERROR');
    expect(error?.message).toBe('RealtimeDisabledForConfiguration: invalid filter');
  });

  it('passes refreshed claims to the subscription and unsubscribes on leave and on socket death', async () => {
    const client = supabase(gw);
    const ch = client.channel('claims-room').on('postgres_changes', { event: '*', schema: 'public', table: 't' }, () => undefined);
    await joined(ch);
    await waitFor(() => feed.subscriptions.length === 1, 'subscription');
    await client.realtime.setAuth(await gw.userToken('user-7'));
    await waitFor(() => feed.subscriptions[0]!.claims.sub === 'user-7', 'claims updated');
    // realtime-js resolves removeChannel locally; the server's unsubscribe follows the phx_leave.
    expect(await client.removeChannel(ch)).toBe('ok');
    await waitFor(() => !feed.subscriptions[0]!.active, 'unsubscribed on leave');

    const raw = await RawClient.connect(gw);
    await raw.join('death-sub', { postgres_changes: [{ event: '*', schema: 'public', table: 't' }] });
    await waitFor(() => feed.subscriptions.length === 2, 'second subscription');
    raw.ws.terminate();
    await waitFor(() => !feed.subscriptions[1]!.active, 'unsubscribed when the socket died');
  });

  it('shares the encoded frame between sockets on the same channel', async () => {
    const a = await RawClient.connect(gw);
    const b = await RawClient.connect(gw);
    const binding = [{ event: '*', schema: 'public', table: 'shared' }];
    await a.join('shared-room', { postgres_changes: binding });
    await b.join('shared-room', { postgres_changes: binding });
    await waitFor(() => feed.subscriptions.length === 2, 'two subscriptions');
    feed.emit(insert('shared', { id: 9 }));
    const [fa, fb] = await Promise.all([a, b].map((c) => c.waitFrame((f) => Array.isArray(f) && f[3] === 'postgres_changes', 'change frame')));
    expect(fa).toEqual(fb);
    expect((fa as unknown[])[4]).toEqual({ ids: [feed.subscriptions[0]!.request.bindings[0]!.id], data: insert('shared', { id: 9 }) });
    a.close();
    b.close();
  });
});

describe('private channels', () => {
  it('refuses a join the policies do not allow, with the Unauthorized reason and rejoin retries', async () => {
    const ch = supabase(gw).channel('secret', { config: { private: true } });
    const { status, error, statuses } = await subscribe(ch);
    expect(status).toBe('CHANNEL_ERROR');
    expect(error?.message).toBe('Unauthorized: You do not have permissions to read from this Channel topic: secret');
    // The client retries the join on its 1 s back-off; allowing it now lets the retry succeed.
    authorizer.read.set('secret', { broadcastRead: true, presenceRead: true });
    await waitFor(() => statuses.some((s) => s.status === 'SUBSCRIBED'), 'a retried join to succeed', 5000);
  });

  it('drops broadcasts silently without write permission (ack times out) and delivers them with it', async () => {
    authorizer.read.set('room-w', { broadcastRead: true, presenceRead: true });
    const listener = supabase(gw).channel('room-w', { config: { private: true } });
    const got: unknown[] = [];
    listener.on('broadcast', { event: '*' }, (p: { payload: unknown }) => got.push(p.payload));
    await joined(listener);
    const publicTwin = supabase(gw).channel('room-w');
    const publicGot: unknown[] = [];
    publicTwin.on('broadcast', { event: '*' }, (p: { payload: unknown }) => publicGot.push(p.payload));
    await joined(publicTwin);

    const writer = supabase(gw, gw.keys.anon, { timeout: 500 }).channel('room-w', { config: { private: true, broadcast: { ack: true } } });
    await joined(writer);
    expect(await writer.send({ type: 'broadcast', event: 'e', payload: { n: 1 } })).toBe('timed out');
    authorizer.write.add('room-w:broadcast');
    const allowed = supabase(gw).channel('room-w', { config: { private: true, broadcast: { ack: true } } });
    await joined(allowed);
    expect(await allowed.send({ type: 'broadcast', event: 'e', payload: { n: 2 } })).toBe('ok');
    await waitFor(() => got.length === 1, 'private delivery');
    expect(got).toEqual([{ n: 2 }]);
    await sleep(100);
    expect(publicGot).toEqual([]); // public and private channels of one name are separate
  });

  it('answers track with error without presence write, and withholds presence without presence read', async () => {
    authorizer.read.set('pres-priv', { broadcastRead: true, presenceRead: false });
    const ch = supabase(gw).channel('pres-priv', { config: { private: true, presence: { key: 'p' } } });
    let syncs = 0;
    ch.on('presence', { event: 'sync' }, () => void syncs++);
    await joined(ch);
    expect(await ch.track({ here: true })).toBe('error');
    authorizer.write.add('pres-priv:presence');
    const other = supabase(gw).channel('pres-priv', { config: { private: true, presence: { key: 'q' } } });
    await joined(other);
    expect(await other.track({ here: true })).toBe('ok');
    await sleep(150);
    expect(syncs).toBe(0); // no presence_state or presence_diff reached a channel without presence read
  });

  it('shuts the channel down when a refreshed token loses read permission', async () => {
    authorizer.read.set('revocable', { broadcastRead: true, presenceRead: true });
    const client = supabase(gw);
    const ch = client.channel('revocable', { config: { private: true } });
    const system: System[] = [];
    ch.on('system', {}, (p: System) => system.push(p));
    const { statuses } = await subscribe(ch);
    expect(statuses[0]!.status).toBe('SUBSCRIBED');
    authorizer.revokedFor.add('banned');
    await client.realtime.setAuth(await gw.userToken('banned'));
    await waitFor(() => statuses.some((s) => s.status === 'CLOSED'), 'closed');
    expect(system.map((s) => s.message)).toEqual(['You no longer have permission to read from this Channel topic: revocable']);
  });

  it('REST: private single sends need write permission (403), private batch messages are skipped without it', async () => {
    authorizer.read.set('rest-priv', { broadcastRead: true, presenceRead: true });
    const listener = supabase(gw).channel('rest-priv', { config: { private: true } });
    const got: unknown[] = [];
    listener.on('broadcast', { event: '*' }, (p: { payload: unknown }) => got.push(p.payload));
    await joined(listener);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${gw.keys.anon}`, apikey: gw.keys.anon };
    let res = await fetch(`${gw.url}/realtime/v1/api/broadcast/rest-priv/events/e?private=true`, { method: 'POST', headers, body: '{"a":1}' });
    expect([res.status, await res.json()]).toEqual([403, { message: 'Unauthorized' }]);
    res = await fetch(`${gw.url}/realtime/v1/api/broadcast`, { method: 'POST', headers, body: JSON.stringify({ messages: [{ topic: 'rest-priv', event: 'e', payload: { b: 1 }, private: true }] }) });
    expect(res.status).toBe(202);
    authorizer.write.add('rest-priv:broadcast');
    res = await fetch(`${gw.url}/realtime/v1/api/broadcast/rest-priv/events/e?private=true`, { method: 'POST', headers, body: '{"a":2}' });
    expect(res.status).toBe(202);
    res = await fetch(`${gw.url}/realtime/v1/api/broadcast`, { method: 'POST', headers, body: JSON.stringify({ messages: [{ topic: 'rest-priv', event: 'e', payload: { b: 2 }, private: true }] }) });
    expect(res.status).toBe(202);
    await waitFor(() => got.length === 2, 'allowed private REST sends');
    await sleep(100);
    expect(got).toEqual([{ a: 2 }, { b: 2 }]);
  });
});

describe('without a database', () => {
  let bare: TestGateway;
  beforeAll(async () => {
    bare = await startRealtimeGateway({}, { modules: modulesWithout('changes') });
  });
  afterAll(() => bare.stop());

  it('answers postgres_changes bindings with a system error and private joins with an error', async () => {
    const ch = supabase(bare).channel('no-db');
    const system: System[] = [];
    ch.on('postgres_changes', { event: '*', schema: 'public', table: 't' }, () => undefined).on('system', {}, (p: System) => system.push(p));
    await joined(ch);
    await waitFor(() => system.length === 1, 'system error');
    expect(system[0]).toMatchObject({ extension: 'postgres_changes', status: 'error', message: 'Realtime was unable to connect to the project database' });
    const { status, error } = await subscribe(supabase(bare).channel('no-db-private', { config: { private: true } }));
    expect(status).toBe('CHANNEL_ERROR');
    expect(error?.message).toBe('UnableToConnectToProject: Realtime was unable to connect to the project database');
  });
});
