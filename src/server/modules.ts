// The feature modules a gateway loads, in order. Each one registers its routes,
// upgrade handlers, sweep tasks and shutdown hooks on the Gateway it is given.
import type { GatewayModule } from './gateway.js';
import { registerInfo } from './info.js';
import { registerContent } from '../content/index.js';
import { registerSse } from '../sse/index.js';
import { registerRealtime } from '../realtime/module.js';
import { registerWeb } from '../web/module.js';

// Realtime stays last: it reads `gateway.database`, which the changes module sets.
export const gatewayModules: GatewayModule[] = [registerInfo, registerContent, registerSse, registerWeb, registerRealtime];
