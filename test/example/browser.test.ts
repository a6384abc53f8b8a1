/**
 * The example's web chat page in a real headless Chromium (Debian's `chromium`
 * driven by playwright-core): two users in two browser contexts; one posts, the
 * other sees it live over server-sent events; unread badges come and go.
 * Screenshots go to test-results/.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChatService, createChatService } from '../../examples/chat-service/server.ts'
import {
  createMessage,
  createRedis,
  findUserByUsername,
  listChannelReadStates,
  UNREAD_COUNT_CAP,
} from '../../src/index.ts'
import { repoRoot } from '../package/support.ts'
import { useTestDatabase } from '../support/database.ts'
import { testRedisUrl } from '../support/env.ts'

const t = useTestDatabase()
const namespace = `gs_test_browser_${randomBytes(6).toString('hex')}`
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const OUTPUT = join(repoRoot, 'test-results')
/** Generous: a loaded 2-core machine runs Chromium next to the test suite. */
const UI_TIMEOUT = 30_000
const PASSWORD = 'correct horse battery staple'

let redis: Redis
let subscriber: Redis
let service: ChatService
let browser: Browser

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`,
    )
  }
  redis = createRedis({ url: testRedisUrl(), namespace })
  subscriber = redis.duplicate()
  service = await createChatService({ db: t.db, redis, subscriber, port: 0 })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
  await mkdir(OUTPUT, { recursive: true })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await service?.close()
  if (redis) {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
  }
  redis?.disconnect()
  subscriber?.disconnect()
})

async function signUp(page: Page, username: string): Promise<void> {
  page.setDefaultTimeout(UI_TIMEOUT)
  await page.goto(`${service.url}/`)
  await page.locator('#auth-username').fill(username)
  await page.locator('#auth-password').fill(PASSWORD)
  await page.locator('#signup').click()
  await page.locator('#chat-view').waitFor({ state: 'visible' })
  await expect.poll(() => page.locator('#me').textContent(), { timeout: UI_TIMEOUT }).toBe(username)
}

const liveStatus = (page: Page) => page.locator('#live-status').textContent()

/** The little of the DOM the layout check reads. */
interface PageDocument {
  documentElement: { scrollWidth: number }
  getElementById(id: string): {
    getBoundingClientRect(): { width: number; top: number; bottom: number; right: number }
  } | null
}

/** Creates an invite of the open guild from the page; returns the shareable link. */
async function inviteLink(page: Page, uses = '10'): Promise<string> {
  await page.locator('#invite-uses').selectOption(uses)
  await page.locator('#create-invite').click()
  await page.locator('#invite-result').waitFor({ state: 'visible', timeout: UI_TIMEOUT })
  return page.locator('#invite-link').inputValue()
}

const title = (page: Page) => page.locator('#channel-title').textContent()

describe('the chat page in headless Chromium', () => {
  it('two users: one posts, the other sees it live; history scrolls back; search finds it', async () => {
    const ada = `ada_${randomBytes(4).toString('hex')}`
    const grace = `grace_${randomBytes(4).toString('hex')}`
    const adaContext = await browser.newContext({ viewport: { width: 1200, height: 700 } })
    const graceContext = await browser.newContext({ viewport: { width: 1200, height: 700 } })
    try {
      const adaPage = await adaContext.newPage()
      const gracePage = await graceContext.newPage()

      // Ada signs up and creates a guild; its #general opens with a live stream.
      await signUp(adaPage, ada)
      await adaPage.locator('#guild-name').fill('Browser guild')
      await adaPage.locator('#create-guild').click()
      await expect
        .poll(() => adaPage.locator('#channel-title').textContent(), { timeout: UI_TIMEOUT })
        .toBe('# general')
      await expect.poll(() => liveStatus(adaPage), { timeout: UI_TIMEOUT }).toBe('live')
      const invite = await inviteLink(adaPage)
      expect(invite).toMatch(/\/#invite=[A-Za-z0-9_-]{22}$/)

      // 70 older messages, so the first page (50) leaves some for scrolling back.
      const adaRow = await findUserByUsername(t.db, ada)
      const channelId = await adaPage
        .locator('#channels button.active')
        .getAttribute('data-channel-id')
      for (let i = 1; i <= 70; i++) {
        await createMessage(t.db, {
          channel_id: channelId as string,
          author_id: adaRow?.id as string,
          content: `older note ${i}`,
        })
      }

      // Grace signs up in another context and joins with the invite code.
      await signUp(gracePage, grace)
      await gracePage.locator('#join-id').fill(invite)
      await gracePage.locator('#join-guild').click()
      await expect
        .poll(() => gracePage.locator('#channel-title').textContent(), { timeout: UI_TIMEOUT })
        .toBe('# general')
      await expect.poll(() => liveStatus(gracePage), { timeout: UI_TIMEOUT }).toBe('live')
      const graceMessages = gracePage.locator('#messages .message')
      await expect.poll(() => graceMessages.count(), { timeout: UI_TIMEOUT }).toBe(50)
      expect(await gracePage.locator('#messages .message .content').last().textContent()).toBe(
        'older note 70',
      )

      // Scrolling to the top loads the rest: infinite scroll back to the start.
      await expect
        .poll(
          async () => {
            await gracePage.locator('#messages').evaluate((box) => {
              box.scrollTop = 0
              box.dispatchEvent(new Event('scroll'))
            })
            return graceMessages.count()
          },
          { timeout: UI_TIMEOUT },
        )
        .toBe(70)
      expect(await gracePage.locator('#messages .message .content').first().textContent()).toBe(
        'older note 1',
      )
      await expect
        .poll(() => gracePage.locator('#messages .more').textContent(), { timeout: UI_TIMEOUT })
        .toBe('start of the channel')

      // Ada posts; Grace's page shows it without reloading (server-sent events).
      const text = `hello from ada ${randomBytes(3).toString('hex')}`
      await adaPage.locator('#composer-input').fill(text)
      await adaPage.locator('#send').click()
      const live = gracePage.locator('#messages .message', { hasText: text })
      await live.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      expect(await live.locator('.author').textContent()).toBe(ada)
      expect(await graceMessages.count()).toBe(71)
      // Ada's own page shows it once, not twice (POST answer and live event).
      await expect
        .poll(() => adaPage.locator('#messages .message', { hasText: text }).count(), {
          timeout: UI_TIMEOUT,
        })
        .toBe(1)

      // Grace answers; Ada sees it live too.
      await gracePage.locator('#composer-input').fill('hi ada, got it')
      await gracePage.locator('#send').click()
      await adaPage
        .locator('#messages .message', { hasText: 'hi ada, got it' })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT })

      // Search finds Ada's message for Grace.
      await gracePage.locator('#search-input').fill(text.split(' ').at(-1) as string)
      await gracePage.locator('#search-form button').click()
      await gracePage
        .locator('#search-results li', { hasText: text })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT })

      const shot = join(OUTPUT, 'chat-browser-grace.png')
      await gracePage.screenshot({ path: shot })
      await adaPage.screenshot({ path: join(OUTPUT, 'chat-browser-ada.png') })
      expect((await stat(shot)).size).toBeGreaterThan(10_000)
    } finally {
      await adaContext.close()
      await graceContext.close()
    }
  }, 240_000)

  it('unread badges: a post in a channel Grace is not viewing shows one; opening it clears it', async () => {
    const ada = `ada_${randomBytes(4).toString('hex')}`
    const grace = `grace_${randomBytes(4).toString('hex')}`
    const adaContext = await browser.newContext({ viewport: { width: 1200, height: 700 } })
    const graceContext = await browser.newContext({ viewport: { width: 1200, height: 700 } })
    try {
      const adaPage = await adaContext.newPage()
      const gracePage = await graceContext.newPage()

      // Ada: a guild with #general and #side; she stays in #side.
      await signUp(adaPage, ada)
      await adaPage.locator('#guild-name').fill('Unread guild')
      await adaPage.locator('#create-guild').click()
      await expect
        .poll(() => adaPage.locator('#channel-title').textContent(), { timeout: UI_TIMEOUT })
        .toBe('# general')
      await adaPage.locator('#channel-name').fill('side')
      await adaPage.locator('#create-channel').click()
      await expect
        .poll(() => adaPage.locator('#channel-title').textContent(), { timeout: UI_TIMEOUT })
        .toBe('# side')
      await expect.poll(() => liveStatus(adaPage), { timeout: UI_TIMEOUT }).toBe('live')
      const guildId =
        (await adaPage.locator('#guilds button.active').getAttribute('data-guild-id')) ?? ''
      const invite = await inviteLink(adaPage)

      // Grace joins and views #general.
      await signUp(gracePage, grace)
      await gracePage.locator('#join-id').fill(invite)
      await gracePage.locator('#join-guild').click()
      await expect
        .poll(() => gracePage.locator('#channel-title').textContent(), { timeout: UI_TIMEOUT })
        .toBe('# general')
      const channelButton = (name: string) =>
        gracePage.locator('#channels button', { hasText: `# ${name}` })
      const unreadBadge = (name: string) => channelButton(name).locator('.badge.unread')
      const mentionBadge = (name: string) => channelButton(name).locator('.badge.mention')
      expect(await unreadBadge('side').isHidden()).toBe(true)

      // Ada posts in #side: Grace's #side gets a badge (periodic refresh), #general none.
      await adaPage.locator('#composer-input').fill('over here, grace')
      await adaPage.locator('#send').click()
      await unreadBadge('side').waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      expect(await unreadBadge('side').textContent()).toBe('1')
      expect(await unreadBadge('general').isHidden()).toBe(true)
      expect(await mentionBadge('side').isHidden()).toBe(true)
      await gracePage.screenshot({ path: join(OUTPUT, 'chat-browser-unread.png') })

      // Grace opens #side: the message shows, the channel is marked read, the badge goes.
      await channelButton('side').click()
      await gracePage
        .locator('#messages .message', { hasText: 'over here, grace' })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await unreadBadge('side').waitFor({ state: 'hidden', timeout: UI_TIMEOUT })

      // A live message in the open channel is marked read as it arrives.
      const graceRow = await findUserByUsername(t.db, grace)
      const adaRow = await findUserByUsername(t.db, ada)
      const graceId = graceRow?.id as string
      const sideUnread = async () =>
        (await listChannelReadStates(t.db, { user_id: graceId, guild_id: guildId })).find(
          (s) => s.channel_id === sideId,
        )?.unread_count
      const sideId = await channelButton('side').getAttribute('data-channel-id')
      await adaPage.locator('#composer-input').fill('and one more')
      await adaPage.locator('#send').click()
      await gracePage
        .locator('#messages .message', { hasText: 'and one more' })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await expect.poll(sideUnread, { timeout: UI_TIMEOUT }).toBe(0)
      expect(await unreadBadge('side').isHidden()).toBe(true)

      // At the cap the badge says "99+"; a mention shows its own badge.
      const generalId = (await channelButton('general').getAttribute('data-channel-id')) as string
      for (let i = 1; i < UNREAD_COUNT_CAP; i++) {
        await createMessage(t.db, {
          channel_id: generalId,
          author_id: adaRow?.id as string,
          content: `backlog ${i}`,
        })
      }
      await createMessage(t.db, {
        channel_id: generalId,
        author_id: adaRow?.id as string,
        content: 'grace, look',
        mentions: { user_ids: [graceId] },
      })
      await expect
        .poll(() => unreadBadge('general').textContent(), { timeout: UI_TIMEOUT })
        .toBe(`${UNREAD_COUNT_CAP - 1}+`)
      await expect
        .poll(() => mentionBadge('general').textContent(), { timeout: UI_TIMEOUT })
        .toBe('@1')
      await channelButton('general').click()
      await unreadBadge('general').waitFor({ state: 'hidden', timeout: UI_TIMEOUT })
      await mentionBadge('general').waitFor({ state: 'hidden', timeout: UI_TIMEOUT })
    } finally {
      await adaContext.close()
      await graceContext.close()
    }
  }, 240_000)

  it('shows guildstore: invite link, @mentions, reactions, pins, edit history, delete, search that opens the message, dates, the active guild', async () => {
    const ada = `ada_${randomBytes(4).toString('hex')}`
    const grace = `grace_${randomBytes(4).toString('hex')}`
    const adaContext = await browser.newContext({ viewport: { width: 1200, height: 800 } })
    const graceContext = await browser.newContext({ viewport: { width: 1200, height: 800 } })
    const shot = (page: Page, name: string) =>
      page.screenshot({ path: join(OUTPUT, `chat-features-${name}.png`) })
    try {
      const adaPage = await adaContext.newPage()
      const gracePage = await graceContext.newPage()
      await signUp(adaPage, ada)

      // The active guild is highlighted, and follows the choice.
      for (const name of ['Feature guild', 'Other guild']) {
        await adaPage.locator('#guild-name').fill(name)
        await adaPage.locator('#create-guild').click()
        await expect
          .poll(() => adaPage.locator('#guilds button.active').textContent(), {
            timeout: UI_TIMEOUT,
          })
          .toBe(name)
      }
      await adaPage.locator('#guilds button', { hasText: 'Feature guild' }).click()
      await expect
        .poll(() => adaPage.locator('#guilds button.active').textContent(), { timeout: UI_TIMEOUT })
        .toBe('Feature guild')
      expect(await adaPage.locator('#guilds button.active').count()).toBe(1)
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# general')
      await adaPage.locator('#channel-name').fill('side')
      await adaPage.locator('#create-channel').click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# side')
      await adaPage.locator('#channels button', { hasText: '# general' }).click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# general')
      await shot(adaPage, '1-active-guild')

      // An invite of guildstore's: a link with a code, an expiry and a use limit.
      const link = await inviteLink(adaPage, '1')
      expect(link).toMatch(new RegExp(`^${service.url}/#invite=[A-Za-z0-9_-]{22}$`))
      expect(await adaPage.locator('#invite-meta').textContent()).toMatch(
        /^expires \d{4}-\d{2}-\d{2} \d{2}:\d{2} · 1 use$/,
      )
      await shot(adaPage, '2-invite')

      // Grace opens the link, signs up, and is in the guild.
      gracePage.setDefaultTimeout(UI_TIMEOUT)
      await gracePage.goto(link)
      await gracePage.locator('#auth-username').fill(grace)
      await gracePage.locator('#auth-password').fill(PASSWORD)
      await gracePage.locator('#signup').click()
      await expect
        .poll(() => gracePage.locator('#guilds button.active').textContent(), {
          timeout: UI_TIMEOUT,
        })
        .toBe('Feature guild')
      await expect.poll(() => title(gracePage), { timeout: UI_TIMEOUT }).toBe('# general')
      await expect.poll(() => liveStatus(gracePage), { timeout: UI_TIMEOUT }).toBe('live')
      // The link had one use, and Grace's join took it.
      const code = link.split('#invite=')[1] as string
      const row = await t.db
        .selectFrom('guild_invites')
        .select(['uses', 'max_uses'])
        .where('code', '=', code)
        .executeTakeFirst()
      expect(row).toEqual({ uses: 1, max_uses: 1 })

      // A dated message; an @mention of Grace stands out on her page.
      const say = async (page: Page, text: string) => {
        await page.locator('#composer-input').fill(text)
        await page.locator('#send').click()
        const message = page.locator('#messages .message', { hasText: text })
        await message.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
        return message
      }
      const findMe = 'the quokka report is in'
      await say(adaPage, findMe)
      await say(adaPage, `hello @${grace}, welcome`)
      const mention = gracePage.locator('#messages .message', { hasText: 'welcome' })
      await mention.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      expect(await mention.locator('.mention.me').textContent()).toBe(`@${grace}`)
      expect(await mention.locator('time').textContent()).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/)
      await shot(gracePage, '3-mention')

      // A mention in a channel Grace is not viewing lights its mention badge.
      await adaPage.locator('#channels button', { hasText: '# side' }).click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# side')
      await say(adaPage, `@${grace} over here`)
      const sideMention = gracePage
        .locator('#channels button', { hasText: '# side' })
        .locator('.badge.mention')
      await expect.poll(() => sideMention.textContent(), { timeout: UI_TIMEOUT }).toBe('@1')
      await shot(gracePage, '4-mention-badge')
      await adaPage.locator('#channels button', { hasText: '# general' }).click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# general')

      // Grace reacts 👍: her chip is hers, Ada sees the count live.
      await mention.hover()
      await mention.locator('.act', { hasText: '👍' }).click()
      await expect
        .poll(() => mention.locator('.reaction.me').textContent(), { timeout: UI_TIMEOUT })
        .toBe('👍 1')
      const adaMention = adaPage.locator('#messages .message', { hasText: 'welcome' })
      await expect
        .poll(() => adaMention.locator('.reaction').textContent(), { timeout: UI_TIMEOUT })
        .toBe('👍 1')
      expect(await adaMention.locator('.reaction.me').count()).toBe(0)

      // Ada (the owner) pins it; both pages mark it pinned.
      await adaMention.hover()
      await adaMention.locator('.act', { hasText: 'pin' }).click()
      await expect
        .poll(() => adaMention.getAttribute('class'), { timeout: UI_TIMEOUT })
        .toContain('pinned')
      await expect
        .poll(() => mention.getAttribute('class'), { timeout: UI_TIMEOUT })
        .toContain('pinned')
      await shot(gracePage, '5-reaction-pin')

      // Ada edits it: Grace sees the new text, "(edited)", and the earlier version.
      const mentionId = await adaMention.getAttribute('data-id')
      const editing = adaPage.locator(`#messages .message[data-id="${mentionId}"]`)
      await editing.hover()
      await editing.locator('.act', { hasText: 'edit' }).click()
      await editing.locator('.edit-input').fill(`hello @${grace}, welcome aboard`)
      await editing.locator('.edit-form button').click()
      const editedOnGrace = gracePage.locator('#messages .message', { hasText: 'welcome aboard' })
      await editedOnGrace.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await editedOnGrace.locator('.edited').click()
      await expect
        .poll(() => editedOnGrace.locator('.history li').textContent(), { timeout: UI_TIMEOUT })
        .toMatch(new RegExp(`^until \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} hello @${grace}, welcome$`))
      await shot(gracePage, '6-edit-history')

      // Ada deletes a message: it goes from Grace's page too.
      const oops = await say(adaPage, 'oops, wrong channel')
      await gracePage
        .locator('#messages .message', { hasText: 'oops, wrong channel' })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await oops.hover()
      await oops.locator('.act', { hasText: 'delete' }).click()
      await gracePage
        .locator('#messages .message', { hasText: 'oops, wrong channel' })
        .waitFor({ state: 'detached', timeout: UI_TIMEOUT })

      // From #side, Grace searches; the hit names channel and date and opens the message.
      await gracePage.locator('#channels button', { hasText: '# side' }).click()
      await expect.poll(() => title(gracePage), { timeout: UI_TIMEOUT }).toBe('# side')
      await gracePage.locator('#search-input').fill('quokka')
      await gracePage.locator('#search-form button').click()
      const hit = gracePage.locator('#search-results .hit', { hasText: findMe })
      await hit.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      expect(await hit.locator('.where').textContent()).toMatch(
        /^# general · \d{4}-\d{2}-\d{2} \d{2}:\d{2}$/,
      )
      await hit.click()
      await expect.poll(() => title(gracePage), { timeout: UI_TIMEOUT }).toBe('# general')
      await expect
        .poll(() => gracePage.locator('#messages .message.focus .content').textContent(), {
          timeout: UI_TIMEOUT,
        })
        .toBe(findMe)
      await shot(gracePage, '7-search-opens')
    } finally {
      await adaContext.close()
      await graceContext.close()
    }
  }, 240_000)

  it('the change feed: Grace goes offline; Ada sends, edits, reacts and creates a channel; back online, Grace has every change once', async () => {
    const ada = `ada_${randomBytes(4).toString('hex')}`
    const grace = `grace_${randomBytes(4).toString('hex')}`
    const adaContext = await browser.newContext({ viewport: { width: 1200, height: 800 } })
    const graceContext = await browser.newContext({ viewport: { width: 1200, height: 800 } })
    const shot = (page: Page, name: string) =>
      page.screenshot({ path: join(OUTPUT, `chat-feed-${name}.png`) })
    try {
      const adaPage = await adaContext.newPage()
      const gracePage = await graceContext.newPage()
      await signUp(adaPage, ada)
      await adaPage.locator('#guild-name').fill('Feed guild')
      await adaPage.locator('#create-guild').click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# general')
      const link = await inviteLink(adaPage)
      gracePage.setDefaultTimeout(UI_TIMEOUT)
      await gracePage.goto(link)
      await gracePage.locator('#auth-username').fill(grace)
      await gracePage.locator('#auth-password').fill(PASSWORD)
      await gracePage.locator('#signup').click()
      await expect.poll(() => title(gracePage), { timeout: UI_TIMEOUT }).toBe('# general')
      await expect.poll(() => liveStatus(gracePage), { timeout: UI_TIMEOUT }).toBe('live')

      const say = async (text: string) => {
        await adaPage.locator('#composer-input').fill(text)
        await adaPage.locator('#send').click()
        const message = adaPage.locator('#messages .message', { hasText: text })
        await message.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
        return message
      }
      const first = await say('before the drop')
      const onGrace = (text: string) => gracePage.locator('#messages .message', { hasText: text })
      await onGrace('before the drop').waitFor({ state: 'visible', timeout: UI_TIMEOUT })

      // Grace's network goes: her stream drops (the page says so).
      await graceContext.setOffline(true)
      await expect.poll(() => liveStatus(gracePage), { timeout: UI_TIMEOUT }).toBe('offline')

      // Meanwhile Ada sends, edits, reacts and creates a channel.
      await say('while you were away')
      const firstId = await first.getAttribute('data-id')
      const editing = adaPage.locator(`#messages .message[data-id="${firstId}"]`)
      await editing.hover()
      await editing.locator('.act', { hasText: 'edit' }).click()
      await editing.locator('.edit-input').fill('before the drop, and edited')
      await editing.locator('.edit-form button').click()
      const edited = adaPage.locator('#messages .message', { hasText: 'and edited' })
      await edited.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await edited.hover()
      await edited.locator('.act', { hasText: '👍' }).click()
      await expect
        .poll(() => edited.locator('.reaction.me').textContent(), { timeout: UI_TIMEOUT })
        .toBe('👍 1')
      await adaPage.locator('#channel-name').fill('news')
      await adaPage.locator('#create-channel').click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# news')
      // Nothing of it reached Grace's page while she was offline.
      expect(await onGrace('while you were away').count()).toBe(0)
      expect(await gracePage.locator('#channels button', { hasText: '# news' }).count()).toBe(0)
      await shot(gracePage, '1-offline')

      // Back online: the page resumes from its last event id and applies every
      // change once, without a click.
      await graceContext.setOffline(false)
      await expect.poll(() => liveStatus(gracePage), { timeout: UI_TIMEOUT }).toBe('live')
      await onGrace('while you were away').waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      const editedOnGrace = onGrace('before the drop, and edited')
      await editedOnGrace.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await expect
        .poll(() => editedOnGrace.locator('.reaction').textContent(), { timeout: UI_TIMEOUT })
        .toBe('👍 1')
      expect(await editedOnGrace.locator('.edited').count()).toBe(1)
      await gracePage
        .locator('#channels button', { hasText: '# news' })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      expect(await onGrace('while you were away').count()).toBe(1)
      expect(await gracePage.locator('#messages .message').count()).toBe(2)
      expect(await title(gracePage)).toBe('# general')
      await shot(gracePage, '2-resumed')

      // Live again: a channel Ada creates now appears on Grace's page at once.
      await adaPage.locator('#channel-name').fill('later')
      await adaPage.locator('#create-channel').click()
      await gracePage
        .locator('#channels button', { hasText: '# later' })
        .waitFor({ state: 'visible', timeout: UI_TIMEOUT })
    } finally {
      await adaContext.close()
      await graceContext.close()
    }
  }, 240_000)

  it('administration from the page: a private channel and its member, a read-only channel, a moderator role', async () => {
    const ada = `ada_${randomBytes(4).toString('hex')}`
    const grace = `grace_${randomBytes(4).toString('hex')}`
    const adaContext = await browser.newContext({ viewport: { width: 1200, height: 800 } })
    const graceContext = await browser.newContext({ viewport: { width: 1200, height: 800 } })
    try {
      const adaPage = await adaContext.newPage()
      const gracePage = await graceContext.newPage()
      await signUp(adaPage, ada)
      await adaPage.locator('#guild-name').fill('Admin guild')
      await adaPage.locator('#create-guild').click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# general')
      await adaPage.locator('#channel-name').fill('secret')
      await adaPage.locator('#channel-private').check()
      await adaPage.locator('#create-channel').click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('🔒 secret')

      const link = await inviteLink(adaPage)
      await signUp(gracePage, grace)
      await gracePage.locator('#join-id').fill(link)
      await gracePage.locator('#join-guild').click()
      await expect.poll(() => title(gracePage), { timeout: UI_TIMEOUT }).toBe('# general')
      const graceChannels = () => gracePage.locator('#channels button .name').allTextContents()
      expect(await graceChannels()).toEqual(['# general'])
      // Grace may not manage #general: no settings bar for her.
      expect(await gracePage.locator('#channel-settings').isHidden()).toBe(true)

      // Ada adds Grace to the private channel; Grace sees it once her list reloads.
      await adaPage.locator('#members li', { hasText: grace }).waitFor({ timeout: UI_TIMEOUT })
      await adaPage.locator('#private-controls').waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await adaPage.locator('#add-member-select').selectOption({ label: grace })
      await adaPage.locator('#add-member').click()
      await expect
        .poll(() => adaPage.locator('#add-member').textContent(), { timeout: UI_TIMEOUT })
        .toBe('added ✓')
      await gracePage.locator('#guilds button', { hasText: 'Admin guild' }).click()
      await expect.poll(graceChannels, { timeout: UI_TIMEOUT }).toEqual(['# general', '🔒 secret'])
      await adaPage.screenshot({ path: join(OUTPUT, 'chat-admin-private.png') })

      // Ada makes #general read-only: Grace's send is refused, nothing posted.
      await adaPage.locator('#channels button', { hasText: '# general' }).click()
      await expect.poll(() => title(adaPage), { timeout: UI_TIMEOUT }).toBe('# general')
      await adaPage.locator('#read-only-toggle').click()
      await expect
        .poll(() => adaPage.locator('#read-only-toggle').textContent(), { timeout: UI_TIMEOUT })
        .toBe('allow everyone to send')
      await gracePage.locator('#composer-input').fill('can I post?')
      await gracePage.locator('#send').click()
      await expect
        .poll(() => gracePage.locator('#chat-error').textContent(), { timeout: UI_TIMEOUT })
        .toBe('missing permission')
      expect(
        await gracePage.locator('#messages .message', { hasText: 'can I post?' }).count(),
      ).toBe(0)
      await gracePage.screenshot({ path: join(OUTPUT, 'chat-admin-read-only.png') })
      await adaPage.locator('#read-only-toggle').click()
      await expect
        .poll(() => adaPage.locator('#read-only-toggle').textContent(), { timeout: UI_TIMEOUT })
        .toBe('make read-only')

      // A moderator role for Grace: then she may pin Ada's message.
      await adaPage.locator('#role-name').fill('mods')
      await adaPage.locator('#create-role').click()
      const graceRow = adaPage.locator('#members li', { hasText: grace })
      await graceRow.locator('.assign-role').waitFor({ timeout: UI_TIMEOUT })
      await graceRow.locator('select').selectOption({ label: 'mods' })
      await graceRow.locator('.assign-role').click()
      await expect
        .poll(() => graceRow.locator('.assign-role').textContent(), { timeout: UI_TIMEOUT })
        .toBe('given ✓')
      await adaPage.locator('#composer-input').fill('pin me, moderator')
      await adaPage.locator('#send').click()
      const onGrace = gracePage.locator('#messages .message', { hasText: 'pin me, moderator' })
      await onGrace.waitFor({ state: 'visible', timeout: UI_TIMEOUT })
      await onGrace.hover()
      await onGrace.locator('.act', { hasText: 'pin' }).click()
      await expect
        .poll(() => onGrace.getAttribute('class'), { timeout: UI_TIMEOUT })
        .toContain('pinned')
      await adaPage.screenshot({ path: join(OUTPUT, 'chat-admin-roles.png') })
    } finally {
      await adaContext.close()
      await graceContext.close()
    }
  }, 240_000)

  it('at 390 px wide the page fits (one column, no sideways scrolling); a username with a space is refused', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } })
    try {
      const page = await context.newPage()
      page.setDefaultTimeout(UI_TIMEOUT)
      await page.goto(`${service.url}/`)
      await page.locator('#auth-username').fill('ada lovelace')
      await page.locator('#auth-password').fill(PASSWORD)
      await page.locator('#signup').click()
      await expect
        .poll(() => page.locator('#auth-error').textContent(), { timeout: UI_TIMEOUT })
        .toBe('username must not contain spaces (mentions are written @name)')
      await page.screenshot({ path: join(OUTPUT, 'chat-mobile-signup.png') })

      const name = `phone_${randomBytes(4).toString('hex')}`
      await signUp(page, name)
      await page.locator('#guild-name').fill('Pocket guild')
      await page.locator('#create-guild').click()
      await expect.poll(() => title(page), { timeout: UI_TIMEOUT }).toBe('# general')
      await page.locator('#composer-input').fill(`a long line ${'without-breaks-'.repeat(20)}`)
      await page.locator('#send').click()
      await page.locator('#messages .message').first().waitFor({ state: 'visible' })
      const layout = await page.evaluate(() => {
        // In the page: the DOM's document (this file is type-checked without the DOM lib).
        const doc = (globalThis as unknown as { document: PageDocument }).document
        const box = (id: string) => doc.getElementById(id)?.getBoundingClientRect()
        return {
          scrollWidth: doc.documentElement.scrollWidth,
          sidebar: box('sidebar'),
          main: box('main'),
          search: box('search'),
        }
      })
      expect(layout.scrollWidth).toBeLessThanOrEqual(390)
      // One column: each part spans the width, the chat below the sidebar, search below the chat.
      for (const part of [layout.sidebar, layout.main, layout.search]) {
        expect(part?.width).toBeGreaterThan(350)
        expect(part?.right).toBeLessThanOrEqual(390)
      }
      expect(layout.main?.top ?? 0).toBeGreaterThanOrEqual(layout.sidebar?.bottom ?? Infinity)
      expect(layout.search?.top ?? 0).toBeGreaterThanOrEqual(layout.main?.bottom ?? Infinity)
      await page.screenshot({ path: join(OUTPUT, 'chat-mobile.png'), fullPage: true })
    } finally {
      await context.close()
    }
  }, 120_000)

  it('a wrong password shows the error on the page and logs nobody in', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      page.setDefaultTimeout(UI_TIMEOUT)
      await page.goto(`${service.url}/`)
      await page.locator('#auth-username').fill(`nobody_${randomBytes(4).toString('hex')}`)
      await page.locator('#auth-password').fill('wrong password!')
      await page.locator('#login').click()
      await expect
        .poll(() => page.locator('#auth-error').textContent(), { timeout: UI_TIMEOUT })
        .toBe('wrong username or password')
      expect(await page.locator('#chat-view').isHidden()).toBe(true)
      expect(await page.evaluate(() => sessionStorage.getItem('token'))).toBeNull()
    } finally {
      await context.close()
    }
  }, 120_000)
})
