import pg from 'pg'
import { DatabaseUnavailableError } from '../errors/database-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { TIMESTAMPTZ_OID, timestamptzParserFor } from './timestamptz-parser.ts'

const INT8_OID = 20

/** The connection error of a checked-out client: its query reports it; see {@link createPool}. */
const ignoreCheckedOutClientError = (): void => {}

/** Options of {@link createPool}: every `pg.PoolConfig` field, plus an idle-error hook and the schema. */
export interface PoolOptions extends pg.PoolConfig {
  /**
   * Called when an idle pooled connection fails (server restart, network cut,
   * `pg_terminate_backend`). The pool drops that connection and makes a new one
   * when next needed; the host process never crashes on it. Default: ignore.
   */
  onIdleError?: ((error: Error) => void) | undefined
  /**
   * The PostgreSQL schema guildstore's tables, types and functions live in (see
   * `docs/host-database.md`). Every connection of the pool starts with
   * `search_path` set to it, so guildstore's unqualified statements resolve there.
   * A lowercase identifier: `[a-z_][a-z0-9_]*`, at most 63 characters, not `pg_…`.
   * Default: the server's own `search_path` (`public` for a 0.1.0 database).
   */
  schema?: string | undefined
  /**
   * Several servers of one cluster (a primary and its standbys), as
   * `'host:port'` strings or `{ host, port }`; `host`/`port` of the rest of
   * the options are ignored then. Each new connection goes to the first of
   * them that matches `targetSessionAttrs` — the one that matched last is tried
   * first — so after a failover new connections find the new primary. See
   * docs/scaling.md, "Failover".
   */
  hosts?: ReadonlyArray<string | { host: string; port?: number | undefined }> | undefined
  /**
   * With `hosts`, which server a connection may use (libpq's
   * `target_session_attrs`, which `pg` lacks; checked with
   * `pg_is_in_recovery()` and `transaction_read_only` on connect):
   * `'read-write'` (default) only a writable primary; `'prefer-standby'` a
   * standby when one answers, else a primary (for a replica pool); `'any'` the
   * first that answers.
   */
  targetSessionAttrs?: 'read-write' | 'prefer-standby' | 'any' | undefined
}

/** int8 in text form → `bigint`. */
const parseInt8 = (value: string): bigint => BigInt(value)

/**
 * Type parsers of guildstore's pools: pg's defaults, except int8 → `bigint` and a
 * faster `timestamptz` parser that returns exactly what pg's does (unless the
 * host replaced pg's global one, which then still wins). Never touches pg's
 * global parsers.
 */
export const guildstoreTypeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    format === 'binary'
      ? pg.types.getTypeParser(oid, format)
      : oid === INT8_OID
        ? parseInt8
        : oid === TIMESTAMPTZ_OID
          ? timestamptzParserFor(pg.types.getTypeParser(oid, format))
          : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Checks a schema name for guildstore (`createPool({ schema })`, `runMigrations`, `--schema`)
 * and returns it: a lowercase SQL identifier of at most 63 characters, not starting
 * with `pg_` (reserved by PostgreSQL) and not `information_schema`.
 *
 * @throws InvalidInputError for anything else; nothing is sent to the server.
 * @example
 * ```ts
 * assertSchemaName('chat') // 'chat'
 * ```
 */
export function assertSchemaName(schema: unknown): string {
  if (
    typeof schema !== 'string' ||
    !SCHEMA_NAME.test(schema) ||
    schema.startsWith('pg_') ||
    schema === 'information_schema'
  ) {
    throw new InvalidInputError(
      'schema must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 characters, not pg_…)',
      { field: 'schema' },
    )
  }
  return schema
}

/**
 * A validated schema name as a quoted SQL identifier, e.g. `"chat"`.
 *
 * @throws InvalidInputError when the name is not valid (see {@link assertSchemaName}).
 * @example
 * ```ts
 * quoteSchema('chat') // '"chat"'
 * ```
 */
export const quoteSchema = (schema: string): string => `"${assertSchemaName(schema)}"`

const poolSchemas = new WeakMap<pg.Pool, string>()

/**
 * The schema a pool was made for with `createPool({ schema })`, else `undefined`.
 * The migration functions use it as their default schema.
 *
 * @example
 * ```ts
 * poolSchema(createPool({ schema: 'chat' })) // 'chat'
 * ```
 */
export const poolSchema = (pool: pg.Pool): string | undefined => poolSchemas.get(pool)

/** Whether libpq-style settings would let `pg` find a server and user without a URL. */
function hasConnectionSettings(config: pg.PoolConfig & { hosts?: unknown }): boolean {
  if (config.connectionString || config.hosts) return true
  if (config.host || config.user || config.database || config.port) return true
  const env = process.env
  return Boolean(env.DATABASE_URL || env.PGHOST || env.PGUSER || env.PGDATABASE)
}

interface HostAddress {
  host: string
  port: number
}

type TargetSessionAttrs = NonNullable<PoolOptions['targetSessionAttrs']>

const ROLE_QUERY =
  "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') = 'on' AS read_only"

/** `hosts` checked: each a `'host:port'` string or `{ host, port }`, port 1–65535 (default 5432). */
function parseHosts(hosts: unknown): HostAddress[] {
  const refuse = () =>
    new InvalidInputError(
      "hosts must be a non-empty array of 'host:port' strings or { host, port } objects",
      { field: 'hosts' },
    )
  if (!Array.isArray(hosts) || hosts.length === 0 || hosts.length > 64) throw refuse()
  return hosts.map((entry: unknown) => {
    let host: unknown
    let port: unknown = 5432
    if (typeof entry === 'string') {
      const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry)
      if (!match) throw refuse()
      host = match[1]?.replace(/^\[|\]$/g, '')
      if (match[2]) port = Number(match[2])
    } else if (entry && typeof entry === 'object') {
      host = (entry as { host?: unknown }).host
      port = (entry as { port?: unknown }).port ?? 5432
    }
    if (typeof host !== 'string' || host === '' || host.length > 255) throw refuse()
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw refuse()
    }
    return { host, port }
  })
}

/**
 * Which of several hosts new connections of one pool go to: each is probed in
 * order (the last one that matched first) with a short-lived connection, and
 * the first whose role fits the target wins.
 */
class HostLocator {
  readonly hosts: HostAddress[]
  readonly target: TargetSessionAttrs
  /** The host new connections went to last. */
  current = 0
  /** Called when new connections move to another host (a failover). */
  onMove: (() => void) | undefined

  constructor(hosts: HostAddress[], target: TargetSessionAttrs) {
    this.hosts = hosts
    this.target = target
  }

  /** Whether a server of this role may serve; `'fallback'`: only when nothing better answers. */
  fits(role: { recovery: boolean; read_only: boolean }): boolean | 'fallback' {
    const writable = !role.recovery && !role.read_only
    if (this.target === 'read-write') return writable
    if (this.target === 'prefer-standby') return role.recovery ? true : 'fallback'
    return true
  }

  /** Finds the host a new connection should use (probing), and remembers it. */
  async locate(config: pg.ClientConfig): Promise<number> {
    const order = [this.current, ...this.hosts.keys()].filter((v, i, all) => all.indexOf(v) === i)
    const failures: unknown[] = []
    let fallback: number | undefined
    for (const index of order) {
      const address = this.hosts[index] as HostAddress
      const probe = new pg.Client({ ...config, host: address.host, port: address.port })
      probe.on('error', () => {})
      try {
        await probe.connect()
        const role = (await probe.query(ROLE_QUERY)).rows[0]
        const fits = this.fits(role)
        if (fits === true) return this.#use(index)
        if (fits === 'fallback') fallback ??= index
      } catch (error) {
        failures.push(error)
      } finally {
        await probe.end().catch(() => {})
      }
    }
    if (fallback !== undefined) return this.#use(fallback)
    throw new DatabaseUnavailableError(
      `none of the ${this.hosts.length} hosts is ${this.target === 'read-write' ? 'a writable primary' : 'reachable'} (a failover may be under way); retry`,
      { retryable: true, cause: new AggregateError(failures, 'hosts') },
    )
  }

  #use(index: number): number {
    const moved = index !== this.current
    this.current = index
    if (moved) this.onMove?.()
    return index
  }
}

/** Where a connection of a multi-host pool went. */
const clientHosts = new WeakMap<pg.Client, number>()

/** A `pg.Client` that picks its server from a {@link HostLocator} when it connects, and checks the role it got. */
function locatingClient(locator: HostLocator): typeof pg.Client {
  class LocatingClient extends pg.Client {
    readonly #config: pg.ClientConfig

    constructor(config: pg.ClientConfig) {
      super(config)
      this.#config = config
    }

    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads (promise, or callback as the pool uses)
    override connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): any {
      const connected = this.#connect()
      if (!callback) return connected
      const done = callback as (error: Error | null, client?: pg.Client) => void
      connected.then(
        () => done(null, this as unknown as pg.Client),
        (error: Error) => done(error),
      )
      return undefined
    }

    async #connect(): Promise<void> {
      // pg lets a connectionString override explicit fields: probes get the parsed settings instead
      const parsed = (this as unknown as { connectionParameters: pg.ClientConfig })
        .connectionParameters
      const index = await locator.locate({
        user: parsed.user,
        database: parsed.database,
        password: parsed.password,
        ssl: parsed.ssl,
        options: parsed.options,
        application_name: parsed.application_name,
        connectionTimeoutMillis: this.#config.connectionTimeoutMillis ?? 10_000,
      } as pg.ClientConfig)
      const address = locator.hosts[index] as HostAddress
      const self = this as unknown as {
        host: string
        port: number
        connectionParameters: { host: string; port: number }
      }
      self.host = address.host
      self.port = address.port
      self.connectionParameters.host = address.host
      self.connectionParameters.port = address.port
      await super.connect()
      clientHosts.set(this as unknown as pg.Client, index)
      // the role may have changed since the probe (a failover in between)
      const role = (await this.query(ROLE_QUERY)).rows[0]
      if (locator.fits(role) === false) {
        await this.end().catch(() => {})
        throw new DatabaseUnavailableError(
          'the server changed role while connecting (a failover is under way); retry',
          { retryable: true },
        )
      }
    }
  }
  return LocatingClient as unknown as typeof pg.Client
}

/**
 * Keeps a multi-host pool off a host new connections moved away from: its
 * idle connections are dropped at once (through the pool's idle-error path)
 * and its busy ones when they are released, so none is reused.
 */
function dropMovedConnections(pool: pg.Pool, locator: HostLocator): void {
  const clients = new Set<pg.Client>()
  const busy = new Set<pg.Client>()
  const stale = (client: pg.Client) => clientHosts.get(client) !== locator.current
  pool.on('connect', (client) => {
    clients.add(client)
  })
  pool.on('remove', (client) => {
    clients.delete(client)
    busy.delete(client)
  })
  pool.on('acquire', (client) => {
    busy.add(client)
  })
  pool.on('release', (_error, client) => {
    busy.delete(client)
    // ended here, the pool removes it instead of keeping it idle
    if (stale(client)) void client.end().catch(() => {})
  })
  locator.onMove = () => {
    for (const client of clients) {
      if (busy.has(client) || !stale(client)) continue
      clients.delete(client)
      client.emit('error', new Error('Connection terminated: the primary moved to another host'))
    }
  }
}

/**
 * Creates the `pg` pool guildstore runs on.
 *
 * Defaults (each overridable): `connectionString` from `DATABASE_URL`, `max` 20,
 * `connectionTimeoutMillis` 30 000 (acquiring past that fails instead of hanging),
 * `idleTimeoutMillis` 600 000, `application_name` `guildstore`. `int8` columns are
 * parsed to `bigint` on this pool only. An idle connection's error never crashes
 * the process. With `schema`, every connection starts with `search_path` set to it
 * (as a startup option, so it also holds for named prepared statements).
 *
 * @throws InvalidInputError when no database is given at all (no `connectionString`,
 *   no `DATABASE_URL`, no host/user/database fields nor `PGHOST`/`PGUSER`/`PGDATABASE`),
 *   or when `schema` is not a valid schema name, or `hosts` / `targetSessionAttrs` are malformed.
 * @example
 * ```ts
 * const pool = createPool({ connectionString: 'postgres://app@db/chat', max: 10, schema: 'chat' })
 * const db = createDb(pool)
 * // after a failover, new connections find the new primary:
 * const ha = createPool({ connectionString: 'postgres://app@/chat', hosts: ['db-a:5432', 'db-b:5432'] })
 * ```
 */
export function createPool(options: PoolOptions = {}): pg.Pool {
  const { onIdleError, schema, hosts, targetSessionAttrs, ...given } = options
  // An option given as `undefined` is absent: it never overrides a default
  // (`max: undefined` keeps 20, `connectionString: undefined` keeps DATABASE_URL).
  const config = Object.fromEntries(
    Object.entries(given).filter(([, value]) => value !== undefined),
  ) as typeof given
  if (!hasConnectionSettings({ ...config, hosts })) {
    throw new InvalidInputError(
      'createPool needs a database: pass { connectionString } or set DATABASE_URL (postgres://user:password@host:5432/db)',
      { field: 'connectionString' },
    )
  }
  const searchPath = schema === undefined ? undefined : `-c search_path=${quoteSchema(schema)}`
  if (hosts === undefined && targetSessionAttrs !== undefined) {
    throw new InvalidInputError('targetSessionAttrs needs hosts', { field: 'targetSessionAttrs' })
  }
  const target = targetSessionAttrs ?? 'read-write'
  if (!['read-write', 'prefer-standby', 'any'].includes(target)) {
    throw new InvalidInputError(
      "targetSessionAttrs must be 'read-write', 'prefer-standby' or 'any'",
      {
        field: 'targetSessionAttrs',
      },
    )
  }
  const locator = hosts === undefined ? undefined : new HostLocator(parseHosts(hosts), target)
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: 20,
    connectionTimeoutMillis: 30_000,
    idleTimeoutMillis: 600_000,
    application_name: 'guildstore',
    ...config,
    ...(searchPath ? { options: [config.options, searchPath].filter(Boolean).join(' ') } : {}),
    types: config.types ?? guildstoreTypeParsers,
    ...(locator ? { Client: locatingClient(locator) } : {}),
  })
  if (locator) dropMovedConnections(pool, locator)
  if (schema !== undefined) poolSchemas.set(pool, schema)
  pool.on('error', (error) => {
    onIdleError?.(error)
  })
  // pg-pool listens for errors of idle clients only. A checked-out client (mid-query
  // or mid-transaction) whose connection dies emits 'error' with no listener, which
  // would crash the host. The failure still reaches the pending (or next) query as a
  // rejection (mapped to DatabaseUnavailableError) and the pool discards the client.
  pool.on('connect', (client) => {
    client.on('error', ignoreCheckedOutClientError)
  })
  return pool
}
