/**
 * Issue 12, finding 1 with Cloudflare Access (GUARD_AUTH=access): the JWT in
 * `Cf-Access-Jwt-Assertion`, RS256, checked against the keys at
 * `${ACCESS_TEAM_DOMAIN}/cdn-cgi/access/certs` (served here by the stub), with `aud`, `iss` and
 * expiry checked. Every token is signed in the test with WebCrypto; a bad one gets 401 and the
 * judge and the upstream are never called.
 */
import { env } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import { judgeSays } from '../guard-helpers'
import {
  calls,
  post,
  publishKey,
  rsaKey,
  secureGuard,
  signHs256,
  signJwt,
  UPSTREAM_ANSWER,
  type SigningKey,
} from './helpers'

const AUD = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90'
const OPERATOR_EMAIL = 'operator@example.com'

let teamDomain: string
let published: SigningKey
let unpublished: SigningKey

beforeAll(async () => {
  // The stub's origin plays the team domain: its /cdn-cgi/access/certs serves the public keys.
  teamDomain = env.STUB_ORIGIN
  const suffix = crypto.randomUUID()
  published = await rsaKey(`access-key-${suffix}`)
  unpublished = await rsaKey(`other-key-${suffix}`)
  await publishKey(published)
})

const now = () => Math.floor(Date.now() / 1000)

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    aud: [AUD],
    iss: teamDomain,
    sub: 'user-7f3a',
    email: 'reader@example.com',
    type: 'app',
    iat: now() - 60,
    nbf: now() - 60,
    exp: now() + 600,
    ...extra,
  }
}

const header = (key: SigningKey = published) => ({ alg: 'RS256', kid: key.kid, typ: 'JWT' })

const accessEnv = () => ({
  GUARD_AUTH: 'access',
  GUARD_TOKENS: undefined,
  GUARD_OPERATOR_TOKENS: undefined,
  ACCESS_TEAM_DOMAIN: teamDomain,
  ACCESS_AUD: AUD,
  ACCESS_OPERATORS: OPERATOR_EMAIL,
})

const ask = (jwt?: string) =>
  post(
    { question: 'What does a day pass cost?', context: ['A day pass costs $12.'] },
    jwt === undefined ? {} : { 'cf-access-jwt-assertion': jwt },
  )

async function expectUnauthorized(response: Response): Promise<void> {
  expect(response.status).toBe(401)
  const body = (await response.json()) as { error?: { type?: unknown } }
  expect(body.error?.type).toBe('unauthorized')
}

describe('finding 1: Cloudflare Access (GUARD_AUTH=access)', () => {
  it('(fixture) the team domain serves the published key, and a token signed here verifies against it', async () => {
    const response = await fetch(`${teamDomain}/cdn-cgi/access/certs`)
    expect(response.status).toBe(200)
    const { keys } = (await response.json()) as { keys: Array<JsonWebKey & { kid: string }> }
    const served = keys.find((key) => key.kid === published.kid)
    expect(served).toBeDefined()
    expect(keys.some((key) => key.kid === unpublished.kid)).toBe(false)
    const jwt = await signJwt(header(), claims(), published.privateKey)
    const [head, payload, signature] = jwt.split('.') as [string, string, string]
    const verifier = await crypto.subtle.importKey(
      'jwk',
      served!,
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      false,
      ['verify'],
    )
    const bytes = Uint8Array.from(atob(signature.replace(/-/g, '+').replace(/_/g, '/')), (char) =>
      char.charCodeAt(0),
    )
    expect(
      await crypto.subtle.verify(
        'RSASSA-PKCS1-v1_5',
        verifier,
        bytes,
        new TextEncoder().encode(`${head}.${payload}`),
      ),
    ).toBe(true)
  })

  it('a valid RS256 token from the team domain, for this audience, is judged', async () => {
    const { send, judge, upstream } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      accessEnv(),
    )
    const jwt = await signJwt(header(), claims(), published.privateKey)
    const response = await send('/ask', ask(jwt), 'nobody')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.json()).toEqual({ answer: UPSTREAM_ANSWER })
    expect(await calls(judge)).toBe(1)
    expect(await calls(upstream)).toBe(1)
  })

  it('ACCESS_AUD may list several audiences: a token for any of them is accepted', async () => {
    const { send, judge } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      { ...accessEnv(), ACCESS_AUD: `other-app-audience-tag, ${AUD}` },
    )
    const jwt = await signJwt(header(), claims({ aud: AUD }), published.privateKey)
    const response = await send('/ask', ask(jwt), 'nobody')
    expect(response.status).toBe(200)
    expect(await calls(judge)).toBe(1)
  })

  it('an Access email in ACCESS_OPERATORS is an operator: it sees the score', async () => {
    const { send } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      accessEnv(),
    )
    const operator = await signJwt(
      header(),
      claims({ email: OPERATOR_EMAIL }),
      published.privateKey,
    )
    const reader = await signJwt(header(), claims(), published.privateKey)
    const asOperator = await send('/ask', ask(operator), 'nobody')
    const asReader = await send('/ask', ask(reader), 'nobody')
    expect([asOperator.status, asReader.status]).toEqual([200, 200])
    expect(asOperator.headers.get('x-rag-guard-score')).toBe('0.9000')
    expect(asReader.headers.get('x-rag-guard-score')).toBeNull()
  })

  const bad: Array<[string, () => Promise<string | undefined>]> = [
    ['no Cf-Access-Jwt-Assertion header', async () => undefined],
    ['a token that is not a JWT', async () => 'not-a-jwt'],
    [
      'a token for another audience',
      () => signJwt(header(), claims({ aud: ['another-application-aud'] }), published.privateKey),
    ],
    [
      'a token from another issuer',
      () =>
        signJwt(
          header(),
          claims({ iss: 'https://attacker.cloudflareaccess.com' }),
          published.privateKey,
        ),
    ],
    [
      'an expired token',
      () =>
        signJwt(
          header(),
          claims({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 3600 }),
          published.privateKey,
        ),
    ],
    [
      'a token signed with another key under the published kid',
      () => signJwt(header(), claims(), unpublished.privateKey),
    ],
    [
      'a token signed with a key the team domain does not publish',
      () => signJwt(header(unpublished), claims(), unpublished.privateKey),
    ],
    ['an unsigned token (alg none)', () => signJwt({ alg: 'none', typ: 'JWT' }, claims())],
    [
      'an unsigned token (alg none) naming the published kid',
      () => signJwt({ alg: 'none', kid: published.kid, typ: 'JWT' }, claims()),
    ],
    [
      'an HS256 token keyed with the public key (algorithm confusion)',
      () =>
        signHs256(
          { alg: 'HS256', kid: published.kid, typ: 'JWT' },
          claims(),
          JSON.stringify({ ...published.publicJwk, kid: published.kid }),
        ),
    ],
    [
      'a valid token with its payload changed after signing',
      async () => {
        const [head, , signature] = (await signJwt(header(), claims(), published.privateKey)).split(
          '.',
        )
        const forged = btoa(JSON.stringify(claims({ email: OPERATOR_EMAIL, sub: 'admin' })))
          .replace(/\+/g, '-')
          .replace(/\//g, '_')
          .replace(/=+$/, '')
        return `${head}.${forged}.${signature}`
      },
    ],
  ]

  it.each(bad)('%s → 401, and neither the judge nor the upstream is called', async (_, make) => {
    const { send, judge, upstream } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      accessEnv(),
    )
    const response = await send('/ask', ask(await make()), 'nobody')
    await expectUnauthorized(response)
    expect(await calls(judge)).toBe(0)
    expect(await calls(upstream)).toBe(0)
  })

  it('GUARD_RATE_LIMIT is keyed by access:<sub>', async () => {
    const keys: string[] = []
    const limiter = {
      async limit({ key }: { key: string }) {
        keys.push(key)
        return { success: true }
      },
    }
    const { send } = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, judgeSays(0.9), {
      ...accessEnv(),
      GUARD_RATE_LIMIT: limiter,
    })
    const jwt = await signJwt(header(), claims(), published.privateKey)
    const response = await send('/ask', ask(jwt), 'nobody')
    expect(response.status).toBe(200)
    expect(keys).toEqual(['access:user-7f3a'])
  })

  it('a guard token is no credential when GUARD_AUTH is access only', async () => {
    const { send, judge, upstream } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      { ...accessEnv(), GUARD_TOKENS: 'caller-token-7d1f3a9c5e2b4f60' },
    )
    const response = await send('/ask', ask(), { token: 'caller-token-7d1f3a9c5e2b4f60' })
    await expectUnauthorized(response)
    expect(await calls(judge)).toBe(0)
    expect(await calls(upstream)).toBe(0)
  })

  it('GUARD_AUTH=access,token accepts either a valid token or a valid Access JWT', async () => {
    const { send, judge } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      { ...accessEnv(), GUARD_AUTH: 'access,token', GUARD_TOKENS: 'caller-token-7d1f3a9c5e2b4f60' },
    )
    const jwt = await signJwt(header(), claims(), published.privateKey)
    const byJwt = await send('/ask', ask(jwt), 'nobody')
    const byToken = await send('/ask', ask(), { token: 'caller-token-7d1f3a9c5e2b4f60' })
    const byNeither = await send('/ask', ask(), 'nobody')
    expect([byJwt.status, byToken.status, byNeither.status]).toEqual([200, 200, 401])
    expect(await calls(judge)).toBeGreaterThanOrEqual(1)
  })
})
