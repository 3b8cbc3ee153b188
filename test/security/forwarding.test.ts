/**
 * Issue 12, finding 10: forwarding headers. What the client says about where it comes from
 * (X-Forwarded-For, X-Real-IP, Forwarded, X-Forwarded-Host, -Proto, -Port) never reaches the
 * upstream verbatim; the guard says it itself: X-Forwarded-For is the CF-Connecting-IP,
 * X-Forwarded-Proto and X-Forwarded-Host are the guard's own.
 */
import { describe, expect, it } from 'vitest'
import { judgeSays } from '../guard-helpers'
import { post, secureGuard, UPSTREAM_ANSWER } from './helpers'

const SPOOFED = {
  'x-forwarded-for': '6.6.6.6, 10.0.0.1',
  'x-real-ip': '6.6.6.6',
  forwarded: 'for=6.6.6.6;host=evil.example;proto=http',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'http',
  'x-forwarded-port': '8443',
}

describe('finding 10: client-sent forwarding headers never reach the upstream verbatim', () => {
  it.each([
    ['a guarded route', '/ask', post({ question: 'q?', context: ['c'] }, SPOOFED)],
    ['an allow-listed pass-through route', '/health', { method: 'GET', headers: SPOOFED }],
  ])(
    '%s: the upstream gets the guard’s forwarding headers, not the client’s',
    async (_, path, init) => {
      const { send, upstream } = await secureGuard(
        { json: { answer: UPSTREAM_ANSWER } },
        judgeSays(0.9),
        { PASS_THROUGH: [{ path: '/health' }] },
      )
      const headers = new Headers(init.headers)
      headers.set('cf-connecting-ip', '203.0.113.7')
      const response = await send(path, { ...init, headers })
      expect(response.status).toBe(200)
      const [forwarded] = await upstream.requests()
      expect(forwarded!.headers['x-forwarded-for']).toBe('203.0.113.7')
      expect(forwarded!.headers['x-real-ip']).toBeUndefined()
      expect(forwarded!.headers.forwarded).toBeUndefined()
      expect(forwarded!.headers['x-forwarded-host']).toBe('guard.example.com')
      expect(forwarded!.headers['x-forwarded-proto']).toBe('https')
      expect(forwarded!.headers['x-forwarded-port']).toBeUndefined()
      expect(JSON.stringify(forwarded!.headers)).not.toContain('6.6.6.6')
      expect(JSON.stringify(forwarded!.headers)).not.toContain('evil.example')
    },
  )

  it('without CF-Connecting-IP, the client’s X-Forwarded-For is dropped, not passed on', async () => {
    const { send, upstream } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
    )
    const response = await send('/ask', post({ question: 'q?', context: ['c'] }, SPOOFED))
    expect(response.status).toBe(200)
    const [forwarded] = await upstream.requests()
    expect(forwarded!.headers['x-forwarded-for']).toBeUndefined()
    expect(forwarded!.headers['x-real-ip']).toBeUndefined()
    expect(forwarded!.headers.forwarded).toBeUndefined()
    expect(JSON.stringify(forwarded!.headers)).not.toContain('6.6.6.6')
  })
})
