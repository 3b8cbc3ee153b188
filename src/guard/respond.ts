/**
 * The responses the guard builds: its headers on a response, the block response in the
 * endpoint's own shape, and its JSON error bodies. No I/O.
 */
import type { RouteFormat } from '../formats'
import type { Parsed } from '../json'
import type { GuardDecision } from './decision'
import type { DecisionRecord } from './decision-log'

export const HEADER_VERDICT = 'x-rag-guard-verdict'
export const HEADER_SCORE = 'x-rag-guard-score'
export const HEADER_REASON = 'x-rag-guard-reason'
export const HEADER_MODE = 'x-rag-guard-mode'
export const HEADER_CACHE = 'x-rag-guard-cache'
export const HEADER_CHECK = 'x-rag-guard-check'
export const HEADER_SCORES = 'x-rag-guard-scores'
/**
 * `sampling` when the judge estimated the score by sampling (a detail, like the score). Absent
 * for logprobs, the default, as the mode header is absent in enforce mode.
 */
export const HEADER_ESTIMATOR = 'x-rag-guard-estimator'

/** What a phase hands back: the response to send, and the decision behind it. */
export interface Outcome {
  response: Response
  /**
   * The decision. A promise when the response leaves before the verdict is known (annotated and
   * shadow streams): it then carries no verdict headers, and the record waits for it.
   */
  decision: GuardDecision | Promise<GuardDecision>
  /** Whether the verdict changed the response. */
  applied: boolean
  /** How a streamed answer was handled. */
  stream?: DecisionRecord['stream']
}

/** The guard's error body: `{"error": {"type", "message", …}}`, one shape for every error. */
export function errorResponse(
  status: number,
  type: string,
  message: string,
  extra: Record<string, unknown> = {},
  headers?: ResponseInit['headers'],
): Response {
  return Response.json({ error: { type, message, ...extra } }, { status, headers })
}

/**
 * A copy of `response` with the guard's headers, the body stream untouched. The verdict goes to
 * everyone in enforce mode; score, reason, cache status and mode only with `details` (and in
 * shadow mode, where nothing was applied, nothing at all without them).
 */
export function withDecisionHeaders(
  response: Response,
  decision: GuardDecision | undefined,
  details: boolean,
): Response {
  const copy = new Response(response.body, response)
  if (!details) {
    if (decision && decision.mode === 'enforce') copy.headers.set(HEADER_VERDICT, decision.verdict)
    return copy
  }
  if (!decision) {
    // Its headers leave before its verdict is known (annotated and shadow streams).
    return copy
  }
  copy.headers.set(HEADER_VERDICT, decision.verdict)
  if (decision.score !== undefined) copy.headers.set(HEADER_SCORE, decision.score.toFixed(4))
  if (decision.reason !== undefined) copy.headers.set(HEADER_REASON, decision.reason)
  if (decision.cache !== undefined) copy.headers.set(HEADER_CACHE, decision.cache)
  if (decision.judge?.estimator === 'sampling') copy.headers.set(HEADER_ESTIMATOR, 'sampling')
  if (decision.mode === 'shadow') copy.headers.set(HEADER_MODE, 'shadow')
  if (decision.checks) {
    // Several checks: which one decided, and each one's score (or reason).
    if (decision.check) copy.headers.set(HEADER_CHECK, decision.check)
    copy.headers.set(
      HEADER_SCORES,
      Object.entries(decision.checks)
        .map(([check, part]) => `${check}=${part.score?.toFixed(4) ?? part.reason ?? 'none'}`)
        .join(', '),
    )
  }
  return copy
}

/** Headers of an upstream response that no longer hold once its body is replaced. */
export const BODY_HEADERS = [
  'content-length',
  'content-encoding',
  'content-md5',
  'etag',
  'content-range',
]

/** `headers` less the ones that describe a body that was replaced. */
export function replacedBodyHeaders(headers?: Headers): Headers {
  const copy = new Headers(headers)
  for (const name of BODY_HEADERS) copy.delete(name)
  return copy
}

/** The upstream's response (status, headers) with its JSON body replaced by `body`. */
export function replacedBody(response: Response, body: unknown): Response {
  const headers = replacedBodyHeaders(response.headers)
  headers.set('content-type', 'application/json; charset=utf-8')
  return new Response(JSON.stringify(body), { status: response.status, headers })
}

/**
 * The default block response: the upstream's JSON with its answer replaced by `fallback`, in the
 * route's format (same status and headers); or, when no such body can be made, a 422 that any
 * JSON client can read.
 */
export function blockedResponse(
  format: RouteFormat,
  upstream: Parsed,
  response: Response,
  requestBody: unknown,
  fallback: string,
  decision: GuardDecision,
  details: boolean,
): Response {
  const body = format.blockBody(upstream.ok ? upstream.value : undefined, requestBody, fallback)
  if (body !== undefined) {
    const headers = replacedBodyHeaders(upstream.ok ? response.headers : undefined)
    headers.set('content-type', 'application/json; charset=utf-8')
    return new Response(JSON.stringify(body), {
      status: upstream.ok ? response.status : 200,
      headers,
    })
  }
  return errorResponse(
    422,
    'insufficient_context',
    fallback,
    details
      ? { score: decision.score ?? null, ...(decision.reason ? { reason: decision.reason } : {}) }
      : {},
  )
}
