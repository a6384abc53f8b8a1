import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { codePointLength } from './validate.ts'

/** Longest Unicode emoji sequence accepted, in code points (the longest RGI sequences have 10). */
export const MAX_UNICODE_EMOJI_CODE_POINTS = 32

/** One RGI emoji (Unicode's recommended set: flags, keycaps, ZWJ sequences, skin tones). */
const RGI_EMOJI = /^\p{RGI_Emoji}$/v
/**
 * A well-formed emoji sequence that may be newer than this runtime's Unicode
 * data: pictographs (emoji presentation, or followed by VS16), each with an
 * optional skin-tone modifier, joined by ZWJ.
 */
const EMOJI_SEQUENCE =
  /^(?:\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F)\p{Emoji_Modifier}?(?:\u200D(?:\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F?)\p{Emoji_Modifier}?)*$/u
/** A custom emoji reference: `name:id`, `<name:id>`, `<:name:id>` or `<a:name:id>`; id a UUID or a numeric snowflake. */
const CUSTOM_EMOJI =
  /^(?:<(?:a?:)?([A-Za-z0-9_]{2,32}):([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9]{1,20})>|([A-Za-z0-9_]{2,32}):([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9]{1,20}))$/

/**
 * A variation selector 16 (U+FE0F) after a character whose default
 * presentation is already emoji: redundant (Unicode's emoji variation rules),
 * so dropped. After a character with default text presentation (`❤`, `#`,
 * `🏳`) it is what makes the emoji, so kept. Migration 0009's
 * `guildstore_canonical_emoji` applies the same rule in SQL, with the
 * `Emoji_Presentation` ranges of this runtime written out
 * (test/messages/emoji-canonical.test.ts compares the two).
 */
const REDUNDANT_VS16 = /(\p{Emoji_Presentation})\uFE0F/gu

/** A custom emoji id: a UUID in lower case, a decimal one without leading zeros. */
function canonicalCustomId(id: string): string {
  return /^[0-9]+$/.test(id) ? id.replace(/^0+(?=[0-9])/, '') : id.toLowerCase()
}

/**
 * Validates a reaction emoji and returns its stored form, the one canonical
 * spelling of that emoji (so two spellings are never two reactions).
 *
 * - A Unicode emoji: one emoji sequence (an RGI emoji, or a well-formed
 *   pictograph / ZWJ sequence), at most 32 code points; stored without
 *   redundant variation selectors (`👍\uFE0F` is stored `👍`: U+FE0F only
 *   where the character before it has default text presentation), and a
 *   pictograph missing its emoji variation selector (`❤`) is stored fully
 *   qualified (`❤️`).
 * - A custom emoji reference: `name:id`, `<name:id>`, `<:name:id>` or
 *   `<a:name:id>`, the name 2–32 of `A-Z a-z 0-9 _`, the id a UUID or a decimal
 *   snowflake of up to 20 digits; stored as `name:id` (a UUID in lower case, a
 *   decimal id without leading zeros), so every spelling of one custom emoji
 *   is the same reaction.
 *
 * @throws {InvalidInputError} (field `emoji`) for anything else.
 * @example
 * ```ts
 * normalizeEmoji('👍🏽')                // '👍🏽'
 * normalizeEmoji('👍\uFE0F')           // '👍'
 * normalizeEmoji('<a:party:000123>')  // 'party:123'
 * ```
 */
export function normalizeEmoji(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 80) {
    throw new InvalidInputError(
      'emoji must be a Unicode emoji or a custom emoji reference name:id',
      {
        field: 'emoji',
      },
    )
  }
  const custom = CUSTOM_EMOJI.exec(value)
  if (custom) {
    const name = (custom[1] ?? custom[3]) as string
    const id = (custom[2] ?? custom[4]) as string
    return `${name}:${canonicalCustomId(id)}`
  }
  if (value.isWellFormed() && codePointLength(value) <= MAX_UNICODE_EMOJI_CODE_POINTS) {
    // Validated as sent, then canonical: dropping a redundant U+FE0F keeps a
    // valid sequence valid, and leaves none behind (valid sequences never hold
    // two in a row).
    if (RGI_EMOJI.test(value) || EMOJI_SEQUENCE.test(value)) {
      return value.replace(REDUNDANT_VS16, '$1')
    }
    // A pictograph sent without its emoji variation selector (`❤` for `❤️`):
    // the fully-qualified form, so both spellings are one reaction.
    const qualified = `${value}\uFE0F`
    if (RGI_EMOJI.test(qualified)) return qualified
  }
  throw new InvalidInputError('emoji must be a Unicode emoji or a custom emoji reference name:id', {
    field: 'emoji',
  })
}
