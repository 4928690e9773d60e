// The collaboration helper with the real @supabase/supabase-js against the gateway (its
// embedded PGlite database): presence and comments in a project room — stored comments
// through the comments API and postgres_changes, or broadcast comments — and the seed's
// "WebSocket fallback for Supabase issues": behind a proxy that refuses WebSocket
// upgrades the room degrades (comments still flow both ways over HTTP: posted with the
// API, read by polling; presence and receiving broadcasts are reported unavailable), and
// it comes back to realtime, present again, once the WebSocket gets through.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CollaborationRoom, createGatewayClient, type CollaborationMode, type ProjectComment } from '../../src/client/collaboration.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../sse/helpers.js';
import { startBufferingProxy } from './helpers.js';

let gw: TestGateway;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  gw = await startGateway({ realtimeConnectErrorBackoffMs: 0, realtimeChannelErrorBackoffMs: 0 }, { sweepMs: 50 });
});
afterAll(() => gw.stop());
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Member {
  room: CollaborationRoom;
  comments: ProjectComment[];
  modes: CollaborationMode[];
  presence: () => string[];
}

async function join(user: string, projectId: string, url = gw.url, degradeAfterMs = 8000, comments: 'auto' | 'broadcast' = 'auto'): Promise<Member> {
  const token = await gw.userToken(user);
  const supabase = createGatewayClient({ url, anonKey: gw.keys.anon, accessToken: () => token, transport: WebSocket, realtime: { reconnectAfterMs: () => 200, timeout: 3000 } });
  const room = await CollaborationRoom.open({ supabase, url, token: () => token, projectId, presence: { key: user, meta: { user } }, degradeAfterMs, pollMs: 300, comments });
  const member: Member = { room, comments: [], modes: [], presence: () => room.members().map((m) => m.key).sort() };
  room.on('comment', (c) => void member.comments.push(c));
  room.on('mode', ({ mode }) => void member.modes.push(mode));
  cleanups.push(async () => {
    await room.close();
    await supabase.removeAllChannels();
  });
  return member;
}

const project = (): string => `p-${Math.random().toString(36).slice(2, 8)}`;

describe('project room over Supabase Realtime', () => {
  it('shows who is present and delivers stored comments to everyone through postgres_changes', async () => {
    const id = project();
    const alice = await join('alice', id);
    const bob = await join('bob', id);
    expect(alice.room.commentsVia).toBe('database');
    await waitFor(() => alice.room.mode === 'realtime' && bob.room.mode === 'realtime', 'both rooms joined', 20_000);
    await waitFor(() => alice.presence().join() === 'alice,bob' && bob.presence().join() === 'alice,bob', 'presence of both');
    const posted = await bob.room.sendComment('hello from bob');
    await waitFor(() => alice.comments.length === 1 && bob.comments.length === 1, 'the comment at both');
    expect(alice.comments[0]).toMatchObject({ id: posted.id, body: 'hello from bob', user_id: 'bob', project_id: id });
    expect(alice.room.degraded).toEqual([]);
    // A late joiner gets the stored history.
    const dave = await join('dave', id);
    expect(dave.room.list().map((c) => c.body)).toEqual(['hello from bob']);
  });

  it('uses broadcasts for comments when asked to (or when the gateway has no comments API)', async () => {
    const id = project();
    const alice = await join('alice', id, gw.url, 8000, 'broadcast');
    const bob = await join('bob', id, gw.url, 8000, 'broadcast');
    expect(alice.room.commentsVia).toBe('broadcast');
    await waitFor(() => alice.room.mode === 'realtime' && bob.room.mode === 'realtime', 'both rooms joined');
    await bob.room.sendComment('broadcast hello', 'bob');
    await waitFor(() => alice.comments.length === 1 && bob.comments.length === 1, 'the comment at both');
    expect(alice.comments[0]).toMatchObject({ body: 'broadcast hello', user_id: 'bob', project_id: id });
  });

  it('degrades to HTTP when the WebSocket is blocked, and returns to realtime when it gets through', async () => {
    const id = project();
    const proxy = await startBufferingProxy(gw.url, false, false);
    cleanups.push(() => proxy.close());
    const alice = await join('alice', id);
    const carol = await join('carol', id, proxy.url, 1500);
    await waitFor(() => carol.room.mode === 'degraded', 'carol degraded', 10_000);
    expect(carol.room.degraded).toEqual(['presence', 'broadcast']);
    expect(carol.room.members()).toEqual([]);
    await waitFor(() => alice.room.mode === 'realtime', 'alice joined', 20_000);
    expect(alice.presence()).toEqual(['alice']);

    // Comments flow both ways while carol is degraded: hers are posted with the API and
    // reach alice through postgres_changes; alice's reach carol by polling.
    await carol.room.sendComment('sent while degraded');
    await waitFor(() => alice.comments.length === 1, 'alice gets the degraded comment');
    expect(alice.comments[0]).toMatchObject({ body: 'sent while degraded', user_id: 'carol' });
    await alice.room.sendComment('polled by carol');
    await waitFor(() => carol.comments.map((c) => c.body).join('|') === 'sent while degraded|polled by carol', 'carol polls alice\'s comment');

    // A broadcast from degraded carol goes out over REST; alice, connected, receives it.
    const heard: unknown[] = [];
    alice.room.on('broadcast', (b) => void heard.push(b));
    await carol.room.broadcast('cursor', { x: 1 });
    await waitFor(() => heard.length === 1, 'the REST broadcast');
    expect(heard[0]).toEqual({ event: 'cursor', payload: { x: 1 } });

    // The WebSocket gets through again: carol is back, present, and hears alice live.
    proxy.websockets = true;
    await waitFor(() => carol.room.mode === 'realtime', 'carol back to realtime', 20_000);
    await waitFor(() => alice.presence().join() === 'alice,carol' && carol.presence().join() === 'alice,carol', 'presence of both', 10_000);
    await alice.room.sendComment('welcome back');
    await waitFor(() => carol.comments.length === 3, 'carol hears alice');
    expect(carol.modes).toEqual(['degraded', 'realtime']);
    expect(carol.comments.map((c) => c.body)).toEqual(['sent while degraded', 'polled by carol', 'welcome back']);

    // The WebSocket breaks mid-session: degraded again after the grace period, and gone from presence.
    proxy.websockets = false;
    proxy.cutWebSockets();
    await waitFor(() => carol.room.mode === 'degraded', 'carol degraded again', 15_000);
    await waitFor(() => alice.presence().join() === 'alice', 'carol gone from presence', 70_000);
  }, 120_000);
});
