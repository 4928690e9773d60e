// Real traffic for the monitor tests: SSE progress streams with the `eventsource` client,
// long-polls, progress published over HTTP, and Realtime channels with the unmodified
// supabase-js client (presence and broadcast) — the endpoints users call.
import { EventSource } from 'eventsource';
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import type { TestGateway } from '../helpers/gateway.js';
import { waitFor } from './helpers.js';

/** Creates a content item owned by `userId` whose progress the test publishes (no simulator). */
export async function createContent(gw: TestGateway, userId: string): Promise<string> {
  const res = await fetch(`${gw.url}/api/content`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.keys.service_role}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId, simulate: false }),
  });
  if (res.status !== 201) throw new Error(`POST /api/content answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { contentId: string }).contentId;
}

/** Publishes one progress event as a backend would (service_role). */
export async function publishProgress(gw: TestGateway, contentId: string, progress: number): Promise<void> {
  const res = await fetch(`${gw.url}/api/content/${contentId}/progress`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.keys.service_role}`, 'content-type': 'application/json' },
    body: JSON.stringify({ progress, stage: 'writing' }),
  });
  if (res.status !== 200) throw new Error(`POST progress answered ${res.status}: ${await res.text()}`);
}

export interface ProgressStream {
  received: number;
  close(): void;
}

/** A browser-style EventSource on one content item's progress, with the user's token in a header. */
export async function openProgressStream(gw: TestGateway, contentId: string, token: string): Promise<ProgressStream> {
  const es = new EventSource(`${gw.url}/api/content/${contentId}/progress`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}` } }),
  });
  const stream: ProgressStream = { received: 0, close: () => es.close() };
  es.addEventListener('progress', () => void stream.received++);
  await new Promise<void>((resolve, reject) => {
    es.addEventListener('open', () => resolve(), { once: true });
    es.addEventListener('error', () => reject(new Error('progress stream failed to open')), { once: true });
  });
  return stream;
}

/** A long-poll waiting for the next event after the current position (aborted by `close`). */
export function openLongPoll(gw: TestGateway, contentId: string, token: string): { close(): void; done: Promise<number | undefined> } {
  const controller = new AbortController();
  const done = fetch(`${gw.url}/api/content/${contentId}/progress/poll?wait=30`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal }).then(
    (r) => r.status,
    () => undefined,
  );
  return { close: () => controller.abort(), done };
}

export interface RealtimeMember {
  client: SupabaseClient;
  channel: RealtimeChannel;
  broadcasts: number;
}

/** An unmodified supabase-js client joined to `room` with presence tracked. */
export async function joinRoom(gw: TestGateway, room: string, user: string): Promise<RealtimeMember> {
  const client = createClient(gw.url, gw.keys.anon, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket as never } as never,
  });
  const channel = client.channel(room, { config: { presence: { key: user } } });
  const member: RealtimeMember = { client, channel, broadcasts: 0 };
  channel.on('broadcast', { event: 'cursor' }, () => void member.broadcasts++);
  await new Promise<void>((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else reject(new Error(`join ${room}: ${status} ${err?.message ?? ''}`));
    });
  });
  await channel.track({ user });
  return member;
}

export async function leaveRoom(member: RealtimeMember): Promise<void> {
  await member.client.removeAllChannels();
  await member.client.realtime.disconnect();
}

export { waitFor };

/** The seed's pattern: a supabase-js channel on a project with postgres_changes on its comments; counts what arrives. */
export async function watchComments(gw: TestGateway, projectId: string): Promise<{ member: RealtimeMember; changes: () => number }> {
  const client = createClient(gw.url, gw.keys.anon, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket as never } as never,
  });
  let changes = 0;
  const channel = client
    .channel(`project:${projectId}`)
    .on('postgres_changes', { event: '*', schema: 'public', table: 'project_comments', filter: `project_id=eq.${projectId}` }, () => void changes++);
  await new Promise<void>((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else reject(new Error(`join project:${projectId}: ${status} ${err?.message ?? ''}`));
    });
  });
  return { member: { client, channel, broadcasts: 0 }, changes: () => changes };
}

/** Adds a comment through the gateway's comments API as `token`'s user. */
export async function postComment(gw: TestGateway, projectId: string, token: string, body: string): Promise<void> {
  const res = await fetch(`${gw.url}/api/projects/${projectId}/comments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ body }),
  });
  if (res.status !== 201) throw new Error(`POST comment answered ${res.status}: ${await res.text()}`);
}
