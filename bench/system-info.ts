/** The machine and software versions the results were measured on. */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import type pg from 'pg'

export interface SystemInfo {
  cpus: number
  cpuModel: string
  memoryGiB: string
  os: string
  node: string
  postgres: string
  postgresSettings: Record<string, string>
  redis: string
  packages: Record<string, string>
}

const require = createRequire(import.meta.url)

function version(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version
  } catch {
    return 'n/a'
  }
}

export async function systemInfo(pool: pg.Pool): Promise<SystemInfo> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '')
  const cpuModel = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown'
  const pgVersion = (await pool.query<{ v: string }>('select version() as v')).rows[0]!.v
  const settings: Record<string, string> = {}
  for (const s of [
    'shared_buffers',
    'work_mem',
    'effective_cache_size',
    'random_page_cost',
    'jit',
    'synchronous_commit',
    'plan_cache_mode',
  ]) {
    settings[s] = (await pool.query(`show ${s}`)).rows[0][s]
  }
  let redis = 'n/a'
  try {
    const { Redis } = await import('ioredis')
    const r = new Redis(
      process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
      },
    )
    await r.connect()
    const info = await r.info('server')
    redis = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
    r.disconnect()
  } catch {
    // no Redis reachable
  }
  const root = require('../package.json') as { name: string; version: string }
  return {
    cpus: os.availableParallelism(),
    cpuModel,
    memoryGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: pgVersion,
    postgresSettings: settings,
    redis,
    packages: {
      [root.name]: root.version,
      kysely: version('kysely'),
      pg: version('pg'),
      'drizzle-orm': version('drizzle-orm'),
      ioredis: version('ioredis'),
    },
  }
}
