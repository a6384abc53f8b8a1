import type { RedisClient } from './client.ts'

/** A Lua script bound to one client: `(...keys, ...args) => reply`, sent as EVALSHA with EVAL fallback. */
export type BoundScript = (...keysThenArgs: Array<string | number>) => Promise<unknown>

/** A Lua script guildstore registers on clients with ioredis `defineCommand`. */
export interface ScriptDefinition {
  /** The command name it is registered under on the client. */
  name: string
  lua: string
  numberOfKeys: number
}

const bound = new WeakMap<RedisClient, Map<string, BoundScript>>()

/**
 * Registers `script` on `redis` once (ioredis `defineCommand`: EVALSHA, falling
 * back to EVAL on NOSCRIPT) and returns a function that runs it.
 */
export function bindScript(redis: RedisClient, script: ScriptDefinition): BoundScript {
  let scripts = bound.get(redis)
  if (!scripts) {
    scripts = new Map()
    bound.set(redis, scripts)
  }
  let run = scripts.get(script.name)
  if (!run) {
    const commands = redis as unknown as Record<string, BoundScript | undefined>
    if (typeof commands[script.name] !== 'function') {
      redis.defineCommand(script.name, { lua: script.lua, numberOfKeys: script.numberOfKeys })
    }
    run = commands[script.name]!.bind(redis)
    scripts.set(script.name, run)
  }
  return run
}
