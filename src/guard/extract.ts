/**
 * What a request gives the judge: its question (with the turns before it), its context when the
 * context travels in the request, and what it asks for (one answer, a stream, a batch) — or why
 * it cannot be judged. Everything read is bounded by the judge's input limits. Pure: it reads
 * the body the guard already read, through the route's format.
 */
import type { ContextReading, QuestionReading, ReadLimits } from '../formats/context'
import type { Endpoint, RouteFormat } from '../formats'
import type { ConversationTurn } from '../judge/prompt'
import { parseJson } from '../json'
import type { RequestBody } from './body'
import type { Unjudged } from './decision'
import type { InputOverflow } from './options'

/** The judge's input limits and the reading limits that follow from them. */
export interface InputLimits {
  maxBodyBytes: number
  maxDocuments: number
  maxInputChars: number
  inputOverflow: InputOverflow
  historyTurns: number
  maxBatchItems: number
}

/** A question the judge can be given: within the input limits. */
export interface Question {
  question: string
  history: ConversationTurn[]
  /** Characters of question and history, counted against `maxInputChars`. */
  chars: number
}

export interface RequestInput {
  /** What a block needs of the request body (the format's `requestForBlock`). */
  body: unknown
  endpoint: Endpoint
  /** Whether the request asks for a streamed answer. */
  streaming: boolean
  /** Why the request cannot be judged at all, whatever the answer; undefined when it can be. */
  problem?: Unjudged
  /** The question (of a single answer). */
  question?: Question
  /** The context from the request, or why it is unusable; undefined when it comes with the response. */
  context?: ContextReading
  /** The questions of a batch, in order. */
  batch?: Question[]
}

const unjudged = (reason: Unjudged['reason'], message: string): Unjudged => ({
  ok: false,
  reason,
  message,
})

/** What a reader may build, from the judge's input limits. */
export const readLimits = (limits: InputLimits): ReadLimits => ({
  documents: limits.maxDocuments,
  turns: limits.historyTurns,
})

/** The question within the limits: the oldest turns go first; a question alone too long is refused. */
export function boundedQuestion(
  reading: QuestionReading,
  limits: InputLimits,
): Question | Unjudged {
  if (!reading.ok) return reading
  const { question } = reading
  if (question.length > limits.maxInputChars) {
    return unjudged(
      'judge-input-too-large',
      `the question has ${question.length} characters; the judge takes at most ${limits.maxInputChars}`,
    )
  }
  const history = [...(reading.history ?? [])]
  let chars = question.length + history.reduce((total, turn) => total + turn.content.length, 0)
  // Earlier turns only help the judge see what the question refers to: drop the oldest first.
  while (history.length > 0 && chars > limits.maxInputChars / 2)
    chars -= history.shift()!.content.length
  return { question, history, chars }
}

export function readRequestInput(
  format: RouteFormat,
  body: RequestBody,
  path: string,
  limits: InputLimits,
): RequestInput {
  const endpoint = format.endpoint?.(path) ?? 'single'
  const refuse = (problem: Unjudged): RequestInput => ({
    body: undefined,
    endpoint,
    streaming: false,
    problem,
  })
  if (body.kind === 'oversize') {
    return refuse(
      unjudged('request-too-large', `the request body is larger than ${limits.maxBodyBytes} bytes`),
    )
  }
  if (body.kind === 'unsupported-encoding')
    return refuse(unjudged('unsupported-encoding', body.message))
  const parsed = body.kind === 'read' ? parseJson(body.text) : { ok: false as const }
  if (!parsed.ok) {
    const what = body.kind === 'read' ? 'is not JSON' : 'could not be read'
    return refuse(unjudged('invalid-request-body', `the request body ${what}`))
  }
  const input: RequestInput = {
    body: format.requestForBlock?.(parsed.value),
    endpoint,
    streaming: false,
  }
  const problem = (found: Unjudged): RequestInput => ({ ...input, problem: found })
  if (endpoint === 'unsupported') {
    return problem(
      unjudged('unsupported-endpoint', `the ${format.name} endpoint at ${path} cannot be judged`),
    )
  }
  const streaming = format.isStreaming(parsed.value, path)
  if (streaming === 'invalid') {
    return problem(
      unjudged('invalid-stream-flag', 'the request\u2019s "stream" is not true or false'),
    )
  }
  input.streaming = streaming
  if (streaming && !format.stream) {
    return problem(
      unjudged(
        'streaming-not-supported',
        `streamed answers of the ${format.name} format cannot be judged`,
      ),
    )
  }
  const reading = readLimits(limits)

  if (endpoint === 'batch') {
    const questions = format.batch?.questions(parsed.value, reading)
    if (!questions)
      return problem(unjudged('invalid-request-body', 'the request body is not a batch'))
    if (questions.length > limits.maxBatchItems) {
      return problem(
        unjudged(
          'judge-input-too-large',
          `the batch has ${questions.length} inputs; the guard judges at most ${limits.maxBatchItems}`,
        ),
      )
    }
    const batch: Question[] = []
    for (const [index, question] of questions.entries()) {
      const bounded = boundedQuestion(question, limits)
      if ('ok' in bounded)
        return problem({ ...bounded, message: `input ${index}: ${bounded.message}` })
      batch.push(bounded)
    }
    return { ...input, batch }
  }

  const request = format.readRequest(parsed.value, reading)
  const question = boundedQuestion(request.question, limits)
  if ('ok' in question) return problem(question)
  if (request.context && !request.context.ok) return problem(request.context)
  return { ...input, question, context: request.context }
}

/**
 * The documents the judge is given for `question`: within `maxInputChars` (and already within
 * `maxDocuments`, which the reader applied). With `truncate`, the first documents that fit, the
 * last one cut; with `refuse`, unjudgeable past the limits.
 */
export function boundedDocuments(
  context: Extract<ContextReading, { ok: true }>,
  question: Question,
  limits: InputLimits,
): { documents: string[]; truncated: boolean } | Unjudged {
  const budget = limits.maxInputChars - question.chars
  const documents: string[] = []
  let used = 0
  let truncated = context.truncated === true
  for (const document of context.documents) {
    if (used + document.length <= budget) {
      documents.push(document)
      used += document.length
      continue
    }
    truncated = true
    if (budget - used > 0) documents.push(document.slice(0, budget - used))
    break
  }
  if (truncated && limits.inputOverflow === 'refuse') {
    return unjudged(
      'judge-input-too-large',
      `the documents pass the judge's input limits (${limits.maxDocuments} documents, ${limits.maxInputChars} characters)`,
    )
  }
  return { documents, truncated }
}
