/**
 * Primary discovery (issue 26): `createPool({ hosts })` on a private primary
 * and its streaming replica (this file's own servers): connections go only to
 * the writable server (the standby is skipped though listed first), a replica
 * pool with `prefer-standby` goes to the standby; after the primary is killed
 * and the standby promoted, new connections find the new primary, every failed
 * call meanwhile is typed and retryable; when new connections move to another
 * host, the connections to the old one are dropped, never reused.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDb,
  createPool,
  createUser,
  DatabaseUnavailableError,
  findUserById,
  GuildstoreError,
  InvalidInputError,
  newId,
  runMigrations,
} from '../../src/index.ts'
import { waitFor } from '../support/local-servers.ts'
import { type ReplicatedPair, startReplicatedPair } from '../support/private-replica.ts'

let pair: ReplicatedPair
const pools: pg.Pool[] = []

const at = (port: number) => `127.0.0.1:${port}`
const username = () => `d_${newId().replaceAll('-', '').slice(-12)}`

function pool(hosts: string[], extra: Parameters<typeof createPool>[0] = {}) {
  const made = createPool({
    connectionString: 'postgres://postgres@/postgres',
    hosts,
    max: 4,
    connectionTimeoutMillis: 3000,
    ...extra,
  })
  pools.push(made)
  return made
}

const serverPort = async (p: pg.Pool) =>
  Number((await p.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]?.port)

beforeAll(async () => {
  pair = await startReplicatedPair()
}, 120_000)

afterAll(async () => {
  for (const p of pools) await p.end().catch(() => {})
  await pair?.destroy()
})

describe('createPool({ hosts })', () => {
  it('refuses malformed hosts and targets before connecting', () => {
    for (const hosts of [[], 'x', [42], [''], ['h:0'], ['h:70000'], [{ host: 'h', port: 1.5 }]]) {
      expect(() => createPool({ hosts: hosts as never })).toThrow(InvalidInputError)
    }
    expect(() => createPool({ hosts: ['h'], targetSessionAttrs: 'primary' as never })).toThrow(
      InvalidInputError,
    )
    expect(() =>
      createPool({ connectionString: 'postgres://x@h/db', targetSessionAttrs: 'any' }),
    ).toThrow(InvalidInputError)
  })

  it('connects only to the writable server; a prefer-standby pool to the standby', async () => {
    const primary = pool([at(pair.replica.port), at(pair.primary.port)])
    await runMigrations(primary)
    expect(await serverPort(primary)).toBe(pair.primary.port)
    // several connections at once: every one on the primary
    const ports = await Promise.all(Array.from({ length: 4 }, () => serverPort(primary)))
    expect(new Set(ports)).toEqual(new Set([pair.primary.port]))
    const standby = pool([at(pair.primary.port), at(pair.replica.port)], {
      targetSessionAttrs: 'prefer-standby',
    })
    expect(await serverPort(standby)).toBe(pair.replica.port)
    await pair.waitCaughtUp()
  })

  it('after the primary is killed and the standby promoted, new connections find the new primary; then connections to a host it moved away from are never reused', async () => {
    const p = pool([at(pair.primary.port), at(pair.replica.port)])
    const db = createDb(p)
    const before = await createUser(db, { username: username() })
    expect(await serverPort(p)).toBe(pair.primary.port)
    await pair.waitCaughtUp()

    // failover: the primary dies (immediate stop), the standby is promoted
    const killedAt = Date.now()
    await pair.primary.stop('immediate')
    await pair.query(pair.replica, 'SELECT pg_promote(true, 30)')
    const failures: unknown[] = []
    let written: { id: string } | undefined
    await waitFor(
      async () => {
        try {
          written = await createUser(db, { username: username() })
          return true
        } catch (error) {
          failures.push(error)
          return false
        }
      },
      30_000,
      50,
    )
    const unavailableMs = Date.now() - killedAt
    for (const error of failures) {
      expect(error).toBeInstanceOf(GuildstoreError)
      expect(error, String(error)).toBeInstanceOf(DatabaseUnavailableError)
      expect((error as DatabaseUnavailableError).retryable).toBe(true)
    }
    expect(await serverPort(p)).toBe(pair.replica.port)
    // the write before the failover was replicated; the one after is on the new primary
    expect((await findUserById(db, before.id))?.id).toBe(before.id)
    expect((await findUserById(db, written!.id))?.id).toBe(written!.id)
    console.info(
      `failover: writable again ${unavailableMs} ms after the kill, ${failures.length} failed calls`,
    )

    // The old primary comes back writable (a split brain, kept off by the
    // operator's fencing in real life). New connections stay with the current
    // host; when that one turns read-only they move, and the pool drops every
    // connection to the host they left: none is reused.
    await pair.primary.start()
    const held = await Promise.all(Array.from({ length: 3 }, () => p.connect()))
    for (const c of held) expect(await serverPort(c as unknown as pg.Pool)).toBe(pair.replica.port)
    held.at(-1)?.release() // one idle, two busy
    await pair.query(pair.replica, 'ALTER SYSTEM SET default_transaction_read_only = on')
    await pair.query(pair.replica, 'SELECT pg_reload_conf()')
    const fresh = await Promise.all([p.connect(), p.connect()]) // one idle reused, one new → probes
    const freshPorts = await Promise.all(fresh.map((c) => serverPort(c as unknown as pg.Pool)))
    expect(freshPorts).toContain(pair.primary.port)
    for (const c of [...fresh, ...held.slice(0, 2)]) c.release()
    // from now on every connection of the pool is on the host it moved to
    for (let i = 0; i < 12; i++) expect(await serverPort(p)).toBe(pair.primary.port)
    const ports = await Promise.all(Array.from({ length: 4 }, () => serverPort(p)))
    expect(new Set(ports)).toEqual(new Set([pair.primary.port]))
    await pair.query(pair.replica, 'ALTER SYSTEM RESET default_transaction_read_only')
    await pair.query(pair.replica, 'SELECT pg_reload_conf()')
  }, 120_000)
})
