import './scripts/require-node.mjs'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'

// scripts/peer-matrix.ts: GUILDSTORE_PEER_PG is the directory of another pg
// (e.g. the oldest of the peer range, installed in a temporary prefix) that
// `import pg from 'pg'` loads instead of the project's own.
const peerPg = process.env.GUILDSTORE_PEER_PG

export default defineConfig({
  resolve: peerPg
    ? {
        alias: [
          { find: /^pg$/, replacement: join(peerPg, 'lib/index.js') },
          { find: /^pg\/package\.json$/, replacement: join(peerPg, 'package.json') },
        ],
      }
    : {},
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
