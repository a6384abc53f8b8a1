/**
 * Replaces the password of a connection URL with `***` (and the value of query
 * parameters named like a secret); anything unparsable becomes `[redacted]`.
 * A URL without a password is returned as it is.
 *
 * @example
 * ```ts
 * redactUrl('postgres://app:s3cret@db:5432/chat') // 'postgres://app:***@db:5432/chat'
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass|secret|key|token/i.test(key)) parsed.searchParams.set(key, '***')
    }
    return parsed.toString()
  } catch {
    return '[redacted]'
  }
}

const URL_IN_TEXT = /\b(?:postgres|postgresql|redis|rediss):\/\/[^\s"'<>]+/gi

/**
 * Redacts every connection URL found in `text` by parsing it ({@link redactUrl}); the
 * rest of the text is left exactly as it is. The CLI's last guard on what it prints:
 * it never searches for a password's characters, so it cannot corrupt other words.
 *
 * @example
 * ```ts
 * redactUrlsIn('cannot reach postgres://app:pw@db/chat') // 'cannot reach postgres://app:***@db/chat'
 * ```
 */
export const redactUrlsIn = (text: string): string =>
  text.replace(URL_IN_TEXT, (url) => redactUrl(url))
