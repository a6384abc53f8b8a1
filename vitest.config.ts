import './scripts/require-node.mjs'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Test files in parallel. Each holds a pool of up to 30 connections, so 4
    // need a server with max_connections well above 100 (.ci/run sets
    // GUILDSTORE_TEST_WORKERS=2 on a server with fewer than 200).
    maxWorkers: Number(process.env.GUILDSTORE_TEST_WORKERS) || 4,
    // Every test file works in its own cloned database and its own Redis key
    // prefix, so files run in parallel; tests inside a file run in order.
    sequence: { concurrent: false },
  },
})
