import type { ContextReading, QuestionReading, ReadLimits } from './context'
import type { SSEEvent } from './sse'

/** Where a route's retrieved context is found. */
export type ContextSource = 'request' | 'response'

/**
 * What a request asks of the endpoint: one answer, a batch of answers (one per input), or
 * something the format cannot judge (the guard then refuses it as `unsupported-endpoint`).
 */
export type Endpoint = 'single' | 'batch' | 'unsupported'

/**
 * How one kind of RAG endpoint carries its question, context and answer. Every function is pure
 * and works on parsed JSON; none throws on input of an unexpected shape. `limits` bound what a
 * reader builds (documents, conversation turns), whatever the input holds.
 */
export interface RouteFormat {
  readonly name: string
  /** Where the context is: in the request (judged in parallel) or in the response (after it). */
  readonly contextIn: ContextSource
  /** The question, and the context when it is in the request. */
  readRequest(
    body: unknown,
    limits?: ReadLimits,
  ): { question: QuestionReading; context?: ContextReading }
  /** The context, when it is in the response. */
  readResponse(body: unknown, limits?: ReadLimits): ContextReading
  /**
   * Whether the request asks for a streamed answer; `'invalid'` when its stream flag is there
   * and is not a boolean (what it asks for cannot be known). `path` is the request's URL path.
   */
  isStreaming(body: unknown, path: string): boolean | 'invalid'
  /** What the request at `path` asks for. @default 'single' */
  endpoint?(path: string): Endpoint
  /**
   * The answer's text in the response, for the groundedness check; undefined when there is
   * none. A format that cannot find the answer leaves it out (groundedness then cannot be asked).
   */
  readAnswer?(body: unknown): string | undefined
  /**
   * Every answer the response carries, in order, when it can carry several (a chat completion's
   * `choices`, with `n` > 1): each one a client receives is judged. Undefined when the body is
   * not such a response; without it, `readAnswer` is the one answer.
   */
  readAnswers?(body: unknown): Array<string | undefined> | undefined
  /** The response with the answers at `blocked` (indexes of `readAnswers`) replaced by `fallback`. */
  blockAnswers?(response: unknown, blocked: readonly number[], fallback: string): unknown
  /**
   * The body of a blocked response: the endpoint's own response shape carrying `fallback`.
   * `response` is the upstream's parsed JSON, or `undefined` when it was not JSON. Returns
   * `undefined` when no such body can be made (the guard then answers 422).
   */
  blockBody(response: unknown, request: unknown, fallback: string): unknown
  /**
   * What a block needs of the request (`request` above), kept once the request is read; the rest
   * of it, the documents with it, is let go. Without it, nothing is kept.
   */
  requestForBlock?(body: unknown): unknown
  /** How the format streams (server-sent events); without it, streamed answers are unjudgeable. */
  readonly stream?: StreamFormat
  /** How the format batches (one request, many inputs); needed for `endpoint` to say `'batch'`. */
  readonly batch?: BatchFormat
}

export interface StreamFormat {
  /** The context, when this event of the upstream stream carries it (context in the response). */
  contextFromEvent(event: SSEEvent, limits?: ReadLimits): ContextReading | undefined
  /**
   * A complete, well-formed stream that carries `fallback` as the answer, shaped after the
   * upstream events seen so far (their ids are kept), ending the way the format ends.
   */
  blockStream(seen: readonly SSEEvent[], request: unknown, fallback: string): string
  /** The piece of the answer's text this event carries, if any; the answer is the pieces in order. */
  answerPiece?(event: SSEEvent): string | undefined
}

export interface BatchFormat {
  /** The question of each input, in order; undefined when the body is not a batch. */
  questions(body: unknown, limits?: ReadLimits): QuestionReading[] | undefined
  /** The context of each output, in order; undefined when the body is not a batch answer. */
  contexts(body: unknown, limits?: ReadLimits): ContextReading[] | undefined
  /** The answer of each output, in order (for the groundedness check). */
  answers?(body: unknown): Array<string | undefined> | undefined
  /** The batch answer with the answers at `blocked` (indexes) replaced by `fallback`. */
  blockItems(response: unknown, blocked: readonly number[], fallback: string): unknown
}
