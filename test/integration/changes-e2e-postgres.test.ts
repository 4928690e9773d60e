// supabase-js end to end on the machine's PostgreSQL: see changes-e2e-suite.ts.
import { describe } from 'vitest';
import { changeFeedE2ESuite } from './changes-e2e-suite.js';

describe('postgres_changes end to end on postgres', () => changeFeedE2ESuite('postgres'));
