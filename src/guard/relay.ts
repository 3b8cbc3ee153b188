/**
 * Plumbing for streamed bodies: a relay that forwards a body, and the bounded read-ahead of hold
 * mode. The relay runs JavaScript only for the chunks someone must see; the rest of the body is
 * piped natively (no JavaScript per chunk). Cancelling the relay (the client went away) cancels
 * the upstream read and runs `onCancel`.
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
  chunks: Uint8Array[]
  /** A read started and not consumed; hand it to {@link relay}. */
  pending?: Promise<ReadableStreamReadResult<Uint8Array>>
}

/**
 * Reads the upstream into a buffer until `decided()` settles, the upstream ends, the buffer
 * passes `limit` bytes (asked again after every chunk when it is a function), or the read fails. `decided()` is asked again after every chunk, since
 * the decision may only start once a chunk has shown the context.
 */
export async function hold<T>(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: number | (() => number),
  decided: () => Promise<T> | undefined,
  onChunk: (chunk: Uint8Array) => void,
): Promise<Held<T>> {
  const chunks: Uint8Array[] = []
  let bytes = 0
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined
  for (;;) {
    if (!pending) {
      pending = reader.read()
      // Observed here so that a read left pending (the verdict won the race, then the client went
      // away) never rejects unhandled; whoever awaits it later still sees the error.
      pending.catch(() => {})
    }
    const decision = decided()
    let next:
      { kind: 'read'; result: ReadableStreamReadResult<Uint8Array> } | { kind: 'decided'; value: T }
    try {
      next = decision
        ? await Promise.race([
            pending.then((result) => ({ kind: 'read' as const, result })),
            decision.then((value) => ({ kind: 'decided' as const, value })),
          ])
        : { kind: 'read', result: await pending }
    } catch (error) {
      return { outcome: { kind: 'failed', error }, chunks }
    }
    if (next.kind === 'decided') return { outcome: next, chunks, pending }
    pending = undefined
    if (next.result.done) return { outcome: { kind: 'ended' }, chunks }
    chunks.push(next.result.value)
    bytes += next.result.value.byteLength
    onChunk(next.result.value)
    if (bytes > (typeof limit === 'number' ? limit : limit())) {
      return { outcome: { kind: 'overflow' }, chunks }
    }
  }
}
