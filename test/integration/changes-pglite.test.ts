// The change feed on the embedded PGlite database: see changes-suite.ts.
import { describe } from 'vitest';
import { changeFeedSuite } from './changes-suite.js';

describe('change feed on pglite', () => changeFeedSuite('pglite'));
