// The collaboration helper with the real @supabase/supabase-js against the gateway:
// presence and comments in a project room, and the seed's "WebSocket fallback for
// Supabase issues" — behind a proxy that refuses WebSocket upgrades the room degrades
// (comments still go out over REST and everyone connected gets them; presence and
// receiving broadcasts are reported unavailable), and it comes back to realtime, present
// again, once the WebSocket gets through.
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

async function join(user: string, projectId: string, url = gw.url, degradeAfterMs = 8000): Promise<Member> {
  const token = await gw.userToken(user);
  const supabase = createGatewayClient({ url, anonKey: gw.keys.anon, accessToken: () => token, transport: WebSocket, realtime: { reconnectAfterMs: () => 200, timeout: 3000 } });
  const room = await CollaborationRoom.open({ supabase, url, token: () => token, projectId, presence: { key: user, meta: { user } }, degradeAfterMs });
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
  it('shows who is present and delivers comments to everyone (broadcast comments on a gateway without a comments API)', async () => {
    const id = project();
    const alice = await join('alice', id);
    const bob = await join('bob', id);
    expect(alice.room.commentsVia).toBe('broadcast');
    await waitFor(() => alice.room.mode === 'realtime' && bob.room.mode === 'realtime', 'both rooms joined');
    await waitFor(() => alice.presence().join() === 'alice,bob' && bob.presence().join() === 'alice,bob', 'presence of both');
    await bob.room.sendComment('hello from bob', 'bob');
    await waitFor(() => alice.comments.length === 1 && bob.comments.length === 1, 'the comment at both');
    expect(alice.comments[0]).toMatchObject({ body: 'hello from bob', user_id: 'bob', project_id: id });
    expect(alice.room.degraded).toEqual([]);
  });

  it('degrades to REST when the WebSocket is blocked, and returns to realtime when it gets through', async () => {
    const id = project();
    const proxy = await startBufferingProxy(gw.url, false, false);
    cleanups.push(() => proxy.close());
    const alice = await join('alice', id);
    const carol = await join('carol', id, proxy.url, 1500);
    await waitFor(() => carol.room.mode === 'degraded', 'carol degraded', 10_000);
    expect(carol.room.degraded).toEqual(['presence', 'broadcast', 'live-comments']);
    expect(carol.room.members()).toEqual([]);
    await waitFor(() => alice.room.mode === 'realtime', 'alice joined');
    expect(alice.presence()).toEqual(['alice']);

    // Carol's comment goes out over the REST broadcast endpoint; alice, connected, receives it.
    await carol.room.sendComment('sent while degraded', 'carol');
    await waitFor(() => alice.comments.length === 1, 'alice gets the degraded comment');
    expect(alice.comments[0]).toMatchObject({ body: 'sent while degraded', user_id: 'carol' });
    expect(carol.comments.map((c) => c.body)).toEqual(['sent while degraded']);

    // The WebSocket gets through again: carol is back, present, and hears alice.
    proxy.websockets = true;
    await waitFor(() => carol.room.mode === 'realtime', 'carol back to realtime', 20_000);
    await waitFor(() => alice.presence().join() === 'alice,carol' && carol.presence().join() === 'alice,carol', 'presence of both', 10_000);
    await alice.room.sendComment('welcome back', 'alice');
    await waitFor(() => carol.comments.length === 2, 'carol hears alice');
    expect(carol.modes).toEqual(['degraded', 'realtime']);

    // The WebSocket breaks mid-session: degraded again after the grace period.
    proxy.websockets = false;
    proxy.cutWebSockets();
    await waitFor(() => carol.room.mode === 'degraded', 'carol degraded again', 15_000);
    await waitFor(() => alice.presence().join() === 'alice', 'carol gone from presence', 70_000);
  }, 120_000);
});
