/**
 * Benchmark only: the guard's stream pieces on their own, in workerd, so their CPU cost can be
 * told apart from the rest of a request. It fetches UPSTREAM_URL + the request's path and
 * handles the upstream's body by `?mode=`:
 *
 *   consume      read every chunk and drop it (the floor for the modes that read)
 *   sse          consume, and feed every chunk to the project's SSEParser
 *   sse-json     sse, and JSON.parse every event's data (what contextFromEvent does)
 *   linear       consume, and feed a parser that scans each chunk once (a reference, not shipped)
 *   linear-json  linear, and JSON.parse every event's data
 *   pipe         return the upstream body as it is (workerd pipes it natively)
 *   relay        return it through the project's relay() watching every chunk (JavaScript per chunk)
 *   relay-sse    relay() with the SSEParser on every chunk, as annotate mode does while it looks
 *                for the context
 *   pipe-tail    the upstream body piped natively (pipeTo an IdentityTransformStream), then one
 *                event appended at its end: annotate mode without JavaScript per chunk
 *   read-pipe    the first chunk read in JavaScript (held), the rest piped natively: hold mode
 *                once the verdict is known, without JavaScript per chunk
 *
 * The read modes answer `{ chunks, bytes, events, largestEvent }`.
 */
import { SSEParser, eventJson, type SSEEvent } from '../../../src/formats/sse'
import { relay } from '../../../src/guard/relay'

interface Env {
  UPSTREAM_URL: string
}

/**
 * A parser with the SSEParser's output whose cost is linear in the input: it scans each chunk's
 * text once and keeps an unfinished line as a list of pieces, joined when its end arrives. For
 * comparison only.
 */
class LinearSSEParser {
  #decoder = new TextDecoder()
  #parts: string[] = []
  #afterCR = false
  #event: string | undefined
  #data: string[] = []

  push(chunk: Uint8Array): SSEEvent[] {
    const text = this.#decoder.decode(chunk, { stream: true })
    const events: SSEEvent[] = []
    let index = this.#afterCR && text.charCodeAt(0) === 10 ? 1 : 0
    if (text.length > 0) this.#afterCR = false
    let start = index
    for (; index < text.length; index++) {
      const code = text.charCodeAt(index)
      if (code !== 10 && code !== 13) continue
      const piece = text.slice(start, index)
      const line = this.#parts.length > 0 ? this.#parts.join('') + piece : piece
      this.#parts = []
      this.#line(line, events)
      if (code === 13) {
        if (index + 1 === text.length) this.#afterCR = true
        else if (text.charCodeAt(index + 1) === 10) index++
      }
      start = index + 1
    }
    if (start < text.length) this.#parts.push(text.slice(start))
    return events
  }

  #line(line: string, events: SSEEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0 || this.#event !== undefined) {
        events.push({ event: this.#event, data: this.#data.join('\n') })
      }
      this.#event = undefined
      this.#data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') this.#data.push(value)
    else if (field === 'event') this.#event = value
  }
}

export default {
  async fetch(request, env) {
    const incoming = new URL(request.url)
    const mode = incoming.searchParams.get('mode') ?? 'consume'
    const target = new URL(env.UPSTREAM_URL)
    target.pathname = `${target.pathname.replace(/\/+$/, '')}${incoming.pathname}`
    const upstream = await fetch(target.href, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    })
    if (mode === 'pipe') return new Response(upstream.body, upstream)
    if (mode === 'relay') {
      return new Response(relay(upstream.body!, { watching: () => true }), upstream)
    }
    if (mode === 'pipe-tail') {
      const { readable, writable } = new IdentityTransformStream()
      void upstream.body!.pipeTo(writable, { preventClose: true }).then(async () => {
        const writer = writable.getWriter()
        await writer.write(new TextEncoder().encode('\n: rag-guard {"verdict":"pass"}\n\n'))
        await writer.close()
      })
      return new Response(readable, upstream)
    }
    if (mode === 'read-pipe') {
      const reader = upstream.body!.getReader()
      const first = await reader.read()
      reader.releaseLock()
      const { readable, writable } = new IdentityTransformStream()
      void (async () => {
        const writer = writable.getWriter()
        if (!first.done) await writer.write(first.value)
        writer.releaseLock()
        await upstream.body!.pipeTo(writable)
      })()
      return new Response(readable, upstream)
    }
    if (mode === 'relay-sse') {
      const parser = new SSEParser()
      return new Response(
        relay(upstream.body!, { watching: () => true, onChunk: (chunk) => parser.push(chunk) }),
        upstream,
      )
    }
    const parser =
      mode === 'sse' || mode === 'sse-json'
        ? new SSEParser()
        : mode === 'linear' || mode === 'linear-json'
          ? new LinearSSEParser()
          : undefined
    const json = mode.endsWith('-json')
    const reader = upstream.body!.getReader()
    let chunks = 0
    let bytes = 0
    let events = 0
    let largestEvent = 0
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      chunks += 1
      bytes += next.value.byteLength
      for (const event of parser?.push(next.value) ?? []) {
        events += 1
        largestEvent = Math.max(largestEvent, event.data.length)
        if (json) eventJson(event)
      }
    }
    return Response.json({ chunks, bytes, events, largestEvent })
  },
} satisfies ExportedHandler<Env>
