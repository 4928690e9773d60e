// The feature modules a gateway loads, in order. Each one registers its routes,
// upgrade handlers, sweep tasks and shutdown hooks on the Gateway it is given.
import type { GatewayModule } from './gateway.js';
import { registerInfo } from './info.js';
import { contentOf, registerContent } from '../content/index.js';
import { registerSse } from '../sse/index.js';
import { registerChanges } from '../changes/module.js';
import { registerRealtime } from '../realtime/module.js';
import { registerHealth } from './health.js';
import { registerMonitor } from '../monitor/module.js';
import { registerWeb } from '../web/module.js';
import { registerOpenApi } from './openapi.js';

/** SSE streams read the content module's items; sse/ and content/ do not import each other, so they meet here. */
const registerContentStreams: GatewayModule = (gateway) => registerSse(gateway, contentOf(gateway).registry);

// registerChanges sets gateway.database; Realtime stays last because it reads it.
export const gatewayModules: GatewayModule[] = [registerInfo, registerOpenApi, registerContent, registerContentStreams, registerChanges, registerHealth, registerMonitor, registerWeb, registerRealtime];
