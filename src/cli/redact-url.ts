/**
 * Replaces the password of a connection URL with `***`; anything unparsable becomes `[redacted]`.
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

/**
 * Makes a function that removes a URL's password (raw and percent-decoded) from any text,
 * a last guard on everything the CLI writes.
 *
 * @example
 * ```ts
 * const scrub = secretScrubber('postgres://app:s3cret@db/chat')
 * scrub('failed for s3cret') // 'failed for ***'
 * ```
 */
export function secretScrubber(url: string | undefined): (text: string) => string {
  const secrets = new Set<string>()
  if (url) {
    try {
      const parsed = new URL(url)
      if (parsed.password) {
        secrets.add(parsed.password)
        secrets.add(decodeURIComponent(parsed.password))
      }
    } catch {
      // Not a URL: nothing to scrub but the string itself.
    }
    secrets.add(url)
  }
  const list = [...secrets].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length)
  return (text) => list.reduce((out, secret) => out.split(secret).join('***'), text)
}
