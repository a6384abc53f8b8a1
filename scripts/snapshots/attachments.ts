import {
  createAttachment,
  deleteAttachment,
  listAttachmentsByMessageIds,
  newId,
} from '../../src/index.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'attachments',
  async run({ db, capture }) {
    const user = await db
      .insertInto('users')
      .values({ id: newId(), username: `snap_${newId().slice(-8)}` })
      .returning('id')
      .executeTakeFirstOrThrow()
    const guild = await db
      .insertInto('guilds')
      .values({ id: newId(), name: 'snapshots', owner_id: user.id })
      .returning('id')
      .executeTakeFirstOrThrow()
    const channel = await db
      .insertInto('channels')
      .values({ id: newId(), guild_id: guild.id, name: 'files', type: 'text' })
      .returning('id')
      .executeTakeFirstOrThrow()
    const message = await db
      .insertInto('messages')
      .values({ id: newId(), channel_id: channel.id, author_id: user.id, content: 'a file' })
      .returning('id')
      .executeTakeFirstOrThrow()
    let attachmentId = newId()
    await capture('createAttachment', async () => {
      const a = await createAttachment(db, {
        message_id: message.id,
        filename: 'cat.png',
        s3_key: 'uploads/cat.png',
        size: 1234,
        content_type: 'image/png',
      })
      attachmentId = a.id
    })
    await capture('listAttachmentsByMessageIds', () =>
      listAttachmentsByMessageIds(db, [message.id, newId()]),
    )
    await capture('deleteAttachment', () => deleteAttachment(db, attachmentId))
  },
}

export default scenario
