// The chat page of the example service: plain JavaScript, no build step.
// It talks to the JSON API of server.ts with a bearer token kept in
// sessionStorage, and reads every change live from /events, guildstore's change
// feed (server-sent events, read with fetch so the token goes in a header, never
// in the URL; a reconnect sends the last event's id and misses nothing).
// Unread and mention badges come from /guilds/:id/read-states; the open
// channel is marked read through /channels/:id/read. Invites are guildstore's
// (createInvite / useInvite): a link with a code, an expiry and a use limit.
// Messages carry @name mentions, reactions, pins, edits (with their history)
// and deletes; search results open the message in its channel.

const $ = (id) => document.getElementById(id)
const PAGE = 50
/** How often the badges of the channels not open are refreshed. */
const READ_STATES_MS = 5000

const state = {
  token: sessionStorage.getItem('token'),
  userId: sessionStorage.getItem('userId'),
  username: undefined,
  guildId: undefined,
  channelId: undefined,
  channel: undefined,
  oldestId: undefined,
  reachedStart: false,
  loadingOlder: false,
  shown: new Set(),
  users: new Map(),
  stream: undefined,
  eventToken: undefined,
  reconnectTimer: undefined,
  readStatesSeq: 0,
  openGen: 0,
  readStatesTimer: undefined,
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: {
      ...(state.token ? { authorization: `Bearer ${state.token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  const data = text ? JSON.parse(text) : {}
  if (res.status === 401 && state.token) logout()
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`)
  return data
}

const el = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props)
  Object.assign(node.dataset, dataset)
  node.append(...children)
  return node
}

function showError(where, error) {
  $(where).textContent = error ? String(error.message || error) : ''
}

// --- authentication ---------------------------------------------------------

async function login(username, password) {
  const session = await api('POST', '/login', { username, password })
  state.token = session.token
  state.userId = session.user_id
  sessionStorage.setItem('token', session.token)
  sessionStorage.setItem('userId', session.user_id)
  await enterChat()
}

function logout() {
  api('DELETE', '/session').catch(() => {})
  state.stream?.abort()
  clearInterval(state.readStatesTimer)
  sessionStorage.clear()
  state.token = null
  location.reload()
}

$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault()
  showError('auth-error')
  login($('auth-username').value, $('auth-password').value).catch((e) => showError('auth-error', e))
})

$('signup').addEventListener('click', async () => {
  showError('auth-error')
  const username = $('auth-username').value
  const password = $('auth-password').value
  try {
    await api('POST', '/register', { username, password })
    await login(username, password)
  } catch (e) {
    showError('auth-error', e)
  }
})

$('logout').addEventListener('click', logout)

// --- users, guilds, channels --------------------------------------------------

async function userName(id) {
  if (!state.users.has(id)) {
    state.users.set(
      id,
      api('GET', `/users/${id}`).then(
        ({ user }) => user.display_name || user.username,
        () => 'unknown',
      ),
    )
  }
  return state.users.get(id)
}

async function enterChat() {
  const { user } = await api('GET', '/me')
  state.username = user.username
  $('me').textContent = user.display_name || user.username
  $('auth-view').hidden = true
  $('chat-view').hidden = false
  clearInterval(state.readStatesTimer)
  state.readStatesTimer = setInterval(() => {
    refreshReadStates().catch(() => {})
    if (state.guildId) loadMembers(state.guildId).catch(() => {})
  }, READ_STATES_MS)
  // The feed first: whatever changes while the page loads arrives on it.
  await connectFeed()
  // An invite link (/#invite=CODE) opened before logging in is used now.
  const pending = inviteCodeOf(location.hash)
  if (pending) {
    history.replaceState(null, '', location.pathname)
    try {
      await joinWithInvite(pending)
      return
    } catch (e) {
      showError('chat-error', e)
    }
  }
  await loadGuilds()
}

/** The code of an invite link (`…/#invite=CODE`) or of a bare code; undefined otherwise. */
function inviteCodeOf(text) {
  const match = /(?:^|#invite=)([A-Za-z0-9_-]{8,64})$/.exec(String(text).trim())
  return match?.[1]
}

async function joinWithInvite(code) {
  const { guild_id } = await api('POST', `/invites/${encodeURIComponent(code)}`)
  await loadGuilds(guild_id)
}

/** Redraws the guild list; opens `select`, else the open one, else the first (unless `open` is false). */
async function loadGuilds(select, { open = true } = {}) {
  const { guilds } = await api('GET', '/guilds')
  $('guilds').replaceChildren(
    ...guilds.map((guild) =>
      el(
        'li',
        {},
        el('button', {
          type: 'button',
          textContent: guild.name,
          dataset: { guildId: guild.id },
          onclick: () => openGuild(guild.id).catch((e) => showError('chat-error', e)),
        }),
      ),
    ),
  )
  for (const button of $('guilds').querySelectorAll('button')) {
    const active = button.dataset.guildId === state.guildId
    button.classList.toggle('active', active)
    if (active) button.setAttribute('aria-current', 'true')
  }
  if (!open) return
  const next = select ?? state.guildId ?? guilds[0]?.id
  if (next) await openGuild(next)
}

async function openGuild(guildId, channelId) {
  state.guildId = guildId
  for (const button of $('guilds').querySelectorAll('button')) {
    const active = button.dataset.guildId === guildId
    button.classList.toggle('active', active)
    if (active) button.setAttribute('aria-current', 'true')
    else button.removeAttribute('aria-current')
  }
  const { channels } = await api('GET', `/guilds/${guildId}/channels`)
  $('guild-panel').hidden = false
  $('invite-result').hidden = true
  renderChannels(channels)
  await loadMembers(guildId)
  const target = channels.find((c) => c.id === channelId) ?? channels[0]
  if (target) await openChannel(target)
  else await refreshReadStates()
}

/**
 * Re-reads the open guild's channels (one was created, renamed, deleted, or the
 * user's access changed) and redraws the list, keeping the open channel open;
 * when it is gone or no longer visible, opens the first one.
 */
async function reloadChannels() {
  const guildId = state.guildId
  if (!guildId) return
  const { channels } = await api('GET', `/guilds/${guildId}/channels`)
  if (guildId !== state.guildId) return
  renderChannels(channels)
  const open = channels.find((c) => c.id === state.channelId)
  if (open) {
    $('channel-title').textContent = `${open.is_private ? '🔒' : '#'} ${open.name}`
    await refreshReadStates()
  } else if (channels[0]) await openChannel(channels[0])
  else {
    state.channelId = undefined
    $('messages').replaceChildren()
    $('composer').hidden = true
  }
}

function renderChannels(channels) {
  $('channels').replaceChildren(
    ...channels.map((channel) =>
      el(
        'li',
        {},
        el(
          'button',
          {
            type: 'button',
            dataset: { channelId: channel.id },
            onclick: () => openChannel(channel).catch((e) => showError('chat-error', e)),
          },
          el('span', {
            className: 'name',
            textContent: `${channel.is_private ? '🔒' : '#'} ${channel.name}`,
          }),
          el('span', { className: 'badge mention', hidden: true, title: 'mentions' }),
          el('span', { className: 'badge unread', hidden: true, title: 'unread messages' }),
        ),
      ),
    ),
  )
  for (const button of $('channels').querySelectorAll('button')) {
    button.classList.toggle('active', button.dataset.channelId === state.channelId)
  }
}

// --- unread and mention badges ------------------------------------------------

/** A count as a badge shows it: at the cap it means "this many or more". */
const badgeText = (count, cap) => (count >= cap ? `${cap - 1}+` : String(count))

/** Re-reads the open guild's read states and redraws the channel badges. */
async function refreshReadStates() {
  const guildId = state.guildId
  if (!guildId) return
  const seq = ++state.readStatesSeq
  const { read_states, unread_cap } = await api('GET', `/guilds/${guildId}/read-states`)
  // Only the answer to the latest request counts: an older one may predate a mark.
  if (seq !== state.readStatesSeq || guildId !== state.guildId) return
  const byChannel = new Map(read_states.map((s) => [s.channel_id, s]))
  for (const button of $('channels').querySelectorAll('button')) {
    const s = byChannel.get(button.dataset.channelId)
    const unread = s?.unread_count ?? 0
    const mentions = s?.mention_count ?? 0
    const unreadBadge = button.querySelector('.badge.unread')
    const mentionBadge = button.querySelector('.badge.mention')
    unreadBadge.hidden = unread === 0
    unreadBadge.textContent = unread ? badgeText(unread, unread_cap) : ''
    mentionBadge.hidden = mentions === 0
    mentionBadge.textContent = mentions ? `@${badgeText(mentions, unread_cap)}` : ''
    button.classList.toggle('unread', unread > 0)
  }
}

/** Marks the open channel read up to the newest message shown (when the tab is visible). */
async function markShownRead() {
  const channelId = state.channelId
  const newest = [...$('messages').querySelectorAll('.message')].at(-1)?.dataset.id
  if (channelId && newest && document.visibilityState === 'visible') {
    await api('POST', `/channels/${channelId}/read`, { message_id: newest })
  }
  await refreshReadStates()
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') markShownRead().catch(() => {})
})

$('create-guild-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  try {
    const { guild } = await api('POST', '/guilds', { name: $('guild-name').value })
    $('guild-name').value = ''
    await loadGuilds(guild.id)
  } catch (e) {
    showError('chat-error', e)
  }
})

$('join-guild-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  try {
    const code = inviteCodeOf($('join-id').value)
    if (!code) throw new Error('paste an invite link or code')
    await joinWithInvite(code)
    $('join-id').value = ''
  } catch (e) {
    showError('chat-error', e)
  }
})

$('create-channel-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  try {
    const { channel } = await api('POST', `/guilds/${state.guildId}/channels`, {
      name: $('channel-name').value,
      private: $('channel-private').checked,
    })
    $('channel-name').value = ''
    $('channel-private').checked = false
    await openGuild(state.guildId, channel.id)
  } catch (e) {
    showError('chat-error', e)
  }
})

$('invite-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  try {
    const maxAge = Number($('invite-age').value)
    const maxUses = $('invite-uses').value === '' ? null : Number($('invite-uses').value)
    const { invite } = await api('POST', `/guilds/${state.guildId}/invites`, {
      max_age_seconds: maxAge,
      max_uses: maxUses,
    })
    const link = `${location.origin}/#invite=${invite.code}`
    $('invite-link').value = link
    $('invite-meta').textContent = `expires ${formatDate(invite.expires_at)} · ${
      invite.max_uses === null
        ? 'unlimited uses'
        : `${invite.max_uses} use${invite.max_uses === 1 ? '' : 's'}`
    }`
    $('invite-result').hidden = false
    $('invite-link').select()
  } catch (e) {
    showError('chat-error', e)
  }
})

// --- members, roles, channel settings (overwrites, private channels) ------------

async function loadMembers(guildId) {
  const { members, roles } = await api('GET', `/guilds/${guildId}/members`)
  if (guildId !== state.guildId) return
  // Redrawn only when someone joined or a role was made (keeps a choice being made).
  const key = JSON.stringify([guildId, members, roles])
  if (key === state.membersKey) return
  state.membersKey = key
  state.members = members
  state.roles = roles.filter((r) => !r.is_default)
  $('members').replaceChildren(
    ...members.map((m) =>
      el(
        'li',
        { dataset: { userId: m.user_id } },
        el('span', { className: 'member-name', textContent: m.username }),
        ...(state.roles.length
          ? [
              el(
                'select',
                { className: 'role-select', ariaLabel: `role for ${m.username}` },
                ...state.roles.map((r) => el('option', { value: r.id, textContent: r.name })),
              ),
              el('button', {
                type: 'button',
                className: 'act assign-role',
                textContent: 'give role',
                onclick: (event) => {
                  const roleId = event.target.parentElement.querySelector('select').value
                  api('PUT', `/guilds/${guildId}/members/${m.user_id}/roles/${roleId}`)
                    .then(() => {
                      event.target.textContent = 'given ✓'
                    })
                    .catch((e) => showError('chat-error', e))
                },
              }),
            ]
          : []),
      ),
    ),
  )
  $('add-member-select').replaceChildren(
    ...members.map((m) => el('option', { value: m.user_id, textContent: m.username })),
  )
}

async function loadSettings(channelId) {
  const settings = await api('GET', `/channels/${channelId}/settings`)
  if (channelId !== state.channelId) return
  state.readOnly = settings.read_only
  $('channel-settings').hidden = !settings.can_manage
  $('read-only-toggle').textContent = settings.read_only
    ? 'allow everyone to send'
    : 'make read-only'
  $('private-controls').hidden = !settings.is_private
  $('composer-input').placeholder = settings.read_only ? 'Message (read-only channel)' : 'Message'
}

$('read-only-toggle').addEventListener('click', async () => {
  showError('chat-error')
  try {
    await api('PUT', `/channels/${state.channelId}/read-only`, { read_only: !state.readOnly })
    await loadSettings(state.channelId)
  } catch (e) {
    showError('chat-error', e)
  }
})

$('add-member').addEventListener('click', async () => {
  showError('chat-error')
  try {
    await api('PUT', `/channels/${state.channelId}/members/${$('add-member-select').value}`)
    $('add-member').textContent = 'added ✓'
    setTimeout(() => {
      $('add-member').textContent = 'add to channel'
    }, 1500)
  } catch (e) {
    showError('chat-error', e)
  }
})

$('role-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  try {
    await api('POST', `/guilds/${state.guildId}/roles`, {
      name: $('role-name').value,
      manage_messages: $('role-manage-messages').checked,
    })
    $('role-name').value = ''
    await loadMembers(state.guildId)
  } catch (e) {
    showError('chat-error', e)
  }
})

// --- history, infinite scroll, sending ----------------------------------------

const pad = (n) => String(n).padStart(2, '0')
/** A date as the page shows it, in the viewer's time zone: `2026-12-07 14:05`. */
function formatDate(value) {
  if (!value) return 'never'
  const d = new Date(value)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** The content with each `@name` as a mention; the viewer's own name stands out. */
function contentNodes(content) {
  const nodes = []
  let last = 0
  for (const match of content.matchAll(/(?<![\p{L}\p{N}_])@([^\s@]{2,40})/gu)) {
    const name = match[1].replace(/[.,!?:;)\]}'"]+$/u, '')
    const start = match.index
    const end = start + 1 + name.length
    nodes.push(content.slice(last, start))
    const mine = state.username && name.toLowerCase() === state.username.toLowerCase()
    nodes.push(el('span', { className: mine ? 'mention me' : 'mention', textContent: `@${name}` }))
    last = end
  }
  nodes.push(content.slice(last))
  return nodes
}

const QUICK_EMOJIS = ['👍', '❤️', '😂', '🎉']
/** Reaction counts and pins of shown messages, by message id. */
const decorations = { reactions: new Map(), pinned: new Set() }

function remember({ reactions = [], pinned = [] }, messageIds) {
  for (const id of messageIds) {
    decorations.reactions.set(id, [])
    decorations.pinned.delete(id)
  }
  for (const r of reactions) decorations.reactions.get(r.message_id)?.push(r)
  for (const id of pinned) decorations.pinned.add(id)
}

async function renderMessage(message, fresh) {
  const mine = message.author_id === state.userId
  const reactions = decorations.reactions.get(message.id) ?? []
  const pinned = decorations.pinned.has(message.id)
  const act = (label, title, onclick) =>
    el('button', {
      type: 'button',
      className: 'act',
      textContent: label,
      title,
      onclick: () => onclick().catch((e) => showError('chat-error', e)),
    })
  return el(
    'div',
    {
      className: ['message', fresh ? 'new' : '', pinned ? 'pinned' : ''].filter(Boolean).join(' '),
      dataset: { id: message.id },
    },
    el(
      'div',
      { className: 'meta' },
      el('time', {
        dateTime: new Date(message.created_at).toISOString(),
        textContent: formatDate(message.created_at),
      }),
      el('span', { className: 'author', textContent: await userName(message.author_id) }),
      ...(pinned ? [el('span', { className: 'pin-mark', textContent: '📌 pinned' })] : []),
      ...(message.edited_at
        ? [
            el('button', {
              type: 'button',
              className: 'edited link',
              textContent: '(edited)',
              title: `edited ${formatDate(message.edited_at)}: show earlier versions`,
              onclick: () => toggleHistory(message.id).catch((e) => showError('chat-error', e)),
            }),
          ]
        : []),
      el(
        'span',
        { className: 'actions' },
        ...QUICK_EMOJIS.map((emoji) =>
          act(emoji, `react ${emoji}`, () => react(message.id, emoji, true)),
        ),
        act(pinned ? 'unpin' : 'pin', pinned ? 'unpin this message' : 'pin this message', () =>
          pin(message.id, !pinned),
        ),
        ...(mine
          ? [
              act('edit', 'edit your message', async () => startEdit(message)),
              act('delete', 'delete your message', () => remove(message.id)),
            ]
          : []),
      ),
    ),
    el('div', { className: 'content' }, ...contentNodes(message.content)),
    el(
      'div',
      { className: 'reactions' },
      ...reactions.map((r) =>
        el('button', {
          type: 'button',
          className: r.me ? 'reaction me' : 'reaction',
          textContent: `${r.emoji} ${r.count}`,
          title: r.me ? 'remove your reaction' : 'react too',
          onclick: () => react(message.id, r.emoji, !r.me).catch((e) => showError('chat-error', e)),
        }),
      ),
    ),
  )
}

/** Re-reads one message (content, reactions, pins) and redraws it where it is. */
async function refreshMessage(messageId) {
  const node = $('messages').querySelector(`.message[data-id="${messageId}"]`)
  // Not shown, or being edited here (saving redraws it).
  if (!node || node.querySelector('.edit-form')) return
  const data = await api('GET', `/messages/${messageId}`).catch(() => undefined)
  if (!data) {
    node.remove()
    return
  }
  remember(data, [messageId])
  const history = node.querySelector('.history')
  const fresh = await renderMessage(data.message, false)
  if (history) fresh.append(history)
  node.replaceWith(fresh)
}

async function react(messageId, emoji, add) {
  await api(add ? 'PUT' : 'DELETE', `/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`)
  await refreshMessage(messageId)
}

async function pin(messageId, on) {
  await api(on ? 'PUT' : 'DELETE', `/messages/${messageId}/pin`)
  await refreshMessage(messageId)
}

async function remove(messageId) {
  await api('DELETE', `/messages/${messageId}`)
  $('messages').querySelector(`.message[data-id="${messageId}"]`)?.remove()
}

function startEdit(message) {
  const node = $('messages').querySelector(`.message[data-id="${message.id}"]`)
  const content = node?.querySelector('.content')
  if (!content) return
  const input = el('input', { className: 'edit-input', value: message.content, maxLength: 4000 })
  const form = el(
    'form',
    { className: 'edit-form row' },
    input,
    el('button', { type: 'submit', textContent: 'Save' }),
  )
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    try {
      await api('PATCH', `/messages/${message.id}`, { content: input.value })
      form.remove()
      await refreshMessage(message.id)
    } catch (e) {
      showError('chat-error', e)
    }
  })
  content.replaceWith(form)
  input.focus()
}

async function toggleHistory(messageId) {
  const node = $('messages').querySelector(`.message[data-id="${messageId}"]`)
  const open = node?.querySelector('.history')
  if (open) {
    open.remove()
    return
  }
  const { edits } = await api('GET', `/messages/${messageId}/edits`)
  node?.append(
    el(
      'ol',
      { className: 'history' },
      ...edits.map((e) =>
        el(
          'li',
          {},
          el('time', { textContent: `until ${formatDate(e.replaced_at)}` }),
          ` ${e.content}`,
        ),
      ),
    ),
  )
}

async function openChannel(channel) {
  // A newer opening makes an older one's pages stale (they are dropped).
  state.openGen += 1
  state.loadingOlder = false
  state.channel = channel
  state.channelId = channel.id
  state.oldestId = undefined
  state.reachedStart = false
  state.shown = new Set()
  for (const button of $('channels').querySelectorAll('button')) {
    button.classList.toggle('active', button.dataset.channelId === channel.id)
  }
  $('channel-title').textContent = `${channel.is_private ? '🔒' : '#'} ${channel.name}`
  loadSettings(channel.id).catch((e) => showError('chat-error', e))
  $('messages').replaceChildren()
  $('composer').hidden = false
  // The feed stands (connectFeed ran first), so nothing posted while the
  // history loads is missed (the two overlap at most; `shown` drops duplicates).
  await loadOlder()
  const box = $('messages')
  box.scrollTop = box.scrollHeight
  if (channel.id === state.channelId) await markShownRead()
}

async function loadOlder() {
  if (state.loadingOlder || state.reachedStart || !state.channelId) return
  state.loadingOlder = true
  const channelId = state.channelId
  const gen = state.openGen
  try {
    const query = new URLSearchParams({ limit: String(PAGE) })
    if (state.oldestId) query.set('before', state.oldestId)
    const page = await api('GET', `/channels/${channelId}/messages?${query}`)
    const { messages } = page
    if (channelId !== state.channelId || gen !== state.openGen) return
    remember(
      page,
      messages.map((m) => m.id),
    )
    if (messages.length < PAGE) state.reachedStart = true
    const fresh = messages.filter((m) => !state.shown.has(m.id))
    for (const m of fresh) state.shown.add(m.id)
    if (messages.length) state.oldestId = messages.at(-1).id
    const nodes = await Promise.all(fresh.reverse().map((m) => renderMessage(m, false)))
    const box = $('messages')
    const fromBottom = box.scrollHeight - box.scrollTop
    box.querySelector('.more')?.remove()
    box.prepend(
      el('div', {
        className: 'more',
        textContent: state.reachedStart ? 'start of the channel' : 'scroll up for more',
      }),
      ...nodes,
    )
    box.scrollTop = box.scrollHeight - fromBottom
  } finally {
    if (gen === state.openGen) state.loadingOlder = false
  }
}

$('messages').addEventListener('scroll', () => {
  if ($('messages').scrollTop < 80) loadOlder().catch((e) => showError('chat-error', e))
})

async function appendLive(message) {
  if (message.channel_id !== state.channelId || state.shown.has(message.id)) return
  state.shown.add(message.id)
  const box = $('messages')
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40
  box.append(await renderMessage(message, true))
  if (atBottom) box.scrollTop = box.scrollHeight
  markShownRead().catch(() => {})
}

$('composer').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  const input = $('composer-input')
  const content = input.value
  if (!content.trim()) return
  try {
    const { message } = await api('POST', `/channels/${state.channelId}/messages`, { content })
    input.value = ''
    await appendLive(message)
    $('messages').scrollTop = $('messages').scrollHeight
  } catch (e) {
    showError('chat-error', e)
  }
})

// --- live events: the change feed (server-sent events over fetch) -------------

function setLive(live) {
  $('live-status').textContent = live ? 'live' : 'offline'
  $('live-status').classList.toggle('live', live)
}

/** Runs `task` once per animation-free tick however often it is asked for (coalesces refreshes). */
function coalesced(task) {
  let pending
  return () => {
    pending ??= Promise.resolve()
      .then(() => new Promise((resolve) => setTimeout(resolve, 50)))
      .then(() => {
        pending = undefined
        return task()
      })
      .catch((e) => showError('chat-error', e))
    return pending
  }
}

const refreshChannelsSoon = coalesced(() => reloadChannels())
const refreshReadStatesSoon = coalesced(() => refreshReadStates())
// A bulk insert into the open channel (messages_imported): its messages may
// belong anywhere in the history (an import keeps their times), so the channel
// is opened again from its newest page rather than appended to.
const reopenChannelSoon = coalesced(
  () => state.channel?.id === state.channelId && openChannel(state.channel),
)
const refreshMembersSoon = coalesced(() => state.guildId && loadMembers(state.guildId))
const refreshGuildsSoon = coalesced(() => loadGuilds())
const refreshGuildListSoon = coalesced(() => loadGuilds(undefined, { open: false }))
const refreshingMessages = new Map()
const refreshMessageSoon = (id) => {
  if (!refreshingMessages.has(id)) {
    refreshingMessages.set(
      id,
      coalesced(() => {
        refreshingMessages.delete(id)
        return refreshMessage(id)
      }),
    )
  }
  return refreshingMessages.get(id)()
}

/** Applies one event of the feed to what the page shows. */
async function apply(type, event) {
  const here = event.channel_id && event.channel_id === state.channelId
  const inGuild = event.guild_id && event.guild_id === state.guildId
  const data = event.data ?? {}
  switch (type) {
    case 'message_created':
      if (here && data.message) await appendLive(data.message)
      else if (inGuild) refreshReadStatesSoon()
      return
    case 'messages_imported':
      if (here) reopenChannelSoon()
      else if (inGuild) refreshReadStatesSoon()
      return
    case 'message_edited':
    case 'reaction_added':
    case 'reaction_removed':
    case 'message_pinned':
    case 'message_unpinned':
      if (here) refreshMessageSoon(data.message_id)
      return
    case 'message_deleted':
    case 'message_purged':
      if (here) $('messages').querySelector(`.message[data-id="${data.message_id}"]`)?.remove()
      else if (inGuild) refreshReadStatesSoon()
      return
    case 'channel_created':
    case 'channel_updated':
    case 'channel_deleted':
    case 'overwrite_set':
    case 'overwrite_deleted':
    case 'role_updated':
    case 'role_deleted':
    case 'member_role_added':
    case 'member_role_removed':
      if (inGuild) {
        refreshChannelsSoon()
        refreshMembersSoon()
      }
      return
    case 'member_joined':
    case 'role_created':
      if (inGuild) refreshMembersSoon()
      // Joined elsewhere (another tab, an invite): the list gains it; nothing reopens.
      if (type === 'member_joined' && data.user_id === state.userId) refreshGuildListSoon()
      return
    case 'member_removed':
      if (data.user_id !== state.userId) {
        if (inGuild) refreshMembersSoon()
      } else if (inGuild) {
        // Removed from the open guild: open another.
        state.guildId = undefined
        refreshGuildsSoon()
      } else refreshGuildListSoon()
      return
    case 'read_state_updated':
      if (inGuild || !event.guild_id) refreshReadStatesSoon()
      return
    default:
  }
}

/**
 * Opens the user's change feed (GET /events) and keeps it open: after a drop
 * (network, server restart) it reconnects with the last token as
 * `Last-Event-ID`, and the server replays every change committed since, once,
 * in order. Resolves once the stream stands.
 */
async function connectFeed() {
  state.stream?.abort()
  const controller = new AbortController()
  state.stream = controller
  setLive(false)
  const res = await fetch('/events', {
    headers: {
      authorization: `Bearer ${state.token}`,
      ...(state.eventToken ? { 'last-event-id': state.eventToken } : {}),
    },
    signal: controller.signal,
  })
  if (!res.ok || !res.body) throw new Error(`event stream: ${res.status}`)
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let ready
  const opened = new Promise((resolve) => {
    ready = resolve
  })
  ;(async () => {
    let buffer = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      buffer += value
      const frames = buffer.split('\n\n')
      buffer = frames.pop()
      for (const frame of frames) {
        const lines = frame.split('\n')
        const field = (name) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2)
        const type = field('event')
        const id = field('id')
        const data = field('data')
        if (!type || data === undefined) continue
        if (type === 'ready' || type === 'resync') {
          setLive(true)
          ready()
          // Too long away (or a token from elsewhere): reload what is shown.
          if (type === 'resync' && state.eventToken) refreshGuildsSoon()
        } else {
          await apply(type, JSON.parse(data)).catch((e) => showError('chat-error', e))
        }
        if (id) state.eventToken = id
      }
    }
  })()
    .catch(() => {})
    .finally(() => {
      ready()
      if (state.stream !== controller) return
      setLive(false)
      reconnectFeedSoon(controller, 1000)
    })
  await opened
}

function reconnectFeedSoon(controller, ms) {
  clearTimeout(state.reconnectTimer)
  state.reconnectTimer = setTimeout(() => {
    if (state.stream === controller && state.token)
      connectFeed().catch(() => reconnectFeedSoon(controller, 3000))
  }, ms)
}

// Offline: the stream is as good as dead (a TCP connection may take minutes to
// notice); drop it now, so the page says so and resumes cleanly.
window.addEventListener('offline', () => state.stream?.abort())
// Back online: reconnect at once (the token resumes where the page left off).
window.addEventListener('online', () => {
  if (state.token && state.stream) reconnectFeedSoon(state.stream, 0)
})

/** Opens a message's guild and channel, loads history back to it, and highlights it. */
async function openMessage(message, channel) {
  if (channel?.guild_id && channel.guild_id !== state.guildId)
    await openGuild(channel.guild_id, channel.id)
  else if (message.channel_id !== state.channelId) {
    const button = $('channels').querySelector(`button[data-channel-id="${message.channel_id}"]`)
    if (!button) throw new Error('that channel is not in this guild')
    await openChannel({ id: message.channel_id, name: channel?.name ?? '' })
  }
  const find = () => $('messages').querySelector(`.message[data-id="${message.id}"]`)
  // Page back until the message is shown (bounded: 40 pages of 50).
  for (let i = 0; i < 40 && !find() && !state.reachedStart; i++) {
    if (state.loadingOlder) await new Promise((resolve) => setTimeout(resolve, 50))
    else await loadOlder()
  }
  const node = find()
  if (!node) throw new Error('message not found in the channel (deleted?)')
  for (const n of $('messages').querySelectorAll('.message.focus')) n.classList.remove('focus')
  node.classList.add('focus')
  node.scrollIntoView({ block: 'center' })
}

// --- search -----------------------------------------------------------------------

$('search-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  try {
    const query = new URLSearchParams({ q: $('search-input').value, limit: '25' })
    if (state.guildId) query.set('guild_id', state.guildId)
    const { messages, channels } = await api('GET', `/search?${query}`)
    const channelById = new Map(channels.map((c) => [c.id, c]))
    const items = await Promise.all(
      messages.map(async (m) => {
        const channel = channelById.get(m.channel_id)
        return el(
          'li',
          {},
          el(
            'button',
            {
              type: 'button',
              className: 'hit',
              dataset: { messageId: m.id },
              title: 'open in its channel',
              onclick: () => openMessage(m, channel).catch((e) => showError('chat-error', e)),
            },
            el('span', {
              className: 'where',
              textContent: `${channel ? `# ${channel.name}` : 'direct message'} · ${formatDate(m.created_at)}`,
            }),
            el('strong', { textContent: `${await userName(m.author_id)}: ` }),
            m.content,
          ),
        )
      }),
    )
    $('search-results').replaceChildren(
      ...(items.length ? items : [el('li', { textContent: 'no matches' })]),
    )
  } catch (e) {
    showError('chat-error', e)
  }
})

if (state.token) enterChat().catch(() => logout())
