/**
 * Acting on a whole (not streamed) answer: read its context when the context comes with it,
 * wait for the decision, and pass the answer on or replace it. Every read is bounded.
 */
import type { RouteFormat } from '../formats'
import { parseJson, type Parsed } from '../json'
import { readBounded } from './body'
import type { GuardDecision, Unjudged } from './decision'
import type { Exchange } from './exchange'
import { readLimits } from './extract'
import { relay } from './relay'
import { repairedText, repairOf, unrepaired } from './repair'
import { blockedResponse, errorResponse, replacedBody, type Outcome } from './respond'

const decoder = new TextDecoder()

/** An answer read whole, bounded: parsed, or too large (every byte still passed on), or broken off. */
export type AnswerRead =
  | { kind: 'read'; response: Response; upstream: Parsed }
  | { kind: 'too-large'; response: Response }
  | { kind: 'broken' }

export async function readAnswer(response: Response, limit: number): Promise<AnswerRead> {
  const read = await readBounded(response, limit).catch(() => undefined)
  if (!read) return { kind: 'broken' }
  if (!read.ok) {
    return {
      kind: 'too-large',
      response: new Response(relay(read.body, read), response),
    }
  }
  return {
    kind: 'read',
    response: new Response(read.bytes, response),
    upstream: parseJson(decoder.decode(read.bytes)),
  }
}

/** Why an answer that was not read cannot be judged. */
export function unreadAnswer(kind: 'too-large' | 'broken', limit: number): Unjudged {
  return kind === 'broken'
    ? { ok: false, reason: 'upstream-stream-error', message: "the upstream's response broke off" }
    : {
        ok: false,
        reason: 'response-too-large',
        message: `the response body is larger than ${limit} bytes`,
      }
}

/** The upstream's body broke off: there is no whole answer to judge or to pass on. */
export function brokenAnswer(exchange: Exchange): Outcome {
  const decision = exchange.settleUnjudged(unreadAnswer('broken', exchange.settings.maxBodyBytes))
  const broken = errorResponse(
    502,
    'upstream_broken',
    "The upstream RAG endpoint's response broke off.",
  )
  return { response: broken, decision, applied: false }
}

export const NOT_JSON: Unjudged = {
  ok: false,
  reason: 'invalid-response-body',
  message: 'the response body is not JSON',
}

/** Every answer of a response: each choice's, or the one answer of a format without choices. */
function answersOf(format: RouteFormat, body: unknown): Array<string | undefined> {
  return format.readAnswers?.(body) ?? [format.readAnswer?.(body)]
}

/**
 * The indexes of the choices to replace, when a block comes from some choices' groundedness
 * alone (no other check blocked): the others are passed on. Undefined: the whole answer goes.
 */
function blockedChoices(decision: GuardDecision): number[] | undefined {
  const parts = decision.checks ?? { [decision.check ?? 'sufficiency']: decision }
  const grounded = parts.groundedness
  if (!grounded?.choices) return undefined
  if (
    Object.entries(parts).some(
      ([check, part]) => check !== 'groundedness' && part.verdict === 'block',
    )
  )
    return undefined
  return grounded.choices.flatMap((choice, index) => (choice.verdict === 'block' ? [index] : []))
}

export async function guardAnswer(exchange: Exchange, response: Response): Promise<Outcome> {
  const { settings } = exchange
  let upstream: Parsed | undefined
  // The context comes with the answer, or the answer itself is to be judged: read it whole (the
  // client gets the same bytes), then judge.
  if (!exchange.started || (exchange.needsAnswer && !exchange.pending.settled)) {
    const read = await readAnswer(response, settings.maxBodyBytes)
    if (read.kind === 'broken') return brokenAnswer(exchange)
    response = read.response
    if (read.kind === 'read') {
      upstream = read.upstream
      exchange.judgeContext(
        upstream.ok ? settings.format.readResponse(upstream.value, readLimits(settings)) : NOT_JSON,
      )
      exchange.judgeAnswers(upstream.ok ? answersOf(settings.format, upstream.value) : [undefined])
    } else {
      exchange.settleUnjudged(unreadAnswer('too-large', settings.maxBodyBytes))
    }
  }
  const decision = await exchange.pending.promise
  const repair = settings.mode === 'enforce' ? repairOf(decision) : undefined
  if (repair) {
    const repaired = repairedResponse(exchange, response, upstream, repair.removed)
    if (repaired) return { response: repaired, decision, applied: true }
  }
  if ((decision.verdict !== 'block' && !repair) || settings.mode !== 'enforce') {
    return { response, decision, applied: false }
  }
  // (A repair that cannot be made is the block it stands in for.)
  const blocking = repair ? unrepaired(decision) : decision
  return {
    response: await blocked(exchange, response, upstream, blocking),
    decision: blocking,
    applied: true,
  }
}

/**
 * Repair mode: the response with its answer replaced by the answer less the removed sentences, in
 * the endpoint's own shape (a completion's message content, the JSON or LangServe answer).
 * Undefined when it cannot be built (the answer was not read): the guard then blocks.
 */
function repairedResponse(
  exchange: Exchange,
  response: Response,
  upstream: Parsed | undefined,
  removed: readonly number[],
): Response | undefined {
  const { answer, settings } = exchange
  if (!upstream?.ok || answer === undefined) return undefined
  const text = repairedText(answer, removed)
  const { format } = settings
  const body =
    format.blockAnswers?.(upstream.value, [0], text) ??
    format.blockBody(upstream.value, exchange.input.body, text)
  return body === undefined ? undefined : replacedBody(response, body)
}

/** The block response: the operator's hook, or the answer replaced in the endpoint's own shape. */
async function blocked(
  exchange: Exchange,
  response: Response,
  upstream: Parsed | undefined,
  decision: GuardDecision,
): Promise<Response> {
  const { c, settings } = exchange
  if (settings.blockResponse) {
    try {
      return await settings.blockResponse(c, decision)
    } catch (error) {
      // A broken hook must not turn a block into a 500: fall back to the default form.
      console.error('RAG Guard: blockResponse threw; using the default block response', error)
    }
  }
  if (!upstream) {
    // The answer was not read yet (the context was in the request): read it, bounded. Past the
    // limit it is not parsed and not sent: the block is built without it.
    const read = await readBounded(response, settings.maxBodyBytes).catch(() => undefined)
    if (read && !read.ok) void read.reader.cancel().catch(() => {})
    upstream = read?.ok ? parseJson(decoder.decode(read.bytes)) : { ok: false }
  }
  const choices = blockedChoices(decision)
  const { format } = settings
  if (choices && upstream.ok && format.blockAnswers) {
    // Only some choices failed groundedness: each is replaced in its own place.
    const body = format.blockAnswers(upstream.value, choices, settings.fallbackMessage)
    if (body !== undefined) return replacedBody(response, body)
  }
  return blockedResponse(
    settings.format,
    upstream,
    response,
    exchange.input.body,
    settings.fallbackMessage,
    decision,
    exchange.details,
  )
}
