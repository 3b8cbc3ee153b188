/**
 * Issue 12, finding 11: a misconfigured guard tells the client only that it is misconfigured:
 * 503 with one generic body, no setting name and no value (an UPSTREAM_URL can name an internal
 * host). The full message goes to the Worker's logs.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { judgeSays } from '../guard-helpers'
import { calls, GENERIC_MISCONFIGURED, post, secureGuard, type SecurityEnv } from './helpers'

let logged: string[] = []
beforeEach(() => {
  logged = []
  for (const level of ['log', 'error', 'warn'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logged.push(args.map((arg) => (arg instanceof Error ? arg.message : String(arg))).join(' '))
    })
  }
})
afterEach(() => {
  vi.restoreAllMocks()
})

describe('finding 11: the 503 of a misconfigured guard names no setting and no value', () => {
  const cases: Array<[string, SecurityEnv, string[], string]> = [
    [
      'an UPSTREAM_URL of the wrong scheme',
      { UPSTREAM_URL: 'ftp://rag-internal.corp.example:2121/private-prefix' },
      ['UPSTREAM_URL', 'rag-internal', 'corp.example', 'private-prefix'],
      'UPSTREAM_URL',
    ],
    [
      'a threshold that is not a number',
      { BLOCK_BELOW: 'high-secret-value' },
      ['BLOCK_BELOW', 'high-secret-value'],
      'BLOCK_BELOW',
    ],
    [
      'a route rule with an unknown key',
      { GUARD_ROUTES: [{ path: '/internal-route-x9', format: 'json', blockbelow: 0.3 }] },
      ['GUARD_ROUTES', 'internal-route-x9', 'blockbelow'],
      'GUARD_ROUTES',
    ],
    [
      'an unknown GUARD_AUTH method',
      { GUARD_AUTH: 'kerberos-internal' },
      ['GUARD_AUTH', 'kerberos-internal'],
      'GUARD_AUTH',
    ],
  ]

  it.each(cases)(
    '%s: the generic 503, and the full message in the logs',
    async (_, env, hidden, setting) => {
      const { send, upstream } = await secureGuard({ json: { answer: 'a' } }, judgeSays(0.9), env)
      const response = await send('/ask', post({ question: 'q?', context: ['c'] }))
      expect(response.status).toBe(503)
      const text = await response.text()
      expect(JSON.parse(text)).toEqual(GENERIC_MISCONFIGURED)
      for (const word of hidden) expect(text).not.toContain(word)
      expect(logged.join('\n')).toContain(setting)
      expect(await calls(upstream)).toBe(0)
    },
  )

  it('ON_OVERSIZE is gone: setting it is a misconfiguration whose logged message names ON_UNJUDGEABLE', async () => {
    const { send } = await secureGuard({ json: { answer: 'a' } }, judgeSays(0.9), {
      ON_OVERSIZE: 'pass',
    })
    const response = await send('/ask', post({ question: 'q?', context: ['c'] }))
    expect(response.status).toBe(503)
    expect(await response.json()).toEqual(GENERIC_MISCONFIGURED)
    expect(logged.join('\n')).toContain('ON_UNJUDGEABLE')
  })
})
