import type { Context, MiddlewareHandler } from 'hono'
import { ConfigurationError } from '../errors'
import type { ContextReading, QuestionReading } from '../formats/context'
import { createFormat, type ContextLocation, type FormatName, type RouteFormat } from '../formats'
import {
  createJudge,
  type Judge,
  type JudgeFailureReason,
  type JudgeOptions,
  type JudgeResult,
} from '../judge/judge'
import { decide, DEFAULT_THRESHOLDS, isVerdict, validateThresholds, type Verdict } from './policy'

export type GuardMode = 'enforce' | 'shadow'

/** Why a verdict did not come from a score. Sent as `x-rag-guard-reason`. */
export type GuardReason =
  | JudgeFailureReason
  /** The request body is not JSON. */
  | 'invalid-request-body'
  /** The context was to be read from the response, and the response body is not JSON. */
  | 'invalid-response-body'
  /** The request asked for a streamed answer, which this route passes on unjudged. */
  | 'streaming-not-supported'
  /** The value at the question pointer is not a string. */
  | 'invalid-question'
  /** The value at the context pointer is not a string, strings or documents. */
  | 'invalid-context'
  /** The handler answered with a non-2xx status: there is no answer to judge, it is passed on. */
  | 'response-not-ok'

/** What the guard decided for one request. */
export interface GuardDecision {
  /** The verdict; in shadow mode, the one that would have been applied. */
  verdict: Verdict
  mode: GuardMode
  /** P(True), when the judge gave one. */
  score?: number
  /** Set when the verdict did not come from a score. */
  reason?: GuardReason
  /** What went wrong, for logs, when there is a reason. */
  message?: string
  /** The judge's full result, when the judge was called. */
  judge?: JudgeResult
}

export interface RagGuardVariables {
  /**
   * The guard's decision. It settles as soon as the judge answers, which may be before the
   * handler is done: a handler can `await c.var.ragGuard` to skip generating a blocked answer.
   */
  ragGuard: Promise<GuardDecision>
}

declare module 'hono' {
  interface ContextVariableMap extends RagGuardVariables {}
}

export interface RagGuardOptions {
  /** The judge: one made by `createJudge`, or the options to make one. */
  judge: Judge | JudgeOptions
  /**
   * How the endpoint carries question, context and answer: `'json'` (JSON Pointers below),
   * `'openai-chat'` (chat completions), `'langserve'` (LangServe / retrieval-chain output), or
   * a `RouteFormat` of your own.
   * @default 'json'
   */
  format?: FormatName | RouteFormat
  /**
   * JSON Pointer (RFC 6901) to the question in the request body (`json`, `langserve`).
   * @default '/question' for json; the input for langserve
   */
  question?: string
  /**
   * Where the retrieved context is: a JSON Pointer into the request body, or
   * `{ in: 'request' | 'response', pointer }`; `'system'` for openai-chat. The value there is a
   * string, an array of strings, or an array of documents (`pageContent`, `page_content` or
   * `content`).
   * @default '/context' for json; 'system' for openai-chat; '/output/context' for langserve
   */
  context?: ContextLocation | 'system'
  /**
   * JSON Pointer to the answer in the response body (`json`, `langserve`). On block, the answer
   * there is replaced by `fallbackMessage`. For json without it, a block answers 422 with an
   * `insufficient_context` error.
   */
  answer?: string
  /** Scores below this are blocked. @default 0.1 */
  blockBelow?: number
  /** Scores below this are flagged. @default 0.5 */
  flagBelow?: number
  /**
   * `enforce` applies the verdict; `shadow` never alters the response and only reports, in
   * headers and in `c.var.ragGuard`, what it would have done.
   * @default 'enforce'
   */
  mode?: GuardMode
  /**
   * Verdict when the judge gives no score (timeout, HTTP error, no logprobs, an answer other
   * than True/False).
   * @default 'flag'
   */
  onError?: Verdict
  /**
   * Verdict when the request has no usable question or context (body not JSON, pointer
   * missing, wrong type, empty).
   * @default the `onError` verdict
   */
  onMissingInput?: Verdict
  /**
   * The answer a blocked response carries.
   * @default "I can't answer that reliably from the information I have."
   */
  fallbackMessage?: string
  /**
   * Builds the response for a block, in place of the default (the answer replaced, or a 422).
   * The handler's response is still at `c.res`.
   */
  blockResponse?: (c: Context, decision: GuardDecision) => Response | Promise<Response>
}

export const DEFAULT_FALLBACK_MESSAGE = "I can't answer that reliably from the information I have."

export const HEADER_VERDICT = 'x-rag-guard-verdict'
export const HEADER_SCORE = 'x-rag-guard-score'
export const HEADER_REASON = 'x-rag-guard-reason'
export const HEADER_MODE = 'x-rag-guard-mode'

function checkVerdict(name: string, value: unknown): Verdict {
  if (!isVerdict(value)) {
    throw new ConfigurationError(
      `RAG Guard middleware: "${name}" must be "pass", "flag" or "block", got ${JSON.stringify(value)}`,
      name,
    )
  }
  return value
}

/** A copy of `response` with the guard's headers, the body stream untouched. */
function withDecisionHeaders(response: Response, decision: GuardDecision): Response {
  const copy = new Response(response.body, response)
  copy.headers.set(HEADER_VERDICT, decision.verdict)
  if (decision.score !== undefined) copy.headers.set(HEADER_SCORE, decision.score.toFixed(4))
  if (decision.reason !== undefined) copy.headers.set(HEADER_REASON, decision.reason)
  if (decision.mode === 'shadow') copy.headers.set(HEADER_MODE, 'shadow')
  return copy
}

/** Headers of the handler's response that no longer hold once its body is replaced. */
const BODY_HEADERS = ['content-length', 'content-encoding', 'content-md5', 'etag', 'content-range']

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

type Failed =
  | Extract<QuestionReading | ContextReading, { ok: false }>
  | { ok: false; reason: GuardReason; message: string }

/**
 * Hono middleware that judges, for each request, whether the retrieved context can answer its
 * question, and passes, flags or blocks the handler's answer.
 *
 * When the context is in the request, the judge starts before the handler runs, so the two run
 * in parallel; when it is in the response, the judge runs once the response is there. Pass and
 * flag leave the handler's response as it was, adding only the `x-rag-guard-*` headers.
 *
 * @example
 * ```ts
 * import { env } from 'cloudflare:workers'
 *
 * app.post(
 *   '/ask',
 *   ragGuard({ judge: { apiKey: env.OPENAI_API_KEY }, answer: '/answer' }),
 *   async (c) => c.json({ answer: await generate(await c.req.json()) }),
 * )
 * ```
 */
export function ragGuard(
  options: RagGuardOptions,
): MiddlewareHandler<{ Variables: RagGuardVariables }> {
  if (!options || typeof options !== 'object' || !options.judge) {
    throw new ConfigurationError('RAG Guard middleware requires the "judge" option', 'judge')
  }
  const judge =
    'judge' in options.judge && typeof options.judge.judge === 'function'
      ? (options.judge as Judge)
      : createJudge(options.judge as JudgeOptions)
  const format =
    typeof options.format === 'object'
      ? options.format
      : createFormat(options.format ?? 'json', {
          question: options.question,
          context: options.context,
          answer: options.answer,
        })
  const thresholds = validateThresholds({
    blockBelow: options.blockBelow ?? DEFAULT_THRESHOLDS.blockBelow,
    flagBelow: options.flagBelow ?? DEFAULT_THRESHOLDS.flagBelow,
  })
  const mode = options.mode ?? 'enforce'
  if (mode !== 'enforce' && mode !== 'shadow') {
    throw new ConfigurationError(
      `RAG Guard middleware: "mode" must be "enforce" or "shadow", got ${JSON.stringify(mode)}`,
      'mode',
    )
  }
  const onError = checkVerdict('onError', options.onError ?? 'flag')
  const onMissingInput = checkVerdict('onMissingInput', options.onMissingInput ?? onError)
  const fallbackMessage = options.fallbackMessage ?? DEFAULT_FALLBACK_MESSAGE
  if (typeof fallbackMessage !== 'string') {
    throw new ConfigurationError(
      'RAG Guard middleware: "fallbackMessage" must be a string',
      'fallbackMessage',
    )
  }

  const missing = (failed: Failed): GuardDecision => ({
    verdict: onMissingInput,
    mode,
    reason: failed.reason,
    message: failed.message,
  })

  async function judged(
    question: string,
    documents: string[],
    signal: AbortSignal,
  ): Promise<GuardDecision> {
    const result = await judge.judge({ question, context: documents }, { signal })
    if (result.ok)
      return { verdict: decide(result.score, thresholds), mode, score: result.score, judge: result }
    return { verdict: onError, mode, reason: result.reason, message: result.message, judge: result }
  }

  async function blocked(
    c: Context,
    response: Response,
    responseBody: { ok: true; value: unknown } | { ok: false } | undefined,
    requestBody: unknown,
    decision: GuardDecision,
  ): Promise<Response> {
    if (options.blockResponse) {
      try {
        return await options.blockResponse(c, decision)
      } catch (error) {
        // A broken hook must not turn a block into a 500: fall back to the default form.
        console.error('RAG Guard: blockResponse threw; using the default block response', error)
      }
    }
    const parsed = responseBody ?? parseJson(await response.text().catch(() => ''))
    const body = format.blockBody(
      parsed.ok ? parsed.value : undefined,
      requestBody,
      fallbackMessage,
    )
    if (body !== undefined) {
      const headers = new Headers(parsed.ok ? response.headers : undefined)
      for (const name of BODY_HEADERS) headers.delete(name)
      headers.set('content-type', 'application/json; charset=utf-8')
      return new Response(JSON.stringify(body), {
        status: parsed.ok ? response.status : 200,
        headers,
      })
    }
    // No answer to replace: say so in a form any JSON client can read.
    return Response.json(
      {
        error: {
          type: 'insufficient_context',
          message: fallbackMessage,
          score: decision.score ?? null,
          ...(decision.reason ? { reason: decision.reason } : {}),
        },
      },
      { status: 422 },
    )
  }

  /** Sends `response` with the decision's headers. */
  function finish(c: Context, response: Response, decision: GuardDecision): void {
    // Clear first: assigning over a response merges the old headers into the new one.
    c.res = undefined
    c.res = withDecisionHeaders(response, decision)
  }

  return async function ragGuard(c, next) {
    // Read through Hono's body cache, so the handler can still read the body in any form.
    const request = parseJson(await c.req.text())
    const requestBody = request.ok ? request.value : undefined

    if (request.ok && format.isStreaming(requestBody, c.req.path)) {
      const decision: GuardDecision = {
        verdict: onError === 'block' ? 'flag' : onError,
        mode,
        reason: 'streaming-not-supported',
        message: 'streamed answers are passed on unjudged',
      }
      c.set('ragGuard', Promise.resolve(decision))
      await next()
      finish(c, c.res, decision)
      return
    }

    const reading = request.ok ? format.readRequest(requestBody) : undefined
    const cancelJudge = new AbortController()
    let early: Promise<GuardDecision> | undefined
    if (!reading) {
      early = Promise.resolve(
        missing({
          ok: false,
          reason: 'invalid-request-body',
          message: 'the request body is not JSON',
        }),
      )
    } else if (!reading.question.ok) {
      early = Promise.resolve(missing(reading.question))
    } else if (reading.context) {
      early = reading.context.ok
        ? judged(reading.question.question, reading.context.documents, cancelJudge.signal)
        : Promise.resolve(missing(reading.context))
    }
    // With the context in the response, the decision settles after the handler.
    let settleLate: (decision: GuardDecision) => void = () => {}
    const decided = early ?? new Promise<GuardDecision>((resolve) => (settleLate = resolve))
    c.set('ragGuard', decided)

    await next()

    if (c.error || !c.res.ok) {
      // The handler failed: there is no answer to guard, and its error reaches the client as is.
      cancelJudge.abort()
      const decision: GuardDecision = {
        verdict: 'pass',
        mode,
        reason: 'response-not-ok',
        message: `the handler answered ${c.res.status}`,
      }
      settleLate(decision)
      c.set('ragGuard', Promise.resolve(decision))
      finish(c, c.res, decision)
      return
    }

    let response = c.res
    let responseBody: { ok: true; value: unknown } | { ok: false } | undefined
    let decision: GuardDecision
    if (early) {
      decision = await early
    } else {
      // The context is in the response: read it whole (the client gets the same bytes), then judge.
      const bytes = await response.arrayBuffer()
      response = new Response(bytes, response)
      responseBody = parseJson(new TextDecoder().decode(bytes))
      const context: ContextReading | Failed = responseBody.ok
        ? format.readResponse(responseBody.value)
        : { ok: false, reason: 'invalid-response-body', message: 'the response body is not JSON' }
      const question = reading?.question
      decision =
        context.ok && question?.ok
          ? await judged(question.question, context.documents, cancelJudge.signal)
          : missing(
              context.ok ? { ok: false, reason: 'no-question', message: 'no question' } : context,
            )
      settleLate(decision)
    }

    if (decision.verdict === 'block' && mode === 'enforce') {
      response = await blocked(c, response, responseBody, requestBody, decision)
    }
    finish(c, response, decision)
  }
}
