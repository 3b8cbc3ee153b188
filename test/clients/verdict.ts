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
 * A `fetch` for the `openai` client (or any client that takes a fetch) that watches streamed
 * answers for the verdict. `verdictOf(response)` gives the verdict of a response this fetch
 * returned (with the openai client: `.withResponse()`), once the stream has ended, however far
 * the client itself read it.
 */
export function verdictFetch(inner: typeof fetch = fetch) {
  const verdicts = new WeakMap<Response, Promise<StreamVerdict | undefined>>()
  const wrapped = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const response = await inner(input, init)
    const type = response.headers.get('content-type') ?? ''
    if (!response.body || !type.startsWith('text/event-stream')) return response
    // The client may stop reading at its own end marker: openai 7 cancels the body once it has
    // read `data: [DONE]`, and the verdict comes after it. So the body is split in two; the
    // client reads one branch as far as it likes, this one is read to the end.
    const [forClient, forVerdict] = response.body.tee()
    const verdict = new Response(forVerdict).text().then(verdictFromSSE)
    const watched = new Response(forClient, {
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
