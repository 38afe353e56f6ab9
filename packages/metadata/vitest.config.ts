import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Test files start real plugin processes; two cores are enough for two at a time.
    maxWorkers: 2,
  },
});
