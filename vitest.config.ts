import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Guest boots and package builds are slow under TCG on 2 cores; suites set their own timeouts.
    testTimeout: 120_000,
    hookTimeout: 1_200_000,
    // Suites share kernel and package caches; run files one after another to keep the 2 cores for builds.
    fileParallelism: false,
  },
});
