/**
 * Issue 24, finding 7: sign-in is throttled. With GUARD_RATE_LIMIT bound, every refused
 * credential — a wrong bearer token on any path, a wrong token in the review page's sign-in
 * form — counts against the client's address (CF-Connecting-IP); past the limit the client gets
 * 429, and then nothing from that address is checked (not even a right token) for a minute, so
 * guessing gains nothing. Miniflare simulates the binding (TEST_RATE_LIMIT: 3 a minute per key).
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { judgeSays } from '../guard-helpers'
import { formPost } from '../review/helpers'
import { calls, CALLER_TOKEN, OPERATOR_TOKEN, post, secureGuard } from './helpers'

const LIMIT = 3
const answer = { json: { answer: 'An answer.' } }
const ask = (ip: string) => post({ question: 'q', context: ['d'] }, { 'cf-connecting-ip': ip })
/** An address no other test uses: Miniflare's counters live as long as the test run. */
const freshIp = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}-${crypto.randomUUID()}`

/**
 * Sends refused attempts from one address until the first 429. The binding counts in fixed
 * windows: a window may end during the loop, which restarts the count once, so the brake comes
 * after LIMIT to 2 × LIMIT refusals. Returns how many 401s came before it.
 */
async function refuseUntilBraked(attempt: () => Promise<Response>): Promise<number> {
  let refused = 0
  for (let tries = 0; tries <= 2 * LIMIT + 1; tries++) {
    const response = await attempt()
    await response.body?.cancel()
    if (response.status === 429) {
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/)
      return refused
    }
    expect(response.status).toBe(401)
    refused++
  }
  throw new Error('no 429 came')
}

describe('finding 7: failed credentials are throttled by address', () => {
  it('wrong bearer tokens from one address get 429 past the limit; then even the right token from it gets 429, while another address gets in', async () => {
    const setup = await secureGuard(answer, judgeSays(0.9), {
      GUARD_RATE_LIMIT: env.TEST_RATE_LIMIT,
    })
    const ip = freshIp()
    const refused = await refuseUntilBraked(() =>
      setup.send('/ask', ask(ip), { token: 'wrong-token-0123456789abcdef' }),
    )
    expect(refused).toBeGreaterThanOrEqual(LIMIT)
    expect(refused).toBeLessThanOrEqual(2 * LIMIT)
    const braked = await setup.send('/ask', ask(ip), { token: CALLER_TOKEN })
    expect(braked.status).toBe(429)
    expect(((await braked.json()) as { error: { type: string } }).error.type).toBe('rate_limited')
    const elsewhere = await setup.send('/ask', ask(freshIp()), { token: CALLER_TOKEN })
    expect(elsewhere.status).toBe(200)
    expect(await calls(setup.upstream)).toBe(1)
  })

  it('wrong tokens in the sign-in form get 429 past the limit, and no session is given to that address', async () => {
    const setup = await secureGuard(answer, judgeSays(0.9), {
      GUARD_RATE_LIMIT: env.TEST_RATE_LIMIT,
    })
    const ip = freshIp()
    const refused = await refuseUntilBraked(() =>
      setup.send(
        '/_guard/login',
        formPost({ token: 'operator-token-guess-000000' }, { 'cf-connecting-ip': ip }),
        'nobody',
      ),
    )
    expect(refused).toBeGreaterThanOrEqual(LIMIT)
    const braked = await setup.send(
      '/_guard/login',
      formPost({ token: OPERATOR_TOKEN }, { 'cf-connecting-ip': ip }),
      'nobody',
    )
    expect(braked.status).toBe(429)
    expect(braked.headers.get('set-cookie')).toBeNull()
    const elsewhere = await setup.send(
      '/_guard/login',
      formPost({ token: OPERATOR_TOKEN }, { 'cf-connecting-ip': freshIp() }),
      'nobody',
    )
    expect(elsewhere.status).toBe(303)
    expect(elsewhere.headers.get('set-cookie')).not.toBeNull()
  })

  it('wrong bearer tokens on the review page count too', async () => {
    const setup = await secureGuard(answer, judgeSays(0.9), {
      GUARD_RATE_LIMIT: env.TEST_RATE_LIMIT,
    })
    const ip = freshIp()
    const refused = await refuseUntilBraked(() =>
      setup.send(
        '/_guard/labels.jsonl',
        { headers: { 'cf-connecting-ip': ip } },
        {
          token: 'wrong-token-0123456789abcdef',
        },
      ),
    )
    expect(refused).toBeGreaterThanOrEqual(LIMIT)
  })

  it('only refused credentials count: right tokens and requests without one never call the brake', async () => {
    const keys: string[] = []
    const limiter = {
      async limit({ key }: { key: string }) {
        keys.push(key)
        return { success: true }
      },
    }
    const setup = await secureGuard(answer, judgeSays(0.9), { GUARD_RATE_LIMIT: limiter })
    const ip = '203.0.113.9'
    expect((await setup.send('/ask', ask(ip))).status).toBe(200)
    expect((await setup.send('/ask', ask(ip), 'nobody')).status).toBe(401)
    expect(keys.filter((key) => key.startsWith('auth-failed:'))).toEqual([])
    expect(
      (await setup.send('/ask', ask(ip), { token: 'wrong-token-0123456789abcdef' })).status,
    ).toBe(401)
    expect(keys.filter((key) => key.startsWith('auth-failed:'))).toEqual([`auth-failed:ip:${ip}`])
  })
})
