// The feature modules a gateway loads, in order. Each one registers its routes,
// upgrade handlers, sweep tasks and shutdown hooks on the Gateway it is given.
import type { GatewayModule } from './gateway.js';
import { registerInfo } from './info.js';
import { registerHealth } from './health.js';
import { registerMonitor } from '../monitor/module.js';

export const gatewayModules: GatewayModule[] = [registerInfo, registerHealth, registerMonitor];
