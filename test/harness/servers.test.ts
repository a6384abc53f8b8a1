import { describe, expect, it } from 'vitest'
import {
  missingServersMessage,
  pingDocker,
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
    const attempt = resolveTestServers({ env: {}, dockerAnswers: async () => false })
    await expect(attempt).rejects.toBeInstanceOf(TestServersUnavailableError)
    const error = (await attempt.catch((e: Error) => e)) as Error
    expect(error.message).toContain('TEST_DATABASE_URL and TEST_REDIS_URL are not set')
    expect(error.message).toContain('TEST_DATABASE_URL=postgres://')
    expect(error.message).toContain('TEST_REDIS_URL=redis://')
    expect(error.message).toContain('Docker engine')
  })

  it('names only the missing variable', async () => {
    const error = (await resolveTestServers({
      env: { TEST_DATABASE_URL: 'postgres://a@h/db' },
      dockerAnswers: async () => false,
    }).catch((e: Error) => e)) as Error
    expect(error).toBeInstanceOf(TestServersUnavailableError)
    expect(error.message).toContain('but TEST_REDIS_URL is not set')
    expect(missingServersMessage(['TEST_REDIS_URL'])).toBe(error.message)
  })

  it('starts containers when Docker answers, keeping a URL that was given', async () => {
    let stopped = false
    const servers = await resolveTestServers({
      env: { TEST_REDIS_URL: 'redis://given:6379' },
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

  it('finds no Docker engine on this machine’s missing socket', async () => {
    expect(await pingDocker({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' })).toBe(false)
    expect(await pingDocker({ DOCKER_HOST: 'tcp://127.0.0.1:1' }, 500)).toBe(false)
  })
})
