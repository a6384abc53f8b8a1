import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Walks up from `from` to the nearest directory holding a `package.json` named
 * `guildstore`. Works from `src/migrations/*.ts` and from `dist/src/migrations/*.js`.
 *
 * @throws Error when no such directory exists above `from`.
 * @example
 * ```ts
 * findPackageRoot(import.meta.url) // '/app/node_modules/guildstore'
 * ```
 */
export function findPackageRoot(from: string | URL = import.meta.url): string {
  let dir = dirname(
    typeof from === 'string' && !from.startsWith('file:') ? from : fileURLToPath(from),
  )
  for (;;) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest)) {
      try {
        const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }
        if (parsed.name === 'guildstore') return dir
      } catch {
        // An unreadable manifest is not ours; keep walking up.
      }
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the guildstore package root')
    dir = parent
  }
}

/**
 * The package's own `migrations/` directory, the default of every migration function.
 *
 * @throws Error when the guildstore package root cannot be found.
 * @example
 * ```ts
 * await runMigrations(pool, { directory: defaultMigrationsDirectory() })
 * ```
 */
export function defaultMigrationsDirectory(): string {
  return join(findPackageRoot(import.meta.url), 'migrations')
}
