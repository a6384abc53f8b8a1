import { inject } from 'vitest'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the PostgreSQL server the tests use (any database on it). */
    databaseUrl: string
    /** URL of the Redis server the tests use. */
    redisUrl: string
    /** Name of the migrated template database each test file clones. */
    templateDatabase: string
  }
}

/** The PostgreSQL server URL resolved by the global setup. */
export const testDatabaseUrl = (): string => inject('databaseUrl')
/** The Redis URL resolved by the global setup. */
export const testRedisUrl = (): string => inject('redisUrl')
/** The migrated template database each test file clones. */
export const templateDatabase = (): string => inject('templateDatabase')
