import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests start daemons, shims and containers: one file at a time keeps them from competing on 2 cores.
    fileParallelism: false,
  },
});
