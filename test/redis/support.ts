import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { inject } from 'vitest'
import '../support/env.ts'

/** The Redis URL of the test run: the global setup's, else TEST_REDIS_URL, else the local default. */
export function redisUrl(): string {
  let provided: string | undefined
  try {
    provided = inject('redisUrl')
  } catch {
    provided = undefined
  }
  return provided || process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379'
}

/** A random namespace for one test file, so its keys never meet another file's. */
export function testNamespace(label: string): string {
  return `gs_test_${label}_${randomBytes(6).toString('hex')}`
}

/** Every key under `namespace` (SCAN, never KEYS). */
export async function namespaceKeys(redis: Redis, namespace: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** Deletes every key under `namespace` and nothing else. */
export async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  const keys = await namespaceKeys(redis, namespace)
  if (keys.length > 0) await redis.del(...keys)
}

export { freePort, type OwnRedisServer, ownRedisServer, waitFor } from '../support/local-servers.ts'
