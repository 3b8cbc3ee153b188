/**
 * Reading the verdict of an annotated stream, in the format the client research recommends
 * (see probe-annotation.ts): after the stream's own last event (`data: [DONE]` for openai-chat,
 * `event: end` for LangServe) the guard sends one SSE comment line,
 *
 *   : rag-guard {"verdict":"flag","score":0.43,"reason":null,"mode":"enforce"}
 *
 * followed by a blank line. Every SSE parser drops comment lines, so clients that do not look for
 * it stream exactly what they would without the guard; a client that wants the verdict scans the
 * raw lines for this prefix.
 */

export const VERDICT_PREFIX = ': rag-guard '

export interface StreamVerdict {
  verdict: 'pass' | 'flag' | 'block'
  score: number | null
  reason: string | null
  mode: 'enforce' | 'shadow'
}

/** The verdict comment in a whole SSE body, or undefined when there is none. */
export function verdictFromSSE(text: string): StreamVerdict | undefined {
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line.startsWith(VERDICT_PREFIX))
      return JSON.parse(line.slice(VERDICT_PREFIX.length)) as StreamVerdict
  }
  return undefined
}

/**
 * Passes an SSE body through unchanged and reports the verdict comment as its line goes by
 * (`undefined` when the body ends without one).
 */
export function watchVerdict(
  report: (verdict: StreamVerdict | undefined) => void,
): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder()
  let pending = ''
  let found: StreamVerdict | undefined
  const scan = (text: string, last: boolean) => {
    pending += text
    const lines = pending.split(/\r\n|\r|\n/)
    // The last piece may be a line still coming (or the first half of a CRLF).
    pending = last ? '' : (lines.pop() ?? '')
    for (const line of lines) {
      if (!found && line.startsWith(VERDICT_PREFIX)) {
        found = JSON.parse(line.slice(VERDICT_PREFIX.length)) as StreamVerdict
        report(found)
      }
    }
  }
  return new TransformStream({
    transform(chunk, controller) {
      scan(decoder.decode(chunk, { stream: true }), false)
      controller.enqueue(chunk)
    },
    flush() {
      scan(decoder.decode(), true)
      if (!found) report(undefined)
    },
  })
}

/**
 * A `fetch` for the `openai` client (or any client that takes a fetch) that watches streamed
 * answers for the verdict. `verdictOf(response)` gives the verdict of a response this fetch
 * returned (with the openai client: `.withResponse()`), once its stream has been read to the end.
 */
export function verdictFetch(inner: typeof fetch = fetch) {
  const verdicts = new WeakMap<Response, Promise<StreamVerdict | undefined>>()
  const wrapped = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const response = await inner(input, init)
    const type = response.headers.get('content-type') ?? ''
    if (!response.body || !type.startsWith('text/event-stream')) return response
    let settle: (verdict: StreamVerdict | undefined) => void = () => {}
    const verdict = new Promise<StreamVerdict | undefined>((resolve) => (settle = resolve))
    const watched = new Response(response.body.pipeThrough(watchVerdict(settle)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    })
    verdicts.set(watched, verdict)
    return watched
  }
  return {
    fetch: wrapped as typeof fetch,
    verdictOf: (response: Response) => verdicts.get(response) ?? Promise.resolve(undefined),
  }
}
