import { parseJson } from '../json'

/**
 * Server-sent events, as the HTML standard defines them (§9.2 "Server-sent events", the
 * event-stream interpretation). The guard only *observes* a passing stream with this parser:
 * the bytes it forwards are the upstream's own.
 */
export interface SSEEvent {
  /** The `event:` field, or undefined for the default "message". */
  event?: string
  /** The `data:` lines joined with "\n". */
  data: string
}

/**
 * An incremental parser: feed it bytes as they come, it returns the events completed so far.
 * Each byte is looked at once: a line that spans many chunks is kept in pieces and joined when
 * it ends, so a 1 MB event costs one pass over its bytes, not one per chunk.
 */
export class SSEParser {
  #decoder = new TextDecoder()
  /** Pieces of the line not ended yet. */
  #partial: string[] = []
  #partialLength = 0
  /** The last chunk ended with CR: a LF first in the next one belongs to it. */
  #afterCR = false
  #event: string | undefined
  #data: string[] = []
  #dataLength = 0

  push(chunk: Uint8Array): SSEEvent[] {
    return this.#lines(this.#decoder.decode(chunk, { stream: true }))
  }

  /** The events left when the stream ends (a last event without its blank line is dropped, as the standard says). */
  end(): SSEEvent[] {
    return this.#lines(this.#decoder.decode())
  }

  /** Characters of the event being read and not yet complete: what the parser holds. */
  get pendingLength(): number {
    return this.#partialLength + this.#dataLength
  }

  #lines(text: string): SSEEvent[] {
    const events: SSEEvent[] = []
    let start = 0
    if (this.#afterCR) {
      this.#afterCR = false
      if (text.startsWith('\n')) start = 1
    }
    // Lines end with CRLF, LF or CR. The next of each is searched once and kept while ahead.
    let lf = text.indexOf('\n', start)
    let cr = text.indexOf('\r', start)
    while (lf !== -1 || cr !== -1) {
      const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr)
      const piece = text.slice(start, end)
      let line = piece
      if (this.#partialLength > 0) {
        this.#partial.push(piece)
        line = this.#partial.join('')
        this.#partial = []
        this.#partialLength = 0
      }
      this.#line(line, events)
      start = end + 1
      if (end === cr) {
        if (start === text.length) this.#afterCR = true
        else if (text[start] === '\n') start++
      }
      if (lf !== -1 && lf < start) lf = text.indexOf('\n', start)
      if (cr !== -1 && cr < start) cr = text.indexOf('\r', start)
    }
    if (start < text.length) {
      const rest = text.slice(start)
      this.#partial.push(rest)
      this.#partialLength += rest.length
    }
    return events
  }

  #line(line: string, events: SSEEvent[]): void {
    if (line === '') {
      // The standard drops events without data; a named one is kept, as LangServe ends its
      // streams with a bare `event: end`.
      if (this.#data.length > 0 || this.#event !== undefined) {
        events.push({ event: this.#event, data: this.#data.join('\n') })
      }
      this.#event = undefined
      this.#data = []
      this.#dataLength = 0
      return
    }
    if (line.startsWith(':')) return // a comment
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') {
      this.#data.push(value)
      this.#dataLength += value.length
    } else if (field === 'event') this.#event = value
  }
}

/** One event in wire form. Multi-line data becomes several `data:` lines. */
export function formatSSE(event: SSEEvent): string {
  const data = event.data
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}`)
    .join('\n')
  return `${event.event ? `event: ${event.event}\n` : ''}${data}\n\n`
}

/** Parses an event's data as JSON, or undefined. */
export function eventJson(event: SSEEvent): unknown {
  const parsed = parseJson(event.data)
  return parsed.ok ? parsed.value : undefined
}

/**
 * What an annotated stream ends with: one SSE comment line, after the stream's own last event.
 * Every SSE client ignores comments (HTML §9.2.6), so the clients stream exactly what they would
 * without the guard; a client that wants the verdict reads the line (see `readAnnotation`).
 */
export const ANNOTATION_PREFIX = ': rag-guard '

/** The verdict of an annotated stream, from its text (or the line itself); undefined when there is none. */
export function readAnnotation(text: string): Record<string, unknown> | undefined {
  const at = text.lastIndexOf(ANNOTATION_PREFIX)
  if (at === -1 || (at > 0 && text[at - 1] !== '\n' && text[at - 1] !== '\r')) return undefined
  const line = text.slice(at + ANNOTATION_PREFIX.length).split(/\r\n|\r|\n/, 1)[0]!
  const parsed = parseJson(line)
  return parsed.ok && typeof parsed.value === 'object' && parsed.value !== null
    ? (parsed.value as Record<string, unknown>)
    : undefined
}
