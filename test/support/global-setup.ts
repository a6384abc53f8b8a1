import type { TestProject } from 'vitest/node'
import { ensureTemplateDatabase } from '../../src/testing/index.ts'
import { resolveTestServers } from './servers.ts'

/**
 * Once per test run: find PostgreSQL and Redis (env URLs, else testcontainers,
 * else a message that says how to fix it) and build the migrated template
 * database every test file clones.
 */
export default async function setup(project: TestProject) {
  const servers = await resolveTestServers()
  const started = Date.now()
  const template = await ensureTemplateDatabase({ url: servers.databaseUrl })
  if (process.env.GUILDSTORE_TEST_VERBOSE) {
    console.error(`template ${template} ready in ${Date.now() - started} ms (${servers.source})`)
  }
  project.provide('databaseUrl', servers.databaseUrl)
  project.provide('redisUrl', servers.redisUrl)
  project.provide('templateDatabase', template)
  return async () => {
    await servers.stop()
  }
}
