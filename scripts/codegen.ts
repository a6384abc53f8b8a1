/**
 * Regenerates `codegen/db.ts` (the Kysely table types) from the migrations:
 * migrates a scratch database, runs kysely-codegen against it, drops it.
 *
 *   node scripts/codegen.ts          # write codegen/db.ts
 *   node scripts/codegen.ts --check  # fail when codegen/db.ts is stale (CI)
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createScratchDatabase } from './scratch-database.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const check = process.argv.includes('--check')

/** The kysely-codegen flags; the output must match the pool's parsers (int8 → bigint). */
export const codegenArgs = [
  '--dialect',
  'postgres',
  '--out-file',
  'codegen/db.ts',
  '--type-mapping',
  JSON.stringify({ int8: 'bigint' }),
  '--overrides',
  JSON.stringify({
    columns: {
      'messages.search': 'ColumnType<string, never, never>',
      // Set by the messages_seq trigger (migration 0003) when an INSERT leaves it out.
      'messages.seq': 'Generated<bigint>',
    },
  }),
  '--exclude-pattern',
  'guildstore_migrations',
  '--log-level',
  'warn',
]

const scratch = await createScratchDatabase()
try {
  const result = spawnSync(
    `${root}node_modules/.bin/kysely-codegen`,
    [...codegenArgs, '--url', scratch.url, ...(check ? ['--verify'] : [])],
    { cwd: root, stdio: 'inherit' },
  )
  if (result.status !== 0) {
    console.error(
      check
        ? 'codegen/db.ts is stale: run `npm run codegen` and commit the result.'
        : 'kysely-codegen failed.',
    )
    process.exitCode = result.status ?? 1
  }
} finally {
  await scratch.drop()
}
