/**
 * Runs the whole interleaving matrix of test/races/revocations.test.ts (every
 * revocation × writer × isolation level × order), split into shards that run
 * side by side, and prints each shard's summary line. CI runs a seeded sample
 * of the same matrix; run this before resolving a change to the rules.
 *
 *   node scripts/race-matrix.ts             # 2 shards
 *   node scripts/race-matrix.ts --shards 3  # more, on a server with connections to spare
 *   GUILDSTORE_RACE_BEFORE=0008 node scripts/race-matrix.ts   # against the 0.2 triggers
 *
 * Exit code 0 when every shard held, 1 otherwise.
 */
import { spawn } from 'node:child_process'

const at = process.argv.indexOf('--shards')
const shards = at > 0 ? Number(process.argv[at + 1]) : 2
if (!Number.isInteger(shards) || shards < 1) {
  console.error('usage: node scripts/race-matrix.ts [--shards N]')
  process.exit(2)
}

const runs = Array.from({ length: shards }, (_, i) => {
  return new Promise<number>((resolve) => {
    const child = spawn('npx', ['vitest', 'run', 'test/races/revocations.test.ts'], {
      env: {
        ...process.env,
        GUILDSTORE_RACE_FULL: '1',
        GUILDSTORE_RACE_SHARD: `${i}/${shards}`,
        GUILDSTORE_TEST_WORKERS: '1',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.on('close', (code) => {
      const summary = out.split('\n').filter((l) => l.includes('[races]') || l.includes(' × '))
      console.log(`shard ${i}/${shards} (exit ${code}):\n${summary.join('\n')}`)
      resolve(code ?? 1)
    })
  })
})
const codes = await Promise.all(runs)
process.exit(codes.every((c) => c === 0) ? 0 : 1)
