/**
 * Embedded PostgreSQL for development: PGlite (PostgreSQL compiled to WASM)
 * behind its wire-protocol socket server, with the data in a local folder, so
 * `pg` connects to it like to any server. A development default only.
 *
 * The socket server multiplexes every client onto ONE backend: named prepared
 * statements of two clients would collide, session advisory locks do not
 * exclude each other, an open transaction blocks everyone and LISTEN/NOTIFY do
 * not cross. So its user takes a pool of one connection and
 * `createDb(pool, { preparedStatements: false })`.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/** A running embedded PostgreSQL. */
export interface EmbeddedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string
  /** The data folder. */
  dataDir: string
  /** Stops the socket server, closes the database (flushing it) and frees the folder. */
  stop(): Promise<void>
}

/** Thrown when another process holds the data folder. */
export class EmbeddedPostgresBusyError extends Error {
  override name = 'EmbeddedPostgresBusyError'
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Takes `<dataDir>.lock` for this process; a lock of a process that is gone is taken over. */
async function lock(dataDir: string): Promise<() => Promise<void>> {
  const file = `${dataDir}.lock`
  await mkdir(dirname(file), { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx')
      await handle.writeFile(String(process.pid))
      await handle.close()
      return () => rm(file, { force: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const pid = Number(await readFile(file, 'utf8').catch(() => ''))
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new EmbeddedPostgresBusyError(
          `the embedded PostgreSQL data in ${dataDir} is in use by process ${pid} (another chat example?). Stop that one, or set DATABASE_URL to use a PostgreSQL server.`,
        )
      }
      await rm(file, { force: true })
    }
  }
  throw new EmbeddedPostgresBusyError(`could not lock ${file}`)
}

/**
 * Starts PGlite on `dataDir` (created when missing; kept across restarts) and
 * its socket server on a free loopback port.
 *
 * @example
 * ```ts
 * const embedded = await startEmbeddedPostgres('.data/pglite')
 * const pool = createPool({ connectionString: embedded.url, max: 1 })
 * ```
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const unlock = await lock(dataDir)
  try {
    await mkdir(dataDir, { recursive: true })
    const { PGlite } = await import('@electric-sql/pglite')
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
    const db = await PGlite.create({ dataDir })
    // A few connections may overlap while the pool replaces one (a connection
    // is closed after migrations); the pool itself keeps at most one.
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 })
    await server.start()
    return {
      url: `postgres://postgres@${server.getServerConn()}/postgres`,
      dataDir,
      async stop() {
        await server.stop()
        await db.close()
        await unlock()
      },
    }
  } catch (error) {
    await unlock()
    throw error
  }
}

/** The default data folder: `.data/pglite` in the project (gitignored). */
export const defaultEmbeddedDataDir = (root: string): string => join(root, '.data', 'pglite')
