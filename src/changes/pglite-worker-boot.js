// Worker-thread entry for the embedded database: loads tsx (workers do not inherit the
// main thread's module hooks), then the TypeScript worker itself.
import { register } from 'tsx/esm/api';

register();
await import('./pglite-worker.ts');
