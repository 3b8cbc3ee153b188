/**
 * `ragGuard()` as Hono middleware under Node (an app served by @hono/node-server, or any Node
 * host): what differs from workerd is the Fetch implementation, stricter about stream bodies.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { ragGuard } from '../../src'

function streamOf(total: number): ReadableStream<Uint8Array> {
  const piece = new TextEncoder().encode('y'.repeat(4096))
  let sent = 0
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close()
      sent += piece.byteLength
      controller.enqueue(piece)
    },
  })
}

describe('ragGuard under Node', () => {
  it('an oversize streamed body without Content-Length is passed on whole (onUnjudgeable pass), not a 500', async () => {
    const app = new Hono()
    app.post(
      '/ask',
      ragGuard({
        // Never called: the request is too large to judge.
        judge: { apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1' },
        maxBodyBytes: 1024,
        onUnjudgeable: 'pass',
        details: 'everyone',
      }),
      async (c) => c.json({ received: (await c.req.arrayBuffer()).byteLength }),
    )
    const response = await app.request('/ask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: streamOf(64 * 1024),
      duplex: 'half',
    } as RequestInit)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-reason')).toBe('request-too-large')
    expect(await response.json()).toEqual({ received: 64 * 1024 })
  })

  it('a body with its Content-Length is read once, and the handler gets the request that came, whole', async () => {
    const app = new Hono()
    let sent: Request | undefined
    app.post(
      '/ask',
      async (c, next) => {
        sent = c.req.raw
        await next()
      },
      ragGuard({
        // Unreachable: the judge fails, and the answer goes out flagged (ON_ERROR's default).
        judge: { apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0 },
        details: 'everyone',
      }),
      async (c) => {
        expect(c.req.raw).toBe(sent)
        expect(c.req.raw.headers.get('content-length')).toBe(String(bytes.byteLength))
        return c.body(await c.req.raw.arrayBuffer())
      },
    )
    const body = JSON.stringify({ question: 'Where? é', context: ['Here — 10 €.'] })
    const bytes = new TextEncoder().encode(body)
    const response = await app.request('/ask', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(bytes.byteLength) },
      body: bytes,
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-reason')).toBe('judge-unreachable')
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes)
  })
})
