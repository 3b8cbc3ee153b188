/**
 * What a request gives the judge: its question, its context when the context travels in the
 * request, and whether it asks for a streamed answer. Pure: it reads the body the guard already
 * read, through the route's format.
 */
import type { ContextReading, QuestionReading } from '../formats/context'
import type { RouteFormat } from '../formats'
import { parseJson } from '../json'
import type { RequestBody } from './body'
import type { Unjudged } from './decision'

export interface RequestInput {
  /** The request body, parsed, when it is JSON. */
  body: unknown
  /** Whether the request asks for a streamed answer. */
  streaming: boolean
  /** The question, or why there is none. */
  question: QuestionReading | Unjudged
  /** The context from the request, or why there is none; undefined when it comes with the response. */
  context?: ContextReading | Unjudged
}

export function readRequestInput(
  format: RouteFormat,
  body: RequestBody,
  path: string,
  maxBodyBytes: number,
): RequestInput {
  if (body.kind === 'oversize') {
    const message = `the request body is larger than ${maxBodyBytes} bytes`
    return unreadable({ ok: false, reason: 'request-too-large', message })
  }
  const parsed = body.kind === 'read' ? parseJson(body.text) : { ok: false as const }
  if (!parsed.ok) {
    const message =
      body.kind === 'read' ? 'the request body is not JSON' : 'the request body could not be read'
    return unreadable({ ok: false, reason: 'invalid-request-body', message })
  }
  const reading = format.readRequest(parsed.value)
  return {
    body: parsed.value,
    streaming: format.isStreaming(parsed.value, path),
    question: reading.question,
    context: reading.context,
  }
}

function unreadable(why: Unjudged): RequestInput {
  return { body: undefined, streaming: false, question: why }
}

/**
 * Why the request cannot be judged before the upstream answers: no usable question, or a
 * context in the request that is not usable. Undefined when it can be (or the context is still
 * to come).
 */
export function requestProblem(input: RequestInput): Unjudged | undefined {
  if (!input.question.ok) return input.question
  if (input.context && !input.context.ok) return input.context
  return undefined
}
