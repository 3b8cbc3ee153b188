/**
 * Plumbing for streamed answers: a relay that forwards an upstream body chunk by chunk, and the
 * bounded read-ahead of hold mode. Cancelling the relay (the client went away) cancels the
 * upstream read and runs `onCancel`.
 */
export interface RelayOptions {
  /** Chunks already read from the upstream, sent first. */
  prefix?: Uint8Array[]
  /** A read of the upstream that was started and not yet consumed. */
  pending?: Promise<ReadableStreamReadResult<Uint8Array>>
  /** Sees each chunk as it passes. */
  onChunk?: (chunk: Uint8Array) => void
  /** Runs when the upstream ends; what it returns is sent last. */
  onEnd?: () => Promise<Uint8Array | undefined> | Uint8Array | undefined
  onCancel?: () => void
}

export function relay(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  options: RelayOptions = {},
): ReadableStream<Uint8Array> {
  const prefix = [...(options.prefix ?? [])]
  let pending = options.pending
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const buffered = prefix.shift()
        if (buffered) return controller.enqueue(buffered)
        let result: ReadableStreamReadResult<Uint8Array>
        try {
          result = await (pending ?? reader.read())
        } catch (error) {
          // The upstream broke off: the client sees the same truncated stream it would without the guard.
          options.onCancel?.()
          return controller.error(error)
        } finally {
          pending = undefined
        }
        if (result.done) {
          const tail = await options.onEnd?.()
          if (tail) controller.enqueue(tail)
          return controller.close()
        }
        options.onChunk?.(result.value)
        controller.enqueue(result.value)
      },
      cancel(reason) {
        options.onCancel?.()
        return reader.cancel(reason)
      },
    },
    // No read-ahead: the upstream is read only as fast as the client reads.
    { highWaterMark: 0 },
  )
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
