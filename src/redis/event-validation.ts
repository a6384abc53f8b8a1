import { InvalidInputError } from '../errors/index.ts'
import { decodeEnvelope, encodeEnvelope, MalformedPayloadError } from './codec.ts'

/** A reason an event is not well-formed (no values in it). */
export type Problem = string | undefined

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const isId = (value: unknown): value is string => typeof value === 'string' && value.length > 0

/** Checks the required fields of a message carried by an event. */
export function messageProblem(message: unknown): Problem {
  if (!isObject(message)) return 'message must be an object'
  for (const field of ['id', 'channel_id', 'author_id'] as const) {
    if (!isId(message[field])) return `message.${field} must be a non-empty string`
  }
  if (typeof message.content !== 'string') return 'message.content must be a string'
  if (message.reply_to !== null && !isId(message.reply_to)) {
    return 'message.reply_to must be a string or null'
  }
  if (!(message.created_at instanceof Date)) return 'message.created_at must be a Date'
  if (message.edited_at !== null && !(message.edited_at instanceof Date)) {
    return 'message.edited_at must be a Date or null'
  }
  return undefined
}

/** Checks a channel event's shape and that it belongs to `channel_id`. */
export function channelEventProblem(event: unknown, channel_id: string): Problem {
  if (!isObject(event)) return 'event must be an object'
  switch (event.type) {
    case 'message_created':
    case 'message_updated': {
      const problem = messageProblem(event.message)
      if (problem) return problem
      if ((event.message as { channel_id: unknown }).channel_id !== channel_id) {
        return 'message.channel_id must be the channel it is published on'
      }
      return undefined
    }
    case 'message_deleted':
      if (!isId(event.message_id)) return 'message_id must be a non-empty string'
      break
    case 'typing':
      if (!isId(event.user_id)) return 'user_id must be a non-empty string'
      break
    default:
      return 'event.type is not a known channel event type'
  }
  if (event.channel_id !== channel_id) return 'channel_id must be the channel it is published on'
  return undefined
}

const STATUSES = new Set(['online', 'away', 'busy', 'offline'])

/** Checks a presence event's shape. */
export function presenceEventProblem(event: unknown): Problem {
  if (!isObject(event)) return 'event must be an object'
  if (event.type !== 'presence') return "event.type must be 'presence'"
  if (!isId(event.user_id)) return 'user_id must be a non-empty string'
  if (typeof event.status !== 'string' || !STATUSES.has(event.status)) {
    return 'status must be online, away, busy or offline'
  }
  return undefined
}

/** Checks a global event's shape. */
export function globalEventProblem(event: unknown): Problem {
  if (!isObject(event)) return 'event must be an object'
  if (typeof event.type !== 'string' || event.type.length === 0) {
    return 'event.type must be a non-empty string'
  }
  return undefined
}

/**
 * Encodes an event for PUBLISH after checking it.
 *
 * @throws {InvalidInputError} When `problem` reports one, or the event cannot be encoded.
 */
export function encodeEvent(event: unknown, problem: Problem): string {
  if (problem) throw new InvalidInputError(problem, { field: 'event' })
  return encodeEnvelope('event', event)
}

/**
 * A decoder for the subscription registry: envelope, revival, then the shape check.
 *
 * @throws {MalformedPayloadError} When any of them fails.
 */
export function eventDecoder(check: (event: unknown) => Problem): (raw: string) => unknown {
  return (raw) => {
    const event = decodeEnvelope(raw, 'event')
    const problem = check(event)
    if (problem) throw new MalformedPayloadError(problem)
    return event
  }
}
