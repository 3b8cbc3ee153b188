import type { ContextReading, QuestionReading } from './context'
import type { SSEEvent } from './sse'

/** Where a route's retrieved context is found. */
export type ContextSource = 'request' | 'response'

/**
 * How one kind of RAG endpoint carries its question, context and answer. Every function is pure
 * and works on parsed JSON; none throws on input of an unexpected shape.
 */
export interface RouteFormat {
  readonly name: string
  /** Where the context is: in the request (judged in parallel) or in the response (after it). */
  readonly contextIn: ContextSource
  /** The question, and the context when it is in the request. */
  readRequest(body: unknown): { question: QuestionReading; context?: ContextReading }
  /** The context, when it is in the response. */
  readResponse(body: unknown): ContextReading
  /** Whether the request asks for a streamed answer. `path` is the request's URL path. */
  isStreaming(body: unknown, path: string): boolean
  /**
   * The body of a blocked response: the endpoint's own response shape carrying `fallback`.
   * `response` is the upstream's parsed JSON, or `undefined` when it was not JSON. Returns
   * `undefined` when no such body can be made (the guard then answers 422).
   */
  blockBody(response: unknown, request: unknown, fallback: string): unknown
  /** How the format streams (server-sent events); without it, streams pass through unjudged. */
  readonly stream?: StreamFormat
}

export interface StreamFormat {
  /** The context, when this event of the upstream stream carries it (context in the response). */
  contextFromEvent(event: SSEEvent): ContextReading | undefined
  /**
   * A complete, well-formed stream that carries `fallback` as the answer, shaped after the
   * upstream events seen so far (their ids are kept), ending the way the format ends.
   */
  blockStream(seen: readonly SSEEvent[], request: unknown, fallback: string): string
}
