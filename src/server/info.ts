// `GET /`: what this gateway is and where its endpoints are, for a person with curl.
import { defineModule } from './services.js';
import { sendJson } from './http-errors.js';

export const infoModule = defineModule({
  name: 'info',
  needs: ['router'],
  start: ({ router }) =>
    router.on('GET', '/', ({ res }) =>
    sendJson(res, 200, {
      name: 'fanout',
      description: 'real-time gateway: SSE progress streams and the Supabase Realtime protocol',
      endpoints: {
        progress: '/api/content/:contentId/progress',
        userProgress: '/api/content/progress?userId=',
        multiTopic: '/v1/stream?topic=',
        poll: '/api/content/:contentId/progress/poll?after=&wait=',
        multiTopicPoll: '/v1/poll?topic=&after=&wait=',
        realtime: '/realtime/v1/websocket',
        clientLibrary: '/client/fanout-client.js',
        demo: '/demo',
      },
    }),
  ),
});
