// The feature modules a gateway starts, in order. Each declares the services it needs and
// provides (server/services.ts); composition.ts checks the list fits together before the
// first one starts, so reordering it wrongly fails start-up with the two modules' names.
import { defineModule, type FeatureModule } from './services.js';
import { infoModule } from './info.js';
import { openApiModule } from './openapi.js';
import { healthModule } from './health.js';
import { contentModule } from '../content/index.js';
import { sseModule } from '../sse/index.js';
import { changesModule } from '../changes/module.js';
import { realtimeModule } from '../realtime/module.js';
import { monitorModule } from '../monitor/module.js';
import { webModule } from '../web/module.js';

/**
 * SSE streams read content items (ownership for authorization, the latest state for a
 * reset); content/ and sse/ do not import each other, so the content registry is handed
 * to SSE as its `contentItems` here.
 */
export const contentItemsModule: FeatureModule = defineModule({
  name: 'content-items',
  needs: ['content'],
  provides: ['contentItems'],
  start: ({ content }) => ({ contentItems: content.registry }),
});

export const gatewayModules: readonly FeatureModule[] = [
  infoModule,
  openApiModule,
  contentModule,
  contentItemsModule,
  sseModule,
  changesModule,
  healthModule,
  monitorModule,
  webModule,
  realtimeModule,
];
