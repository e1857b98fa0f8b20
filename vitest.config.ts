import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each e2e file starts its own server with its own embedded store; two cores run two at a time.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
