import type { TestProject } from 'vitest/node'
import { ensureTemplateDatabase } from '../../src/testing/index.ts'
import { resolveTestServers, TestServersUnavailableError } from './servers.ts'

/**
 * Once per test run: find PostgreSQL and Redis (env URLs, else the local
 * default ports, else testcontainers, else a message that says how to fix it)
 * and build the migrated template database every test file clones.
 */
export default async function setup(project: TestProject) {
  let servers: Awaited<ReturnType<typeof resolveTestServers>>
  try {
    servers = await resolveTestServers()
  } catch (error) {
    if (!(error instanceof TestServersUnavailableError)) throw error
    // Only the explanation: no stack, no "No test files found" from the runner.
    process.stderr.write(`\n${error.message}\n`)
    process.exit(1)
  }
  if (servers.source !== 'env') {
    console.error(
      `guildstore tests: PostgreSQL at ${redact(servers.databaseUrl)}, Redis at ${redact(servers.redisUrl)} (${servers.source})`,
    )
  }
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

const redact = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
