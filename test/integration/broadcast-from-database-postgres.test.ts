// Broadcast from the database on the machine's PostgreSQL: see broadcast-from-database-suite.ts.
import { describe } from 'vitest';
import { broadcastFromDatabaseSuite } from './broadcast-from-database-suite.js';

describe('broadcast from the database on postgres', () => broadcastFromDatabaseSuite('postgres'));
