import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { readLimited, readRequestBody, type RequestBody } from '../src/guard/body'

const encoder = new TextEncoder()

function chunks(...parts: string[]): ReadableStream<Uint8Array> {
  const queue = parts.map((part) => encoder.encode(part))
  return new ReadableStream({
    pull(controller) {
      const next = queue.shift()
      if (next) controller.enqueue(next)
      else controller.close()
    },
  })
}

describe('readLimited', () => {
  it('reads a body whole when it fits', async () => {
    const read = await readLimited(chunks('ab', 'cd'), 4)
    expect(read.ok && new TextDecoder().decode(read.bytes)).toBe('abcd')
  })

  it('stops past the limit and hands back what it read and the rest', async () => {
    const read = await readLimited(chunks('ab', 'cd', 'ef', 'gh'), 3)
    expect(read.ok).toBe(false)
    if (read.ok) return
    expect(read.prefix.map((part) => new TextDecoder().decode(part))).toEqual(['ab', 'cd'])
    expect(new TextDecoder().decode((await read.reader.read()).value)).toBe('ef')
  })
})

describe('readRequestBody', () => {
  /** What the guard read, and what the handler then read of the same request. */
  async function through(
    init: RequestInit,
    limit: number,
    earlier?: (request: Hono['request']) => void,
  ) {
    let read: RequestBody | undefined
    const app = new Hono()
    if (earlier) {
      app.use('*', async (c, next) => {
        await c.req.text()
        await next()
      })
    }
    app.post(
      '/',
      async (c, next) => {
        read = await readRequestBody(c, limit)
        await next()
      },
      async (c) => c.text(await c.req.text()),
    )
    const response = await app.request('/', { method: 'POST', ...init })
    return { read, handlerSaw: await response.text() }
  }

  it('reads the body once and leaves it whole for the handler', async () => {
    const { read, handlerSaw } = await through({ body: '{"q":"é"}' }, 1024)
    expect(read).toEqual({ kind: 'read', text: '{"q":"é"}' })
    expect(handlerSaw).toBe('{"q":"é"}')
  })

  it('refuses to read a body declared larger than the limit, and leaves it untouched', async () => {
    const { read, handlerSaw } = await through(
      { body: 'x'.repeat(2048), headers: { 'content-length': '2048' } },
      1024,
    )
    expect(read).toEqual({ kind: 'oversize' })
    expect(handlerSaw).toHaveLength(2048)
  })

  it('stops reading an undeclared body past the limit, and puts it back together', async () => {
    const { read, handlerSaw } = await through(
      { body: chunks('x'.repeat(1000), 'y'.repeat(1000)) },
      1024,
    )
    expect(read).toEqual({ kind: 'oversize' })
    expect(handlerSaw).toBe('x'.repeat(1000) + 'y'.repeat(1000))
  })

  it('a body an earlier middleware read is measured too', async () => {
    const { read, handlerSaw } = await through({ body: 'z'.repeat(2048) }, 1024, () => {})
    expect(read).toEqual({ kind: 'oversize' })
    expect(handlerSaw).toHaveLength(2048)
  })
})
