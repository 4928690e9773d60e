// Optional sharing of one (user, content) stream: a user's tabs on one item share one
// hub subscription; each still resumes on its own and is freed on its own.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { openClient, rawGet, seqs, waitFor } from './helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ sseShareStreams: 'on' });
});
afterAll(() => gw.stop());

it('gives a user’s streams of one item a single hub subscription, each with its own resume point', async () => {
  const alice = await gw.userToken('alice');
  const { progress } = gw.gateway.service('content');
  const id = progress.create('alice').id;
  const topic = `content:${id}`;
  const first = await progress.publish(id, 'progress', { progress: 10 });

  const tab1 = openClient(`${gw.url}/api/content/${id}/progress`, alice);
  const tab2 = openClient(`${gw.url}/api/content/${id}/progress?from=now`, alice);
  const tab3 = await rawGet(`${gw.url}/api/content/${id}/progress`, { authorization: `Bearer ${alice}`, 'last-event-id': `${first.epoch}:1` });
  const service = openClient(`${gw.url}/api/content/${id}/progress`, gw.keys.service_role);
  await waitFor(() => [tab1, tab2, service].every((c) => c.of('ready').length === 1) && tab3.text().includes('event: ready'), 'all streams ready');

  // Four sockets, two subscriptions: alice's group and service_role's.
  expect(gw.gateway.connections.count('sse')).toBe(4);
  expect(gw.gateway.hub.subscriberCount(topic)).toBe(2);

  await progress.publish(id, 'progress', { progress: 20 });
  await waitFor(() => tab1.of('progress').length === 2 && tab2.of('progress').length === 1 && service.of('progress').length === 2, 'the live event on every stream');
  expect(seqs(tab1.of('progress'))).toEqual([1, 2]);
  expect(seqs(tab2.of('progress'))).toEqual([2]);
  expect(tab1.of('progress')[1]!.id).toBe(tab2.of('progress')[0]!.id);

  tab2.close();
  await waitFor(() => gw.gateway.connections.count('sse') === 3, 'the closed tab to be freed');
  expect(gw.gateway.hub.subscriberCount(topic)).toBe(2);
  tab3.destroy();
  await waitFor(() => gw.gateway.connections.count('sse') === 2, 'the raw tab to be freed');

  await progress.publish(id, 'complete', {});
  await waitFor(() => tab1.es.readyState === tab1.es.CLOSED && service.es.readyState === service.es.CLOSED, 'every stream to end after complete');
  expect(tab1.of('complete')).toHaveLength(1);
  await waitFor(() => gw.gateway.connections.size === 0, 'all connections freed');
  expect(gw.gateway.hub.subscriberCount(topic)).toBe(0);
  const raw = tab3.frames().filter((f) => f.fields.event === 'progress');
  expect(raw.map((f) => JSON.parse(f.fields.data!).seq)).toEqual([2]);
  tab1.close();
  service.close();
});
