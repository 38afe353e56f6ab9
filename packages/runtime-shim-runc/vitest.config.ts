import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests share runc roots and mounts per file; run files one after another.
    fileParallelism: false,
  },
});
