/**
 * What keeps the review page to its operators once they are in: a signed session cookie (a
 * browser cannot send a bearer token, so an operator signs in once with the token), per-form
 * tokens against cross-site request forgery, and a same-origin check. Everything is an HMAC under
 * one key derived from the review secret. A session also carries a random id: with a decision
 * store, that id and the session's end are kept in D1 (session-store.ts), so that signing out
 * ends the session for every copy of the cookie; without one, nothing is kept server-side.
 *
 * Form tokens are HMAC(caller id, hour) — they need no JavaScript (a hidden field), no state,
 * and work with curl (GET the page, POST the field back). A token made for one operator is
 * worthless to another, and it expires with its hour window (twelve hours of grace).
 */
import { constantTimeEqual, hmacHex, hmacKey, sha256Hex } from '../hash'

/** How long a session lasts, and how long a form token stays valid. */
export const SESSION_HOURS = 12
const HOUR_MS = 3_600_000

/** The HMAC key of the review page, apart from every other use of the same secret. */
export async function reviewKey(secret: string): Promise<CryptoKey> {
  const derived = await hmacHex(await hmacKey(secret), 'rag-guard review v1')
  return hmacKey(derived)
}

const hour = (now: number) => Math.floor(now / HOUR_MS)

/** A form token for `callerId`, valid for {@link SESSION_HOURS} hours. */
export async function formToken(key: CryptoKey, callerId: string, now: number): Promise<string> {
  const window = hour(now)
  return `${window}.${await hmacHex(key, `form|${callerId}|${window}`)}`
}

/** Whether `token` is a form token made for `callerId` within the last {@link SESSION_HOURS} hours. */
export async function checkFormToken(
  key: CryptoKey,
  callerId: string,
  token: unknown,
  now: number,
): Promise<boolean> {
  if (typeof token !== 'string') return false
  const match = /^(\d{1,12})\.([0-9a-f]{64})$/.exec(token)
  if (!match) return false
  const window = Number(match[1])
  const age = hour(now) - window
  if (age < 0 || age > SESSION_HOURS) return false
  return constantTimeEqual(match[2]!, await hmacHex(key, `form|${callerId}|${window}`))
}

const toBase64Url = (text: string) =>
  btoa(String.fromCharCode(...new TextEncoder().encode(text)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')

function fromBase64Url(text: string): string | undefined {
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(
      Uint8Array.from(binary, (char) => char.charCodeAt(0)),
    )
  } catch {
    return undefined
  }
}

/** A new session id: 128 random bits as hex. */
export function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/** A session of `callerId` with the id `sessionId`: `<caller id, base64url>.<expiry ms>.<id>.<hmac>`. */
export async function sessionValue(
  key: CryptoKey,
  callerId: string,
  sessionId: string,
  now: number,
): Promise<string> {
  const payload = `${toBase64Url(callerId)}.${now + SESSION_HOURS * HOUR_MS}.${sessionId}`
  return `${payload}.${await hmacHex(key, `session|${payload}`)}`
}

/** What a valid session cookie says. */
export interface SessionClaim {
  callerId: string
  sessionId: string
  /** When the session ends by itself, in milliseconds since the epoch. */
  expires: number
}

/** The claim of a valid, unexpired session; undefined for anything else. */
export async function readSession(
  key: CryptoKey,
  value: string | undefined,
  now: number,
): Promise<SessionClaim | undefined> {
  const match =
    value && /^([A-Za-z0-9_-]{1,400})\.(\d{1,16})\.([0-9a-f]{32})\.([0-9a-f]{64})$/.exec(value)
  if (!match) return undefined
  const payload = `${match[1]}.${match[2]}.${match[3]}`
  if (!constantTimeEqual(match[4]!, await hmacHex(key, `session|${payload}`))) return undefined
  const expires = Number(match[2])
  if (expires <= now) return undefined
  const callerId = fromBase64Url(match[1]!)
  return callerId === undefined ? undefined : { callerId, sessionId: match[3]!, expires }
}

/** The caller ids the caller check gives operators' tokens (`token:<hash prefix>`). */
export async function operatorTokenIds(tokens: readonly string[]): Promise<Set<string>> {
  return new Set(
    await Promise.all(
      tokens.map(async (token) => `token:${(await sha256Hex(token)).slice(0, 12)}`),
    ),
  )
}

/**
 * Whether a request that changes something comes from a page of this origin. Browsers say so in
 * `Sec-Fetch-Site` (Fetch Metadata, which a page cannot forge); older ones only in `Origin`,
 * compared with the request's own. A client that sends neither (curl) is not a browser, and no
 * other site can lead it — the form token still has to be right. `Sec-Fetch-Site` decides when
 * present: behind `wrangler dev` (and some proxies) the Worker's URL names another host than the
 * one the browser used.
 */
export function sameOrigin(request: Request): boolean {
  const site = request.headers.get('sec-fetch-site')
  if (site !== null) return site === 'same-origin' || site === 'none'
  const origin = request.headers.get('origin')
  return origin === null || origin === new URL(request.url).origin
}
