/**
 * Bounded reads of request and response bodies. Nothing is read past the limit: a larger body is
 * handed on as a stream (what was read first, then the rest), never buffered whole.
 */
import type { Context } from 'hono'
import { relay } from './relay'

export type LimitedRead =
  | { ok: true; bytes: Uint8Array }
  /** Past the limit: what was read, and the reader for the rest (hand both to `relay`). */
  | { ok: false; prefix: Uint8Array[]; reader: ReadableStreamDefaultReader<Uint8Array> }

/** Reads a body whole, unless it passes `limit` bytes. Rejects when the stream errors. */
export async function readLimited(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<LimitedRead> {
  if (!body) return { ok: true, bytes: new Uint8Array(0) }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    size += value.byteLength
    if (size > limit) return { ok: false, prefix: chunks, reader }
  }
  if (chunks.length === 1) return { ok: true, bytes: chunks[0]! }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return { ok: true, bytes }
}

/** The request body as the guard saw it. */
export type RequestBody =
  | { kind: 'read'; text: string }
  /** Larger than the limit: not read (or read only up to it, and put back together for the proxy). */
  | { kind: 'oversize' }
  /** Read elsewhere before the guard, in a way that left nothing to read again. */
  | { kind: 'unreadable' }

const decoder = new TextDecoder()

/**
 * Reads the request body once, bounded by `limit`, and leaves `c.req.raw` a request whose body
 * is still whole: the handler (or the proxy) reads it again, in any form, through Hono's public
 * API. Streamed bodies work under Node as well as workerd (`duplex: 'half'`).
 */
export async function readRequestBody(c: Context, limit: number): Promise<RequestBody> {
  const original = c.req.raw
  const declared = Number(original.headers.get('content-length'))
  // Declared too large: not a byte is read, and the body goes on untouched if it goes at all.
  if (Number.isFinite(declared) && declared > limit) return { kind: 'oversize' }
  if (original.bodyUsed) {
    // An earlier middleware read the body through Hono, which keeps what it read.
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await c.req.arrayBuffer())
    } catch {
      return { kind: 'unreadable' }
    }
    c.req.raw = withBody(original, bytes)
    return bytes.byteLength > limit
      ? { kind: 'oversize' }
      : { kind: 'read', text: decoder.decode(bytes) }
  }
  if (!original.body) return { kind: 'read', text: '' }
  const read = await readLimited(original.body, limit)
  if (!read.ok) {
    c.req.raw = withBody(original, relay(read.reader, { prefix: read.prefix }))
    return { kind: 'oversize' }
  }
  c.req.raw = withBody(original, read.bytes)
  return { kind: 'read', text: decoder.decode(read.bytes) }
}

/** `request` with a new body and everything else (headers, method, signal) kept. */
function withBody(request: Request, body: Uint8Array | ReadableStream<Uint8Array>): Request {
  return new Request(request, {
    body,
    signal: request.signal,
    // Required by the Fetch standard for a stream body (Node enforces it; workerd ignores it).
    duplex: 'half',
  } as RequestInit)
}
