import { describe, expect, it } from 'vitest'
import { testDatabaseUrl, testRedisUrl } from '../support/env.ts'
import { freePort } from '../support/local-servers.ts'
import {
  missingServersMessage,
  pingDocker,
  postgresAnswers,
  redisAnswers,
  resolveTestServers,
  TestServersUnavailableError,
} from '../support/servers.ts'

describe('resolveTestServers', () => {
  it('uses TEST_DATABASE_URL and TEST_REDIS_URL without asking Docker', async () => {
    let asked = false
    const servers = await resolveTestServers({
      env: { TEST_DATABASE_URL: 'postgres://a@h/db', TEST_REDIS_URL: 'redis://h:1' },
      dockerAnswers: async () => {
        asked = true
        return true
      },
    })
    expect(servers).toMatchObject({
      databaseUrl: 'postgres://a@h/db',
      redisUrl: 'redis://h:1',
      source: 'env',
    })
    expect(asked).toBe(false)
  })

  it('fails with a message that says how to fix it when neither URLs nor Docker are there', async () => {
    const attempt = resolveTestServers({
      env: {},
      localAnswers: async () => false,
      dockerAnswers: async () => false,
    })
    await expect(attempt).rejects.toBeInstanceOf(TestServersUnavailableError)
    const error = (await attempt.catch((e: Error) => e)) as Error
    expect(error.message).toContain(
      'PostgreSQL (TEST_DATABASE_URL is not set, nothing answers on 127.0.0.1:5432)',
    )
    expect(error.message).toContain(
      'Redis (TEST_REDIS_URL is not set, nothing answers on 127.0.0.1:6379)',
    )
    expect(error.message).toContain('TEST_DATABASE_URL=postgres://')
    expect(error.message).toContain('TEST_REDIS_URL=redis://')
    expect(error.message).toContain('Docker engine')
  })

  it('names only the missing variable', async () => {
    const error = (await resolveTestServers({
      env: { TEST_DATABASE_URL: 'postgres://a@h/db' },
      localAnswers: async () => false,
      dockerAnswers: async () => false,
    }).catch((e: Error) => e)) as Error
    expect(error).toBeInstanceOf(TestServersUnavailableError)
    expect(error.message).toContain('found no Redis (TEST_REDIS_URL is not set')
    expect(error.message).not.toContain('TEST_DATABASE_URL is not set')
    expect(missingServersMessage(['TEST_REDIS_URL'])).toBe(error.message)
  })

  it('starts containers when Docker answers, keeping a URL that was given', async () => {
    let stopped = false
    const servers = await resolveTestServers({
      env: { TEST_REDIS_URL: 'redis://given:6379' },
      localAnswers: async () => false,
      dockerAnswers: async () => true,
      startContainers: async () => ({
        databaseUrl: 'postgres://container/db',
        redisUrl: 'redis://container:6379',
        source: 'testcontainers',
        async stop() {
          stopped = true
        },
      }),
    })
    expect(servers.databaseUrl).toBe('postgres://container/db')
    expect(servers.redisUrl).toBe('redis://given:6379')
    expect(servers.source).toBe('testcontainers')
    await servers.stop()
    expect(stopped).toBe(true)
  })

  it('uses the local default ports when they answer, before asking Docker', async () => {
    const asked: string[] = []
    const servers = await resolveTestServers({
      env: { GUILDSTORE_LOCAL_REDIS_URL: 'redis://127.0.0.1:7000' },
      localAnswers: async (url, kind) => {
        asked.push(`${kind} ${url}`)
        return true
      },
      dockerAnswers: async () => {
        throw new Error('Docker must not be asked')
      },
    })
    expect(servers).toMatchObject({
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
      redisUrl: 'redis://127.0.0.1:7000',
      source: 'local',
    })
    expect(asked.sort()).toEqual([
      'postgres postgres://postgres@127.0.0.1:5432/postgres',
      'redis redis://127.0.0.1:7000',
    ])
  })

  it('probes real servers: the shared ones answer, a closed port does not', async () => {
    expect(await postgresAnswers(testDatabaseUrl())).toBe(true)
    expect(await redisAnswers(testRedisUrl())).toBe(true)
    const closed = await freePort()
    expect(await postgresAnswers(`postgres://postgres@127.0.0.1:${closed}/postgres`)).toBe(false)
    expect(await redisAnswers(`redis://127.0.0.1:${closed}`)).toBe(false)
  })

  it('finds no Docker engine on this machine’s missing socket', async () => {
    expect(await pingDocker({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' })).toBe(false)
    expect(await pingDocker({ DOCKER_HOST: 'tcp://127.0.0.1:1' }, 500)).toBe(false)
  })
})
