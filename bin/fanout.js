#!/usr/bin/env node
// Entry point for `npx fanout`. The sources are TypeScript run through tsx's loader,
// so what runs is always what is checked in: there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
