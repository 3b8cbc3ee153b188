/**
 * Issue 18, who reaches the review page and the labels export: operators only (an operator token,
 * an Access identity in ACCESS_OPERATORS, or a session signed in with an operator token). Anyone
 * else gets 401 or 403 — the same on every path under REVIEW_PATH, with or without a store — and
 * nothing under REVIEW_PATH is ever forwarded upstream.
 */
import { env } from 'cloudflare:workers'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { parseConfig } from '../../src/config'
import { ConfigurationError } from '../../src/errors'
import { judgeSays } from '../guard-helpers'
import {
  calls,
  GENERIC_MISCONFIGURED,
  OPERATOR_TOKEN_2,
  publishKey,
  rsaKey,
  secureGuard,
  SECURE_ENV,
  SECURE_ROUTES,
  signJwt,
  type SigningKey,
} from '../security/helpers'
import {
  ask,
  asHtml,
  CALLER_TOKEN,
  formPost,
  OPERATOR_TOKEN,
  pageText,
  STORE_ENV,
  storeGuard,
} from './helpers'

const upstream = { json: { answer: 'An answer.' } }
const PATHS = [
  '/_guard',
  '/_guard/review',
  '/_guard/review/0123456789abcdef0123456789abcdef',
  '/_guard/labels.jsonl',
  '/_guard/labels.jsonl?check=groundedness',
  '/_guard/overview',
  '/_guard/overview?window=30d&route=/ask&check=sufficiency',
  '/_guard/no-such-page',
]

const FORBIDDEN = {
  error: { type: 'forbidden', message: "The review page is for the guard's operators." },
}

describe('the review page: who gets in', () => {
  it('answers 401 without credentials, before any store or upstream is read', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    for (const path of PATHS) {
      const response = await setup.send(path, {}, 'nobody')
      expect(response.status, path).toBe(401)
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="rag-guard"')
      expect(((await response.json()) as { error: { type: string } }).error.type).toBe(
        'unauthorized',
      )
    }
    const post = await setup.send(
      '/_guard/review/0123456789abcdef0123456789abcdef',
      formPost({ sufficient: 'no' }),
      'nobody',
    )
    expect(post.status).toBe(401)
    expect(await calls(setup.upstream)).toBe(0)
  })

  it('shows a browser without credentials the sign-in form, still with 401', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const { status, text, response } = await pageText(setup, '/_guard/review', 'nobody')
    expect(status).toBe(401)
    expect(response.headers.get('content-type')).toContain('text/html')
    expect(text).toContain('<form method="post" action="/_guard/login">')
    expect(text).not.toContain('<table')
  })

  it('answers 403 to a caller who is not an operator, the same on every path and with or without a store', async () => {
    const withStore = await storeGuard(upstream, judgeSays(0.9))
    const withoutStore = await secureGuard(upstream, judgeSays(0.9), STORE_ENV)
    for (const setup of [withStore, withoutStore]) {
      for (const path of PATHS) {
        const response = await setup.send(path, asHtml, 'caller')
        expect(response.status, path).toBe(403)
        expect(await response.json()).toEqual(FORBIDDEN)
      }
    }
    expect(await calls(withStore.upstream)).toBe(0)
  })

  it('has no operators with GUARD_AUTH "none": always 403', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9), {
      GUARD_AUTH: 'none',
      GUARD_TOKENS: undefined,
      GUARD_OPERATOR_TOKENS: undefined,
    })
    for (const path of [...PATHS, '/_guard/login']) {
      const response = await setup.send(path, asHtml, 'nobody')
      expect(response.status, path).toBe(403)
      expect(await response.json()).toEqual(FORBIDDEN)
    }
    const login = await setup.send('/_guard/login', formPost({ token: OPERATOR_TOKEN }), 'nobody')
    expect(login.status).toBe(403)
  })

  it('lets an operator token in', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const { status, text, response } = await pageText(setup, '/_guard/review')
    expect(status).toBe(200)
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(text).toContain('Decisions, newest first')
    expect(text).not.toContain('<script')
  })

  it('tells an operator when there is no store', async () => {
    const setup = await secureGuard(upstream, judgeSays(0.9), STORE_ENV)
    const { status, text } = await pageText(setup, '/_guard/review')
    expect(status).toBe(404)
    expect(text).toContain('bind a D1 database as GUARD_DB')
  })

  it('tells an operator when the store cannot be read (no migrations applied), and only an operator', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    const setup = await secureGuard(upstream, judgeSays(0.9), {
      ...STORE_ENV,
      GUARD_DB: env.EMPTY_DB,
    })
    const { status, text } = await pageText(setup, '/_guard/review')
    expect(status).toBe(502)
    expect(text).toContain('no such table')
    expect(text).toContain('npx wrangler d1 migrations apply GUARD_DB')
    const caller = await setup.send('/_guard/review', asHtml, 'caller')
    expect(caller.status).toBe(403)
    expect(await caller.text()).not.toContain('no such table')
    expect(errors).toHaveBeenCalledWith(expect.stringContaining('RAG Guard review: request failed'))
    errors.mockRestore()
  })

  it('never forwards a path under REVIEW_PATH, in any spelling, even past a PASS_THROUGH rule for everything', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9), {
      PASS_THROUGH: [{ path: '/*', methods: ['GET', 'POST'] }],
    })
    for (const path of [
      '/_guard/x',
      '/_GUARD/review',
      '//_guard//labels.jsonl',
      '/_guard/./review',
      '/%5fguard/review',
    ]) {
      for (const who of ['caller', 'operator', 'nobody'] as const) {
        const response = await setup.send(path, {}, who)
        expect([200, 401, 403, 404], `${who} ${path}`).toContain(response.status)
      }
    }
    expect(await calls(setup.upstream)).toBe(0)
    // The rule still forwards what is not under the review path.
    expect((await setup.send('/health', {}, 'caller')).status).toBe(200)
    expect(await calls(setup.upstream)).toBe(1)
  })

  it('serves the page at another REVIEW_PATH, and nothing at the default then', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9), { REVIEW_PATH: '/ops/Review-Desk' })
    expect((await pageText(setup, '/ops/review-desk/review')).status).toBe(200)
    const old = await setup.send('/_guard/review', asHtml, 'operator')
    expect(old.status).toBe(404)
    expect(((await old.json()) as { error: { type: string } }).error.type).toBe('not_found')
  })
})

describe('REVIEW_PATH and the other settings', () => {
  const base = {
    ...SECURE_ENV,
    UPSTREAM_URL: 'https://rag.example.com',
    OPENAI_API_KEY: 'sk-test',
    GUARD_ROUTES: SECURE_ROUTES,
  }

  it('must not overlap a guarded route or a PASS_THROUGH rule', () => {
    for (const overlapping of [
      { GUARD_ROUTES: [...SECURE_ROUTES, { path: '/_guard/ask', format: 'json' }] },
      { GUARD_ROUTES: [{ path: '/ops', format: 'langserve' }], REVIEW_PATH: '/ops/invoke' },
      { PASS_THROUGH: [{ path: '/_guard' }] },
    ]) {
      expect(() => parseConfig({ ...base, ...overlapping })).toThrow(
        expect.objectContaining({ setting: 'REVIEW_PATH' }),
      )
    }
  })

  it('must be a plain path', () => {
    for (const path of ['/', '_guard', '/_guard/', '/_guard/:id', '/_guard/*', '/%5f']) {
      expect(() => parseConfig({ ...base, REVIEW_PATH: path })).toThrow(
        /REVIEW_PATH must be a path of plain segments/,
      )
    }
  })

  it('a store needs a secret for its forms: REVIEW_SECRET, or one the guard already has', () => {
    const noSecret = {
      ...base,
      GUARD_AUTH: 'access',
      GUARD_TOKENS: undefined,
      GUARD_OPERATOR_TOKENS: undefined,
      ACCESS_TEAM_DOMAIN: 'https://team.cloudflareaccess.com',
      ACCESS_AUD: 'aud',
      OPENAI_API_KEY: undefined,
      OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1',
      CACHE_TTL_SECONDS: 0,
      GUARD_DB: env.TEST_DB,
    }
    expect(() => parseConfig(noSecret)).toThrow(ConfigurationError)
    expect(() => parseConfig(noSecret)).toThrow(/REVIEW_SECRET is required with GUARD_DB/)
    expect(parseConfig({ ...noSecret, REVIEW_SECRET: 's3cret' }).review.secret).toBe('s3cret')
  })

  it('a misplaced REVIEW_PATH is a misconfigured guard: the generic 503', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const setup = await secureGuard(upstream, judgeSays(0.9), {
      ...STORE_ENV,
      REVIEW_PATH: '/ask',
    })
    const response = await setup.send('/ask', ask('q', ['d']))
    expect(response.status).toBe(503)
    expect(await response.json()).toEqual(GENERIC_MISCONFIGURED)
    // The reason is the operator's, in the log.
    expect(logged).toHaveBeenCalledWith(expect.stringContaining('REVIEW_PATH "/ask" overlaps'))
    logged.mockRestore()
  })
})

describe('signing in with an operator token (for a browser)', () => {
  /** Signs in; returns the cookie to send back. */
  async function signIn(setup: Awaited<ReturnType<typeof storeGuard>>, token = OPERATOR_TOKEN) {
    const response = await setup.send('/_guard/login', formPost({ token }), 'nobody')
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/_guard/review')
    const cookie = response.headers.get('set-cookie')!
    expect(cookie).toMatch(/^__Secure-rag-guard-review=/)
    expect(cookie).toContain('HttpOnly')
    expect(cookie).toContain('Secure')
    expect(cookie).toContain('SameSite=Strict')
    // Scoped to the review path: never sent with a guarded request, so never forwarded.
    expect(cookie).toContain('Path=/_guard')
    return cookie.split(';')[0]!
  }

  it('gives a session that opens the page without the token', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const cookie = await signIn(setup)
    const response = await setup.send(
      '/_guard/review',
      { headers: { cookie, accept: 'text/html' } },
      'nobody',
    )
    expect(response.status).toBe(200)
    const text = await response.text()
    expect(text).toContain('Decisions, newest first')
    expect(text).toContain('Sign out')
  })

  it('refuses a caller’s token, a wrong token and an empty one, and sets no cookie', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    for (const token of [CALLER_TOKEN, 'operator-token-0000000000000000', '', 'a\nb']) {
      const response = await setup.send('/_guard/login', formPost({ token }), 'nobody')
      expect(response.status).toBe(401)
      expect(response.headers.get('set-cookie')).toBeNull()
      expect(await response.text()).toContain('That is not an operator token.')
    }
  })

  it('does not read a sign-in body larger than a form', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const padding = 'x'.repeat(1_000_000)
    const response = await setup.send(
      '/_guard/login',
      formPost({ token: OPERATOR_TOKEN, padding }),
      'nobody',
    )
    expect(response.status).toBe(401)
    expect(response.headers.get('set-cookie')).toBeNull()
  })

  it('refuses a sign-in form posted from another site', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const foreign: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
    ]
    for (const headers of foreign) {
      const response = await setup.send(
        '/_guard/login',
        formPost({ token: OPERATOR_TOKEN }, headers),
        'nobody',
      )
      expect(response.status).toBe(403)
      expect(response.headers.get('set-cookie')).toBeNull()
    }
  })

  it('does not take a forged or altered session', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const cookie = await signIn(setup)
    const [name, value] = cookie.split('=') as [string, string]
    const [id, expiry, session, signature] = value.split('.') as [string, string, string, string]
    const forged = [
      `${name}=${id}.${Number(expiry) + 1}.${session}.${signature}`,
      `${name}=${btoa('token:000000000000').replace(/=+$/, '')}.${expiry}.${session}.${signature}`,
      `${name}=${id}.${expiry}.${'0'.repeat(32)}.${signature}`,
      `${name}=${id}.${expiry}.${session}.${'0'.repeat(64)}`,
      `rag-guard-review=${value}`,
    ]
    for (const forgery of forged) {
      const response = await setup.send(
        '/_guard/review',
        { headers: { cookie: forgery } },
        'nobody',
      )
      expect(response.status, forgery).toBe(401)
    }
  })

  it('ends the sessions of a token that is no longer an operator’s', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const cookie = await signIn(setup, OPERATOR_TOKEN_2)
    const rotated = await secureGuard(upstream, judgeSays(0.9), {
      ...STORE_ENV,
      GUARD_DB: setup.db,
      GUARD_OPERATOR_TOKENS: OPERATOR_TOKEN,
      // The same signing secret as before the rotation.
      REVIEW_SECRET: undefined,
      CACHE_SECRET: undefined,
    })
    const before = await setup.send('/_guard/review', { headers: { cookie } }, 'nobody')
    expect(before.status).toBe(200)
    const after = await rotated.send('/_guard/review', { headers: { cookie } }, 'nobody')
    expect(after.status).toBe(401)
  })

  it('signs out with the form, which needs its token', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9))
    const cookie = await signIn(setup)
    const page = await setup.send('/_guard/review', { headers: { cookie } }, 'nobody')
    const token = /name="csrf" value="([^"]+)"/.exec(await page.text())![1]!
    const refused = await setup.send('/_guard/logout', formPost({}, { cookie }), 'nobody')
    expect(refused.status).toBe(403)
    const response = await setup.send(
      '/_guard/logout',
      formPost({ csrf: token }, { cookie }),
      'nobody',
    )
    expect(response.status).toBe(303)
    expect(response.headers.get('location')).toBe('/_guard/login')
    expect(response.headers.get('set-cookie')).toMatch(/^__Secure-rag-guard-review=;.*Max-Age=0/)
  })
})

describe('Cloudflare Access operators', () => {
  const AUD = 'review-audience-tag'
  let key: SigningKey
  beforeAll(async () => {
    key = await rsaKey(`review-key-${crypto.randomUUID()}`)
    await publishKey(key)
  })
  const jwt = (email: string) =>
    signJwt(
      { alg: 'RS256', kid: key.kid, typ: 'JWT' },
      {
        aud: [AUD],
        iss: env.STUB_ORIGIN,
        sub: `user-${email}`,
        email,
        iat: Math.floor(Date.now() / 1000) - 10,
        exp: Math.floor(Date.now() / 1000) + 600,
      },
      key.privateKey,
    )

  it('an identity in ACCESS_OPERATORS gets the page; another gets 403', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9), {
      GUARD_AUTH: 'access',
      GUARD_TOKENS: undefined,
      GUARD_OPERATOR_TOKENS: undefined,
      ACCESS_TEAM_DOMAIN: env.STUB_ORIGIN,
      ACCESS_AUD: AUD,
      ACCESS_OPERATORS: 'ops@example.com',
    })
    const asOperator = await setup.send(
      '/_guard/review',
      { headers: { 'cf-access-jwt-assertion': await jwt('ops@example.com') } },
      'nobody',
    )
    expect(asOperator.status).toBe(200)
    expect(await asOperator.text()).toContain('access:user-ops@example.com')
    const asReader = await setup.send(
      '/_guard/review',
      { headers: { 'cf-access-jwt-assertion': await jwt('reader@example.com') } },
      'nobody',
    )
    expect(asReader.status).toBe(403)
    // With Access alone there is no sign-in form: Access itself signs people in.
    const signIn = await setup.send('/_guard/login', asHtml, 'nobody')
    expect(signIn.status).toBe(401)
    expect(signIn.headers.get('content-type')).toContain('application/json')
  })
})
