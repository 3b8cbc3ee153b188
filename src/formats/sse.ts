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

/** An incremental parser: feed it bytes as they come, it returns the events completed so far. */
export class SSEParser {
  #decoder = new TextDecoder()
  #buffer = ''
  #event: string | undefined
  #data: string[] = []

  push(chunk: Uint8Array): SSEEvent[] {
    return this.#lines(this.#decoder.decode(chunk, { stream: true }))
  }

  /** The events left when the stream ends (a last event without its blank line is dropped, as the standard says). */
  end(): SSEEvent[] {
    return this.#lines(this.#decoder.decode())
  }

  #lines(text: string): SSEEvent[] {
    this.#buffer += text
    const events: SSEEvent[] = []
    // Lines end with CRLF, LF or CR. A CR at the very end may be the first half of a CRLF.
    let start = 0
    for (let index = 0; index < this.#buffer.length; index++) {
      const char = this.#buffer[index]
      if (char !== '\n' && char !== '\r') continue
      if (char === '\r' && index === this.#buffer.length - 1) break
      this.#line(this.#buffer.slice(start, index), events)
      if (char === '\r' && this.#buffer[index + 1] === '\n') index++
      start = index + 1
    }
    this.#buffer = this.#buffer.slice(start)
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
      return
    }
    if (line.startsWith(':')) return // a comment
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') this.#data.push(value)
    else if (field === 'event') this.#event = value
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
 * The event an annotated stream ends with. It comes after the stream's own last event
 * (`data: [DONE]`, `event: end`), where the official clients have stopped reading.
 */
export const ANNOTATION_EVENT = 'rag_guard'
