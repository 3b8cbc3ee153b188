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

  /** What the guard read, and the request the handler then got, for a body of declared length. */
  async function declared(
    body: Uint8Array | string,
    headers: Record<string, string>,
    limit: number,
  ) {
    let read: RequestBody | undefined
    let sent: Request | undefined
    let got: Request | undefined
    const app = new Hono()
    app.post(
      '/',
      async (c, next) => {
        sent = c.req.raw
        read = await readRequestBody(c, limit)
        await next()
      },
      async (c) => {
        got = c.req.raw
        return c.body(await c.req.raw.arrayBuffer())
      },
    )
    const bytes = typeof body === 'string' ? encoder.encode(body) : body
    const response = await app.request('/', {
      method: 'POST',
      headers: { 'content-length': String(bytes.byteLength), ...headers },
      body: bytes,
    })
    return { read, sent, got, handlerSaw: new Uint8Array(await response.arrayBuffer()) }
  }

  it('a body of declared length is read once, and the handler gets the request that came, its body unread', async () => {
    // A BOM, non-ASCII text and a stray byte: the guard reads UTF-8 as the TextDecoder does; the
    // handler gets every byte as sent.
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode('{"q":"é—€"}'), 0xff])
    const { read, sent, got, handlerSaw } = await declared(bytes, {}, 1024)
    expect(read).toEqual({ kind: 'read', text: new TextDecoder().decode(bytes) })
    expect(got).toBe(sent)
    expect(handlerSaw).toEqual(bytes)
  })

  it('a gzip body of declared length: decoded for the guard, the handler gets the compressed bytes', async () => {
    const json = JSON.stringify({ question: 'q', context: ['é'.repeat(500)] })
    const bytes = new Uint8Array(
      await new Response(
        new Blob([json]).stream().pipeThrough(new CompressionStream('gzip')),
      ).arrayBuffer(),
    )
    const { read, got, sent, handlerSaw } = await declared(
      bytes,
      { 'content-encoding': 'gzip' },
      4096,
    )
    expect(read).toEqual({ kind: 'read', text: json })
    expect(got).toBe(sent)
    expect(handlerSaw).toEqual(bytes)
  })

  it('a gzip body of declared length that decodes past the limit is oversize, and still whole for the handler', async () => {
    const json = JSON.stringify({ context: ['0'.repeat(8192)] })
    const bytes = new Uint8Array(
      await new Response(
        new Blob([json]).stream().pipeThrough(new CompressionStream('gzip')),
      ).arrayBuffer(),
    )
    expect(bytes.byteLength).toBeLessThan(1024)
    const { read, handlerSaw } = await declared(bytes, { 'content-encoding': 'gzip' }, 1024)
    expect(read).toEqual({ kind: 'oversize' })
    expect(handlerSaw).toEqual(bytes)
  })

  it('a broken gzip body of declared length is unreadable, and still whole for the handler', async () => {
    const bytes = encoder.encode('not gzip at all')
    const { read, handlerSaw } = await declared(bytes, { 'content-encoding': 'gzip' }, 1024)
    expect(read).toEqual({ kind: 'unreadable' })
    expect(handlerSaw).toEqual(bytes)
  })

  it('a body that holds more than its declared length, past the limit, is oversize', async () => {
    const bytes = encoder.encode('x'.repeat(2048))
    const { read, handlerSaw } = await declared(bytes, { 'content-length': '10' }, 1024)
    expect(read).toEqual({ kind: 'oversize' })
    expect(handlerSaw).toEqual(bytes)
  })

  it('a body of declared length whose reader something else holds is unreadable, not an error', async () => {
    let read: RequestBody | undefined
    const app = new Hono()
    app.post(
      '/',
      async (c, next) => {
        c.req.raw.body!.getReader()
        read = await readRequestBody(c, 1024)
        await next()
      },
      (c) => c.text('handled'),
    )
    const response = await app.request('/', {
      method: 'POST',
      headers: { 'content-length': '2' },
      body: '{}',
    })
    expect(read).toEqual({ kind: 'unreadable' })
    expect(await response.text()).toBe('handled')
  })
})
