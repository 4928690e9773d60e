// Broadcast from the database on the embedded PGlite database: see broadcast-from-database-suite.ts.
import { describe } from 'vitest';
import { broadcastFromDatabaseSuite } from './broadcast-from-database-suite.js';

describe('broadcast from the database on pglite', () => broadcastFromDatabaseSuite('pglite'));
