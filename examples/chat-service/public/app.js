// The chat page of the example service: plain JavaScript, no build step.
// It talks to the JSON API of server.ts with a bearer token kept in
// sessionStorage, and reads live events from /channels/:id/events (server-sent
// events, read with fetch so the token goes in a header, never in the URL).
// Unread and mention badges come from /guilds/:id/read-states; the open
// channel is marked read through /channels/:id/read.

const $ = (id) => document.getElementById(id)
const PAGE = 50
/** How often the badges of the channels not open are refreshed. */
const READ_STATES_MS = 5000

const state = {
  token: sessionStorage.getItem('token'),
  userId: sessionStorage.getItem('userId'),
  guildId: undefined,
  channelId: undefined,
  oldestId: undefined,
  reachedStart: false,
  loadingOlder: false,
  shown: new Set(),
  users: new Map(),
  stream: undefined,
  readStatesSeq: 0,
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
  $('me').textContent = user.display_name || user.username
  $('auth-view').hidden = true
  $('chat-view').hidden = false
  clearInterval(state.readStatesTimer)
  state.readStatesTimer = setInterval(() => refreshReadStates().catch(() => {}), READ_STATES_MS)
  await loadGuilds()
}

async function loadGuilds(select) {
  const { guilds } = await api('GET', '/guilds')
  $('guilds').replaceChildren(
    ...guilds.map((guild) =>
      el(
        'li',
        {},
        el('button', {
          type: 'button',
          textContent: guild.name,
          className: guild.id === state.guildId ? 'active' : '',
          onclick: () => openGuild(guild.id).catch((e) => showError('chat-error', e)),
        }),
      ),
    ),
  )
  const next = select ?? state.guildId ?? guilds[0]?.id
  if (next) await openGuild(next)
}

async function openGuild(guildId, channelId) {
  state.guildId = guildId
  for (const button of $('guilds').querySelectorAll('button')) button.classList.remove('active')
  const { channels } = await api('GET', `/guilds/${guildId}/channels`)
  $('guild-panel').hidden = false
  $('invite-code').textContent = guildId
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
          el('span', { className: 'name', textContent: `# ${channel.name}` }),
          el('span', { className: 'badge mention', hidden: true, title: 'mentions' }),
          el('span', { className: 'badge unread', hidden: true, title: 'unread messages' }),
        ),
      ),
    ),
  )
  const target = channels.find((c) => c.id === channelId) ?? channels[0]
  if (target) await openChannel(target)
  else await refreshReadStates()
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
    const guildId = $('join-id').value.trim()
    await api('POST', `/guilds/${encodeURIComponent(guildId)}/join`)
    $('join-id').value = ''
    await loadGuilds(guildId)
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
    })
    $('channel-name').value = ''
    await openGuild(state.guildId, channel.id)
  } catch (e) {
    showError('chat-error', e)
  }
})

// --- history, infinite scroll, sending ----------------------------------------

async function renderMessage(message, fresh) {
  const time = new Date(message.created_at)
  return el(
    'div',
    { className: fresh ? 'message new' : 'message', dataset: { id: message.id } },
    el('time', { dateTime: time.toISOString(), textContent: time.toLocaleTimeString() }),
    el('span', { className: 'author', textContent: await userName(message.author_id) }),
    el('span', { className: 'content', textContent: message.content }),
  )
}

async function openChannel(channel) {
  state.channelId = channel.id
  state.oldestId = undefined
  state.reachedStart = false
  state.shown = new Set()
  for (const button of $('channels').querySelectorAll('button')) {
    button.classList.toggle('active', button.dataset.channelId === channel.id)
  }
  $('channel-title').textContent = `# ${channel.name}`
  $('messages').replaceChildren()
  $('composer').hidden = false
  // Subscribe first, then read history: nothing posted in between is missed
  // (the two overlap at most, and `shown` drops duplicates).
  await listen(channel.id)
  await loadOlder()
  const box = $('messages')
  box.scrollTop = box.scrollHeight
  if (channel.id === state.channelId) await markShownRead()
}

async function loadOlder() {
  if (state.loadingOlder || state.reachedStart || !state.channelId) return
  state.loadingOlder = true
  const channelId = state.channelId
  try {
    const query = new URLSearchParams({ limit: String(PAGE) })
    if (state.oldestId) query.set('before', state.oldestId)
    const { messages } = await api('GET', `/channels/${channelId}/messages?${query}`)
    if (channelId !== state.channelId) return
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
    state.loadingOlder = false
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

// --- live events (server-sent events over fetch) ------------------------------

function setLive(live) {
  $('live-status').textContent = live ? 'live' : 'offline'
  $('live-status').classList.toggle('live', live)
}

/** Opens the channel's event stream; resolves once the subscription stands. */
async function listen(channelId) {
  state.stream?.abort()
  const controller = new AbortController()
  state.stream = controller
  setLive(false)
  const res = await fetch(`/channels/${channelId}/events`, {
    headers: { authorization: `Bearer ${state.token}` },
    signal: controller.signal,
  })
  if (!res.ok || !res.body) throw new Error(`event stream: ${res.status}`)
  setLive(true)
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
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
        const type = lines.find((l) => l.startsWith('event: '))?.slice(7)
        const data = lines.find((l) => l.startsWith('data: '))?.slice(6)
        if (type === 'message_created' && data) await appendLive(JSON.parse(data).message)
      }
    }
  })()
    .catch(() => {})
    .finally(() => {
      if (state.stream !== controller) return
      setLive(false)
      // Reconnect after a pause, re-reading nothing: live messages resume.
      setTimeout(() => {
        if (state.stream === controller) listen(channelId).catch(() => setLive(false))
      }, 3000)
    })
}

// --- search -----------------------------------------------------------------------

$('search-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('chat-error')
  try {
    const query = new URLSearchParams({ q: $('search-input').value, limit: '25' })
    if (state.guildId) query.set('guild_id', state.guildId)
    const { messages } = await api('GET', `/search?${query}`)
    const items = await Promise.all(
      messages.map(async (m) =>
        el('li', {}, el('strong', { textContent: `${await userName(m.author_id)}: ` }), m.content),
      ),
    )
    $('search-results').replaceChildren(
      ...(items.length ? items : [el('li', { textContent: 'no matches' })]),
    )
  } catch (e) {
    showError('chat-error', e)
  }
})

if (state.token) enterChat().catch(() => logout())
