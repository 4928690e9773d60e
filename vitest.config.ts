import { defineConfig } from 'vitest/config';

// Integration tests start real gateways, databases and browsers: give them room,
// and run files in separate forks so a leak check in one file cannot see another's sockets.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
