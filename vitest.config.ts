import './scripts/require-node.mjs'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 4,
    // Every test file works in its own cloned database and its own Redis key
    // prefix, so files run in parallel; tests inside a file run in order.
    sequence: { concurrent: false },
  },
})
