// supabase-js end to end on the embedded PGlite database: see changes-e2e-suite.ts.
import { describe } from 'vitest';
import { changeFeedE2ESuite } from './changes-e2e-suite.js';

describe('postgres_changes end to end on pglite', () => changeFeedE2ESuite('pglite'));
