import type { Context, MiddlewareHandler } from 'hono'
import { ConfigurationError } from '../errors'
import { readContext, readQuestion } from '../formats/context'
import { parseJsonPointer, readJsonPointer, replaceAtJsonPointer } from '../formats/json-pointer'
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
   * JSON Pointer (RFC 6901) to the question in the request body.
   * @default '/question'
   */
  question?: string
  /**
   * JSON Pointer to the retrieved context in the request body: a string, an array of strings,
   * or an array of LangChain documents (`pageContent` / `page_content`).
   * @default '/context'
   */
  context?: string
  /**
   * JSON Pointer to the answer in the handler's JSON response. On block, the answer there is
   * replaced by `fallbackMessage`. Without it, a block answers 422 with an
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

/**
 * Hono middleware that judges, for each request, whether the retrieved context in the request
 * can answer its question, and passes, flags or blocks the handler's answer.
 *
 * The judge starts before the handler runs, so the two run in parallel. Pass and flag leave the
 * handler's response as it was, adding only the `x-rag-guard-*` headers.
 *
 * @example
 * ```ts
 * const app = new Hono<{ Bindings: Env }>()
 * app.post('/ask', (c, next) =>
 *   ragGuard({
 *     judge: { model: 'gpt-4o-mini', apiKey: c.env.OPENAI_API_KEY },
 *     answer: '/answer',
 *   })(c, next),
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
  const questionPointer = parseJsonPointer(options.question ?? '/question', 'question')
  const contextPointer = parseJsonPointer(options.context ?? '/context', 'context')
  const answerPointer =
    options.answer === undefined ? undefined : parseJsonPointer(options.answer, 'answer')
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

  /** Question and documents from the request body, or the reason there are none. */
  async function readInput(
    c: Context,
  ): Promise<
    | { ok: true; question: string; documents: string[] }
    | { ok: false; reason: GuardReason; message: string }
  > {
    let body: unknown
    try {
      // Read through Hono's body cache, so the handler can still read the body in any form.
      body = JSON.parse(await c.req.text())
    } catch {
      return { ok: false, reason: 'invalid-request-body', message: 'the request body is not JSON' }
    }
    const question = readQuestion(readJsonPointer(body, questionPointer), questionPointer.source)
    if (!question.ok) return question
    const context = readContext(readJsonPointer(body, contextPointer), contextPointer.source)
    if (!context.ok) return context
    return { ok: true, question: question.question, documents: context.documents }
  }

  function fromJudge(result: JudgeResult): GuardDecision {
    if (result.ok)
      return { verdict: decide(result.score, thresholds), mode, score: result.score, judge: result }
    return { verdict: onError, mode, reason: result.reason, message: result.message, judge: result }
  }

  async function blocked(c: Context, decision: GuardDecision): Promise<Response> {
    if (options.blockResponse) {
      try {
        return await options.blockResponse(c, decision)
      } catch (error) {
        // A broken hook must not turn a block into a 500: fall back to the default form.
        console.error('RAG Guard: blockResponse threw; using the default block response', error)
      }
    }
    if (answerPointer) {
      const original = c.res
      const body = await original.json().catch(() => undefined)
      const replaced =
        body === undefined ? undefined : replaceAtJsonPointer(body, answerPointer, fallbackMessage)
      if (replaced !== undefined) {
        const headers = new Headers(original.headers)
        for (const name of BODY_HEADERS) headers.delete(name)
        headers.set('content-type', 'application/json; charset=utf-8')
        return new Response(JSON.stringify(replaced), {
          status: original.status,
          statusText: original.statusText,
          headers,
        })
      }
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

  return async function ragGuard(c, next) {
    const input = await readInput(c)
    const cancelJudge = new AbortController()
    const decided: Promise<GuardDecision> = input.ok
      ? judge
          .judge(
            { question: input.question, context: input.documents },
            { signal: cancelJudge.signal },
          )
          .then(fromJudge)
      : Promise.resolve({
          verdict: onMissingInput,
          mode,
          reason: input.reason,
          message: input.message,
        })
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
      c.set('ragGuard', Promise.resolve(decision))
      c.res = withDecisionHeaders(c.res, decision)
      return
    }

    const decision = await decided
    const response =
      decision.verdict === 'block' && mode === 'enforce' ? await blocked(c, decision) : c.res
    // Clear first: assigning over a response merges the old headers into the new one.
    c.res = undefined
    c.res = withDecisionHeaders(response, decision)
  }
}
