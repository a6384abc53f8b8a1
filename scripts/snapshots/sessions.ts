import { randomBytes } from 'node:crypto'
import {
  createSession,
  createUser,
  deleteExpiredSessions,
  deleteSession,
  deleteUser,
  deleteUserSessions,
  findSessionByTokenHash,
  hashToken,
  newId,
} from '../../src/index.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'sessions',
  async run({ db, capture }) {
    const user = await createUser(db, { username: `snap_s_${newId().slice(-8)}` })
    const token_hash = hashToken(randomBytes(32).toString('base64url'))
    let sessionId = ''
    await capture('createSession', async () => {
      const session = await createSession(db, {
        user_id: user.id,
        token_hash,
        expires_at: new Date(Date.now() + 3_600_000),
        ip_address: '192.0.2.1',
        user_agent: 'snapshot',
      })
      sessionId = session.id
    })
    await capture('createSession (throws) invalid token hash', () =>
      createSession(db, { user_id: user.id, token_hash: 'x', expires_at: new Date() }),
    )
    await capture('findSessionByTokenHash', () => findSessionByTokenHash(db, token_hash))
    await capture('deleteSession', () => deleteSession(db, sessionId))
    await capture('deleteUserSessions', () => deleteUserSessions(db, user.id))
    await capture('deleteExpiredSessions', () => deleteExpiredSessions(db))
    await deleteUser(db, user.id)
  },
}

export default scenario
