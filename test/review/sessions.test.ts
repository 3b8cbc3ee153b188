/**
 * Issue 24, finding 6: sign-out ends a session. With the store bound (GUARD_DB), each session has
 * a server-side id and an end in D1, read on every request of the review page: signing out ends
 * it for every copy of the cookie; "sign out everywhere" ends every session of the operator's
 * token; "end every session" ends all of them. Without a store, sign-out can only clear the
 * browser's cookie, and the page says so rather than pretend.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { purgeBookkeeping } from '../../src/review/purge'
import { judgeSays } from '../guard-helpers'
import {
  OPERATOR_TOKEN_2,
  publishKey,
  rsaKey,
  secureGuard,
  signJwt,
  type SecureSetup,
} from '../security/helpers'
import {
  asHtml,
  emptyStore,
  formPost,
  formTokenOf,
  OPERATOR_TOKEN,
  STORE_ENV,
  storeGuard,
} from './helpers'

const upstream = { json: { answer: 'An answer.' } }

/** Signs in with `token`; returns the cookie to send back. */
async function signIn(setup: SecureSetup, token = OPERATOR_TOKEN): Promise<string> {
  const response = await setup.send('/_guard/login', formPost({ token }), 'nobody')
  expect(response.status).toBe(303)
  return response.headers.get('set-cookie')!.split(';')[0]!
}

/** The status of the review list opened with `cookie` alone. */
async function statusWith(setup: SecureSetup, cookie: string): Promise<number> {
  const response = await setup.send('/_guard/review', { headers: { cookie } }, 'nobody')
  await response.body?.cancel()
  return response.status
}

/** Posts the sign-out form of a page opened with `cookie`, with `fields` beside its form token. */
async function signOut(
  setup: SecureSetup,
  cookie: string,
  fields: Record<string, string> = {},
): Promise<Response> {
  const page = await setup.send(
    '/_guard/review',
    { headers: { cookie, ...asHtml.headers } },
    'nobody',
  )
  const csrf = formTokenOf(await page.text())
  return setup.send('/_guard/logout', formPost({ csrf, ...fields }, { cookie }), 'nobody')
}

describe('sessions with a store: sign-out ends them', () => {
  it('a copied cookie no longer opens the page once its owner signed out', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const cookie = await signIn(setup)
    const copy = cookie
    expect(await statusWith(setup, copy)).toBe(200)
    const out = await signOut(setup, cookie)
    expect(out.status).toBe(303)
    expect(out.headers.get('location')).toBe('/_guard/login')
    expect(await statusWith(setup, copy)).toBe(401)
  })

  it('signing out ends that session only: another browser of the same operator stays in', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const laptop = await signIn(setup)
    const phone = await signIn(setup)
    expect(laptop).not.toBe(phone)
    await signOut(setup, laptop)
    expect(await statusWith(setup, laptop)).toBe(401)
    expect(await statusWith(setup, phone)).toBe(200)
  })

  it('"sign out everywhere" ends every session of the operator’s token, and no other operator’s', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const mine = await signIn(setup)
    const thief = await signIn(setup)
    const colleague = await signIn(setup, OPERATOR_TOKEN_2)
    const out = await signOut(setup, mine, { everywhere: 'mine' })
    expect(out.status).toBe(303)
    expect(await statusWith(setup, mine)).toBe(401)
    expect(await statusWith(setup, thief)).toBe(401)
    expect(await statusWith(setup, colleague)).toBe(200)
  })

  it('an operator with the token itself (no session, as with curl) can end the sessions of that token', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const thief = await signIn(setup)
    const page = await setup.send('/_guard/review', asHtml, 'operator')
    const csrf = formTokenOf(await page.text())
    const out = await setup.send(
      '/_guard/logout',
      formPost({ csrf, everywhere: 'mine' }),
      'operator',
    )
    expect(out.status).toBe(303)
    expect(await statusWith(setup, thief)).toBe(401)
  })

  it('"end every session" ends the sessions of every operator', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const first = await signIn(setup)
    const second = await signIn(setup, OPERATOR_TOKEN_2)
    const out = await signOut(setup, second, { everywhere: 'all' })
    expect(out.status).toBe(303)
    expect(await statusWith(setup, first)).toBe(401)
    expect(await statusWith(setup, second)).toBe(401)
    // Signing in again works: the end is of sessions, not of operators.
    expect(await statusWith(setup, await signIn(setup))).toBe(200)
  })

  it('an Access operator, who has no session of their own, can end every session', async () => {
    const AUD = 'sessions-audience'
    const key = await rsaKey(`sessions-key-${crypto.randomUUID()}`)
    await publishKey(key)
    const jwt = await signJwt(
      { alg: 'RS256', kid: key.kid, typ: 'JWT' },
      {
        aud: [AUD],
        iss: env.STUB_ORIGIN,
        sub: 'user-ops',
        email: 'ops@example.com',
        iat: Math.floor(Date.now() / 1000) - 10,
        exp: Math.floor(Date.now() / 1000) + 600,
      },
      key.privateKey,
    )
    const setup = await storeGuard(upstream, judgeSays(0.9), {
      GUARD_AUTH: 'token,access',
      ACCESS_TEAM_DOMAIN: env.STUB_ORIGIN,
      ACCESS_AUD: AUD,
      ACCESS_OPERATORS: 'ops@example.com',
    })
    const thief = await signIn(setup)
    const access = { 'cf-access-jwt-assertion': jwt }
    const page = await setup.send(
      '/_guard/review',
      { headers: { ...access, ...asHtml.headers } },
      'nobody',
    )
    const text = await page.text()
    expect(text).not.toContain('name="everywhere" value="mine"')
    const out = await setup.send(
      '/_guard/logout',
      formPost({ csrf: formTokenOf(text), everywhere: 'all' }, access),
      'nobody',
    )
    expect(out.status).toBe(303)
    expect(await statusWith(setup, thief)).toBe(401)
  })

  it('a session the store does not know (its row gone) does not open the page', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const cookie = await signIn(setup)
    await setup.db.prepare('DELETE FROM sessions').run()
    expect(await statusWith(setup, cookie)).toBe(401)
  })

  it('the page offers both forms to an operator', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const cookie = await signIn(setup)
    const page = await setup.send(
      '/_guard/review',
      { headers: { cookie, ...asHtml.headers } },
      'nobody',
    )
    const text = await page.text()
    expect(text).toContain('name="everywhere" value="mine"')
    expect(text).toContain('name="everywhere" value="all"')
  })
})

describe('sessions without a store', () => {
  it('sign-out clears this browser’s cookie only; "everywhere" is refused with the reason, and ends nothing', async () => {
    const setup = await secureGuard(upstream, judgeSays(0.9), STORE_ENV)
    const cookie = await signIn(setup)
    const page = await setup.send(
      '/_guard/review',
      { headers: { cookie, ...asHtml.headers } },
      'nobody',
    )
    const csrf = formTokenOf(await page.text())
    const everywhere = await setup.send(
      '/_guard/logout',
      formPost({ csrf, everywhere: 'mine' }, { cookie }),
      'nobody',
    )
    expect(everywhere.status).toBe(409)
    expect(await everywhere.text()).toContain('GUARD_DB')
    const out = await setup.send('/_guard/logout', formPost({ csrf }, { cookie }), 'nobody')
    expect(out.status).toBe(303)
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/)
    // What docs/operate.md says: without a store a copy of the cookie lasts until it expires.
    expect(await statusWith(setup, cookie)).toBe(404)
  })
})

describe('the scheduled purge of sessions and content counts', () => {
  it('deletes sessions past their end and the content counts of hours older than a day', async () => {
    const db = await emptyStore()
    const now = Date.UTC(2026, 11, 6, 12)
    const hour = now / 3_600_000
    await db.batch([
      db
        .prepare('INSERT INTO sessions (id, operator, created_at, expires_at) VALUES (?, ?, ?, ?)')
        .bind('a'.repeat(32), 'token:x', now - 50_000_000, now - 1),
      db
        .prepare('INSERT INTO sessions (id, operator, created_at, expires_at) VALUES (?, ?, ?, ?)')
        .bind('b'.repeat(32), 'token:x', now - 1000, now + 1000),
      db
        .prepare('INSERT INTO content_usage (caller, hour, bytes) VALUES (?, ?, ?)')
        .bind('token:x', hour - 25, 10),
      db
        .prepare('INSERT INTO content_usage (caller, hour, bytes) VALUES (?, ?, ?)')
        .bind('token:x', hour, 10),
    ])
    await purgeBookkeeping(db, now)
    const sessions = await db.prepare('SELECT id FROM sessions').all<{ id: string }>()
    expect(sessions.results.map((row) => row.id)).toEqual(['b'.repeat(32)])
    const usage = await db.prepare('SELECT hour FROM content_usage').all<{ hour: number }>()
    expect(usage.results.map((row) => row.hour)).toEqual([hour])
  })
})
