/**
 * Bounded reads of request and response bodies. Nothing is read past the limit: a larger body is
 * handed on as a stream (what was read first, then the rest), never buffered whole.
 */
import type { Context } from 'hono'
import { relay } from './relay'

export type LimitedRead =
  | { ok: true; bytes: Uint8Array }
  /** Past the limit: what was read, and the rest of the body with its reader (hand them to `relay`). */
  | {
      ok: false
      prefix: Uint8Array[]
      body: ReadableStream<Uint8Array>
      reader: ReadableStreamDefaultReader<Uint8Array>
    }

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
    if (size > limit) return { ok: false, prefix: chunks, body, reader }
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

/**
 * The length a message declares for the bytes its body yields: its `Content-Length`, unless a
 * content coding stands between the two (a fetched response is decoded as it is read).
 */
function declaredLength(message: Request | Response): number | undefined {
  const length = message.headers.get('content-length')
  if (length === null || !/^\s*\d+\s*$/.test(length)) return undefined
  const coding = (message.headers.get('content-encoding') ?? '').trim().toLowerCase()
  if (message instanceof Response && coding !== '' && coding !== 'identity') return undefined
  return Number(length)
}

/**
 * Reads a message's body, bounded by `limit`. A body whose declared length is within the limit
 * is read natively, in one piece (the connection's framing holds it to that length; more is
 * still caught); others by {@link readLimited}, which reads nothing past the limit.
 */
export async function readBounded(
  message: Request | Response,
  limit: number,
): Promise<LimitedRead> {
  const declared = declaredLength(message)
  if (declared === undefined || declared > limit || !message.body) {
    return readLimited(message.body, limit)
  }
  const bytes = new Uint8Array(await message.arrayBuffer())
  if (bytes.byteLength <= limit) return { ok: true, bytes }
  const rest = new Blob([]).stream()
  return { ok: false, prefix: [bytes], body: rest, reader: rest.getReader() }
}

/** The request body as the guard saw it. */
export type RequestBody =
  | { kind: 'read'; text: string }
  /** Larger than the limit: not read (or read only up to it, and put back together for the proxy). */
  | { kind: 'oversize' }
  /** Read elsewhere before the guard, in a way that left nothing to read again. */
  | { kind: 'unreadable' }
  /** Compressed, or in a character set, that the guard does not read. */
  | { kind: 'unsupported-encoding'; message: string }

const decoder = new TextDecoder()

/** Content codings the guard decodes (RFC 9110 §8.4.1), as `DecompressionStream` names them. */
type Coding = 'gzip' | 'deflate'
const CODINGS: Record<string, Coding> = { gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate' }
/** Charsets JSON may come in (RFC 8259 §8.1: UTF-8; ASCII is a subset). */
const CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii'])

/** How to read the body: the coding to undo, or why it cannot be read. */
function encodingOf(headers: Headers): { coding?: Coding } | { problem: string } {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(headers.get('content-type') ?? '')?.[1]
  if (charset && !CHARSETS.has(charset.toLowerCase())) {
    return { problem: `the request body is in the ${charset} character set; the guard reads UTF-8` }
  }
  const coding = (headers.get('content-encoding') ?? '').trim().toLowerCase()
  if (coding === '' || coding === 'identity') return {}
  const format = CODINGS[coding]
  return format
    ? { coding: format }
    : {
        problem: `the request body is encoded as "${coding}"; the guard reads gzip, deflate or none`,
      }
}

/** The body read as text, undoing its content coding: oversize past `limit` decoded bytes, unreadable when the coding is broken. */
async function decodedText(
  bytes: Uint8Array,
  coding: Coding | undefined,
  limit: number,
): Promise<RequestBody> {
  if (!coding) return { kind: 'read', text: decoder.decode(bytes) }
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(coding))
    const read = await readLimited(stream, limit)
    if (!read.ok) {
      void read.reader.cancel().catch(() => {})
      return { kind: 'oversize' }
    }
    return { kind: 'read', text: decoder.decode(read.bytes) }
  } catch {
    // Not the coding it says it is.
    return { kind: 'unreadable' }
  }
}

/**
 * Reads the request body once, bounded by `limit` (before and after undoing gzip or deflate),
 * and leaves `c.req.raw` a request whose body is still whole, byte for byte: the handler (or the
 * proxy) reads it again, in any form, through Hono's public API. Streamed bodies work under Node
 * as well as workerd (`duplex: 'half'`).
 *
 * A body whose declared length is within the limit (the common case) is read natively, in one
 * piece, from a copy (`clone()`, a tee the runtime keeps in native code), and `c.req.raw` stays
 * the request that came, its body unread: no second Request is built and no bytes are copied
 * into it, and the proxy forwards the body as the runtime holds it.
 */
export async function readRequestBody(c: Context, limit: number): Promise<RequestBody> {
  const original = c.req.raw
  const encoding = encodingOf(original.headers)
  if ('problem' in encoding) return { kind: 'unsupported-encoding', message: encoding.problem }
  const declared = declaredLength(original)
  // Declared too large: not a byte is read, and the body goes on untouched if it goes at all.
  if ((declared ?? 0) > limit) return { kind: 'oversize' }
  if (declared !== undefined && !original.bodyUsed && original.body) {
    return readDeclared(original, encoding.coding, limit)
  }
  let bytes: Uint8Array
  if (original.bodyUsed) {
    // An earlier middleware read the body through Hono, which keeps what it read.
    try {
      bytes = new Uint8Array(await c.req.arrayBuffer())
    } catch {
      return { kind: 'unreadable' }
    }
    c.req.raw = withBody(original, bytes)
    if (bytes.byteLength > limit) return { kind: 'oversize' }
  } else {
    let read: LimitedRead
    try {
      read = await readBounded(original, limit)
    } catch {
      // The client broke the upload off.
      return { kind: 'unreadable' }
    }
    if (!read.ok) {
      c.req.raw = withBody(original, relay(read.body, read))
      return { kind: 'oversize' }
    }
    bytes = read.bytes
    c.req.raw = withBody(original, bytes)
  }
  return decodedText(bytes, encoding.coding, limit)
}

/**
 * A body of declared length within the limit: read from a copy, natively and whole (the
 * connection's framing holds it to its length; more is still caught after undoing a coding),
 * the request's own body left unread for the handler.
 */
async function readDeclared(
  request: Request,
  coding: Coding | undefined,
  limit: number,
): Promise<RequestBody> {
  try {
    const copy = request.clone()
    if (!coding) {
      // `text()` decodes UTF-8 as the TextDecoder does (BOM dropped, bad bytes replaced).
      const text = await copy.text()
      // More than declared (a Request built in-process can claim any length): at least this
      // many bytes too.
      return text.length > limit ? { kind: 'oversize' } : { kind: 'read', text }
    }
    const bytes = new Uint8Array(await copy.arrayBuffer())
    if (bytes.byteLength > limit) return { kind: 'oversize' }
    return await decodedText(bytes, coding, limit)
  } catch {
    // The client broke the upload off (or something else holds the body's reader).
    return { kind: 'unreadable' }
  }
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
