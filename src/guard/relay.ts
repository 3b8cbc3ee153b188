/**
 * Plumbing for streamed bodies: a relay that forwards a body, and the bounded read-ahead of hold
 * mode. The relay runs JavaScript only for the chunks someone must see; the rest of the body is
 * piped natively (no JavaScript per chunk). Cancelling the relay (the client went away) cancels
 * the upstream read and runs `onCancel`. Hold mode reads a copy of the upstream in blocks (one
 * promise for many network chunks) and keeps no bytes itself: the runtime keeps them (see
 * `guard/stream.ts`).
 */
export interface RelayOptions {
  /** The reader of `body` already in use, if any (it is released before the native pipe). */
  reader?: ReadableStreamDefaultReader<Uint8Array>
  /** Chunks already read from the upstream, sent first. */
  prefix?: Uint8Array[]
  /** A read of the upstream that was started and not yet consumed. */
  pending?: Promise<ReadableStreamReadResult<Uint8Array>>
  /**
   * Whether the next chunk must pass through JavaScript (asked before each read). Once it says
   * no (or without it), the rest of the body is piped natively, unseen.
   */
  watching?: () => boolean
  /** Sees each chunk read in JavaScript. */
  onChunk?: (chunk: Uint8Array) => void
  /** Runs when the upstream ends (`unseen`: its last chunks were piped natively); what it returns is sent last. */
  onEnd?: (unseen: boolean) => Promise<Uint8Array | undefined> | Uint8Array | undefined
  onCancel?: () => void
}

/**
 * A stream that passes bytes without JavaScript per chunk when a body is piped into it: workerd's
 * `IdentityTransformStream`, elsewhere (Node) a standard `TransformStream`. Writes resolve as the
 * reader takes them: nothing is read ahead of the client.
 */
function passage(): ReadableWritablePair<Uint8Array, Uint8Array> {
  const native = (globalThis as { IdentityTransformStream?: typeof IdentityTransformStream })
    .IdentityTransformStream
  return native
    ? (new native() as unknown as ReadableWritablePair<Uint8Array, Uint8Array>)
    : new TransformStream<Uint8Array, Uint8Array>()
}

export function relay(
  body: ReadableStream<Uint8Array>,
  options: RelayOptions = {},
): ReadableStream<Uint8Array> {
  const { readable, writable } = passage()
  const reader = options.reader ?? body.getReader()
  void (async () => {
    let writer = writable.getWriter()
    let piping = false
    try {
      for (const chunk of options.prefix ?? []) await writer.write(chunk)
      let next = options.pending
      while (next || options.watching?.()) {
        const result = await (next ?? reader.read())
        next = undefined
        if (result.done) {
          const tail = await options.onEnd?.(false)
          if (tail) await writer.write(tail)
          return await writer.close()
        }
        options.onChunk?.(result.value)
        await writer.write(result.value)
      }
      reader.releaseLock()
      writer.releaseLock()
      piping = true
      await body.pipeTo(writable, { preventClose: true })
      piping = false
      const tail = await options.onEnd?.(true)
      writer = writable.getWriter()
      if (tail) await writer.write(tail)
      await writer.close()
    } catch (error) {
      // The upstream broke off (the client sees the same truncated stream it would without the
      // guard), or the client went away (the upstream read is cancelled). A native pipe has
      // passed either on to the other side already.
      options.onCancel?.()
      if (!piping) {
        void reader.cancel(error).catch(() => {})
        void writer.abort(error).catch(() => {})
      }
    }
  })()
  return readable
}

export type HoldOutcome<T> =
  | { kind: 'decided'; value: T }
  | { kind: 'ended' }
  | { kind: 'overflow' }
  | { kind: 'failed'; error: unknown }

export interface Held<T> {
  outcome: HoldOutcome<T>
  /** Bytes read before the holding ended. */
  received: number
}

/** The most a block read takes at once while a verdict is pending. */
export const BLOCK_BYTES = 64 * 1024

/**
 * Reads a stream in blocks: at least `min` bytes a read (fewer only at its end), where the
 * runtime can; elsewhere one chunk a read. A block's view is only valid until the next read (its
 * buffer is reused), so callers look at it at once and keep nothing of it.
 */
export interface BlockReader {
  read(min: number): Promise<ReadableStreamReadResult<Uint8Array>>
  cancel(): Promise<void>
}

type ReadAtLeast = (min: number, view: Uint8Array) => Promise<ReadableStreamReadResult<Uint8Array>>

/**
 * Bodies the runtime reads from the network (a `fetch` response's body), marked by whoever
 * fetched them. Only these are piped natively by {@link blockReader}: workerd cannot pipe a tee
 * branch of a stream made in the Worker (a string body, an `IdentityTransformStream`'s readable)
 * into an `IdentityTransformStream` ("Inter-TransformStream pipeTo() is not implemented", thrown
 * where no promise reports it: the pipe never settles).
 */
const networkBodies = new WeakSet<ReadableStream>()

/** Marks a response body as read from the network (see {@link blockReader}). */
export function markNetworkBody(body: ReadableStream | null): void {
  if (body) networkBodies.add(body)
}

/** Whether {@link blockReader} may pipe a tee branch of this body natively. */
export const isNetworkBody = (body: ReadableStream) => networkBodies.has(body)

/**
 * With `native` (a tee branch of a network body, in workerd) the stream is piped natively into
 * an `IdentityTransformStream` and read from there with `readAtLeast` (many network chunks for one
 * promise). Not on the stream itself: a read that waits for more bytes than have come loses the
 * ones it has if the stream breaks meanwhile, and a tee passes that on to its other branch — the
 * held bytes. The pipe reads the stream a network chunk at a time, as the runtime's own pipes do,
 * so only this reader's copy can be lost, and it keeps none. Otherwise: one chunk a read.
 */
export function blockReader(stream: ReadableStream<Uint8Array>, native: boolean): BlockReader {
  const identity = (globalThis as { IdentityTransformStream?: typeof IdentityTransformStream })
    .IdentityTransformStream
  if (!native || !identity) {
    const reader = stream.getReader()
    return { read: () => reader.read(), cancel: () => reader.cancel() }
  }
  const { readable, writable } = new identity()
  const reader = readable.getReader({ mode: 'byob' })
  const readAtLeast = (reader as unknown as { readAtLeast: ReadAtLeast }).readAtLeast
  // The pipe ends with the stream's end or error (the reads below see the same), or when the
  // reader is cancelled (the pipe then cancels the stream).
  stream.pipeTo(writable).catch(() => {})
  let buffer = new ArrayBuffer(BLOCK_BYTES)
  return {
    async read(min) {
      const view = new Uint8Array(buffer)
      const result = await readAtLeast.call(reader, Math.max(1, Math.min(min, BLOCK_BYTES)), view)
      // The view's buffer is the one passed in, transferred: the next read takes it again.
      if (result.value) buffer = result.value.buffer as ArrayBuffer
      return result
    },
    cancel: () => reader.cancel(),
  }
}

/**
 * Reads the upstream (in blocks, keeping no bytes: the caller holds them elsewhere) until
 * `decided()` settles, the upstream ends, more than `limit` bytes have come (asked again after
 * every block when it is a function), or the read fails. `decided()` is asked again after every
 * block, since the decision may only start once a block has shown the context; until then a read
 * returns as soon as any bytes have come, so the context is seen when it arrives.
 */
export async function hold<T>(
  reader: BlockReader,
  limit: number | (() => number),
  decided: () => Promise<T> | undefined,
  onChunk: (chunk: Uint8Array) => void,
): Promise<Held<T>> {
  let received = 0
  const over = () => (typeof limit === 'number' ? limit : limit())
  // One reaction on the decision for the whole holding, not one per read: it wakes the read
  // being waited for.
  let decision: Promise<T> | undefined
  let verdict: { value: T } | undefined
  let wake: (() => void) | undefined
  type Next = { result: ReadableStreamReadResult<Uint8Array> } | { error: unknown } | undefined
  for (;;) {
    if (!decision) {
      decision = decided()
      void decision?.then((value) => {
        verdict = { value }
        wake?.()
      })
    }
    if (verdict) return { outcome: { kind: 'decided', value: verdict.value }, received }
    // Before judging has started, any bytes at all (the context may be in them); after, a block,
    // but never much past the limit.
    const pending = reader.read(decision ? over() - received + 1 : 1)
    const next = await new Promise<Next>((resolve) => {
      wake = () => resolve(undefined)
      pending.then(
        (result) => resolve({ result }),
        (error: unknown) => resolve({ error }),
      )
    })
    wake = undefined
    if (next === undefined) {
      // The verdict came first; the read is left to the caller's cancel.
      return { outcome: { kind: 'decided', value: verdict!.value }, received }
    }
    if ('error' in next) return { outcome: { kind: 'failed', error: next.error }, received }
    const { done, value } = next.result
    if (value && value.byteLength > 0) {
      received += value.byteLength
      onChunk(value)
      if (received > over()) return { outcome: { kind: 'overflow' }, received }
    }
    if (done) return { outcome: { kind: 'ended' }, received }
  }
}

/**
 * The first `bytes` bytes of a held stream (all it has when undefined, up to its end or its
 * error), and the stream cancelled: what a block or a replaced answer is shaped from.
 */
export async function readHeld(
  stream: ReadableStream<Uint8Array>,
  bytes: number | undefined,
): Promise<Uint8Array[]> {
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let read = 0
  try {
    while (bytes === undefined || read < bytes) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      read += value.byteLength
    }
  } catch {
    // Broken off: what came before it is all there is.
  }
  void reader.cancel().catch(() => {})
  return chunks
}

/**
 * A held stream whose upstream broke off before the verdict: what arrived, then a clean end (the
 * verdict said to pass it on; the break is reported in the decision).
 */
export function untilBroken(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = stream.getReader()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) controller.close()
        else controller.enqueue(value)
      } catch {
        controller.close()
      }
    },
    cancel: (reason) => reader.cancel(reason),
  })
}
