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
import { ANNOTATION_EVENT, formatSSE, SSEParser, type SSEEvent } from '../formats/sse'
import { cacheKey, type VerdictCache } from '../judge/cache'
import type { JudgeScore } from '../judge/judge'
import { describeInput, type DecisionRecord } from './decision-log'
import { decide, DEFAULT_THRESHOLDS, validateThresholds, VERDICTS, type Verdict } from './policy'
import { hold, readLimited, relay } from './stream'

export type GuardMode = 'enforce' | 'shadow'

/** Why a verdict did not come from a score. Sent as `x-rag-guard-reason`. */
export type GuardReason =
  | JudgeFailureReason
  /** The request body is not JSON. */
  | 'invalid-request-body'
  /** The context was to be read from the response, and the response body is not JSON. */
  | 'invalid-response-body'
  /** The request asked for a streamed answer, which this route's format cannot judge. */
  | 'streaming-not-supported'
  /** Hold mode: the upstream sent more than `streamBufferBytes` before the verdict was known. */
  | 'stream-buffer-exceeded'
  /** The upstream's response body broke off before the verdict was known. */
  | 'upstream-stream-error'
  /** The request body passed `maxBodyBytes` and was passed on unjudged (`onOversize: 'pass'`). */
  | 'request-too-large'
  /** The response body, read for its context, passed `maxBodyBytes`: passed on unjudged. */
  | 'response-too-large'
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
  /** The judge's full result, when the judge was called (or its cached score). */
  judge?: JudgeResult
  /** Whether the score came from the verdict cache, when one is configured. */
  cache?: 'hit' | 'miss'
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
  /**
   * Streamed answers (server-sent events) in enforce mode: `'hold'` keeps the upstream stream in
   * a buffer until the verdict is known, then sends it on or replaces it with a fallback stream;
   * `'annotate'` sends every chunk at once and appends one `rag_guard` event with the verdict
   * after the stream's own end (it can flag, never block). In shadow mode streams always pass
   * at once, and the verdict only goes to `onDecision`.
   * @default 'hold'
   */
  streamMode?: StreamMode
  /**
   * Hold mode's buffer limit. Past it, the `onError` verdict applies with reason
   * `stream-buffer-exceeded`.
   * @default 1048576
   * @unit bytes
   */
  streamBufferBytes?: number
  /** A verdict cache (`cacheApiStore`, `kvStore`): a repeated question and context skip the judge. */
  cache?: VerdictCache
  /** Receives one record per guarded request (after the response is sent when possible). */
  onDecision?: (record: DecisionRecord) => void
  /** Put the question and the documents themselves in the decision record, not only their hashes. @default false */
  logContent?: boolean
  /**
   * The largest body the guard reads whole: a guarded request's body, and a response body read
   * for its context. A larger request is refused with 413 or passed on unjudged (`onOversize`);
   * a larger response is passed on unjudged with the `onError` verdict.
   * @default 4194304
   * @unit bytes
   */
  maxBodyBytes?: number
  /** What to do with a request body over `maxBodyBytes`: `'reject'` (413) or `'pass'` (unjudged). @default 'reject' */
  onOversize?: 'reject' | 'pass'
}

export type StreamMode = 'hold' | 'annotate'

export const DEFAULT_STREAM_BUFFER_BYTES = 1_048_576
export const DEFAULT_MAX_BODY_BYTES = 4_194_304

export const DEFAULT_FALLBACK_MESSAGE = "I can't answer that reliably from the information I have."

export const HEADER_VERDICT = 'x-rag-guard-verdict'
export const HEADER_SCORE = 'x-rag-guard-score'
export const HEADER_REASON = 'x-rag-guard-reason'
export const HEADER_MODE = 'x-rag-guard-mode'
export const HEADER_CACHE = 'x-rag-guard-cache'

/** The option's value when it is one of `allowed`; otherwise an error naming it and what is allowed. */
function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    const choices = allowed.map((choice) => `"${choice}"`)
    const list = `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}`
    throw new ConfigurationError(
      `RAG Guard middleware: "${name}" must be ${list}, got ${JSON.stringify(value)}`,
      name,
    )
  }
  return value as T
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(
      `RAG Guard middleware: "${name}" must be a positive integer, got ${JSON.stringify(value)}`,
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
  if (decision.cache !== undefined) copy.headers.set(HEADER_CACHE, decision.cache)
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

const encoder = new TextEncoder()

/** The longest a verdict-cache lookup may take before it counts as a miss. */
const CACHE_LOOKUP_LIMIT_MS = 50

function isEventStream(response: Response): boolean {
  return (response.headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream')
}

/** `waitUntil` when the runtime offers it (Workers), so work after the response is not cut short. */
function defer(c: Context, work: Promise<unknown>): void {
  const settled = work.catch((error) => console.error('RAG Guard: background task failed', error))
  try {
    c.executionCtx.waitUntil(settled)
  } catch {
    // No execution context (app.request in tests, other runtimes): the promise runs on its own.
  }
}

/**
 * Hono middleware that judges, for each request, whether the retrieved context can answer its
 * question, and passes, flags or blocks the handler's answer.
 *
 * When the context is in the request, the judge starts before the handler runs, so the two run
 * in parallel; when it is in the response (or in a stream), the judge starts as soon as the
 * context is there. Pass and flag leave the handler's response as it was, adding only the
 * `x-rag-guard-*` headers.
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
  const mode = oneOf('mode', options.mode ?? 'enforce', ['enforce', 'shadow'] as const)
  const onError = oneOf('onError', options.onError ?? 'flag', VERDICTS)
  const onMissingInput = oneOf('onMissingInput', options.onMissingInput ?? onError, VERDICTS)
  const fallbackMessage = options.fallbackMessage ?? DEFAULT_FALLBACK_MESSAGE
  if (typeof fallbackMessage !== 'string') {
    throw new ConfigurationError(
      'RAG Guard middleware: "fallbackMessage" must be a string',
      'fallbackMessage',
    )
  }
  const streamMode = oneOf('streamMode', options.streamMode ?? 'hold', [
    'hold',
    'annotate',
  ] as const)
  const streamBufferBytes = positiveInteger(
    'streamBufferBytes',
    options.streamBufferBytes ?? DEFAULT_STREAM_BUFFER_BYTES,
  )
  const maxBodyBytes = positiveInteger(
    'maxBodyBytes',
    options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
  )
  const onOversize = oneOf('onOversize', options.onOversize ?? 'reject', [
    'reject',
    'pass',
  ] as const)
  const { cache, onDecision } = options

  /**
   * The request body as text, read once and left in Hono's body cache so the handler and the
   * proxy can read it again in any form; or `oversize` past the limit, with the body put back
   * together for whoever reads it next.
   */
  async function readRequestBody(
    c: Context,
  ): Promise<{ oversize: false; text: string } | { oversize: true }> {
    const declared = Number(c.req.header('content-length'))
    if (Number.isFinite(declared) && declared > maxBodyBytes) return { oversize: true }
    if (c.req.raw.bodyUsed) return { oversize: false, text: await c.req.text() }
    const read = await readLimited(c.req.raw.body, maxBodyBytes)
    if (!read.ok) {
      c.req.raw = new Request(c.req.raw, { body: relay(read.reader, { prefix: read.prefix }) })
      return { oversize: true }
    }
    // Hono's cache holds promises of each body form; the handler and the proxy read from it.
    ;(c.req.bodyCache as Record<string, unknown>).arrayBuffer = Promise.resolve(read.bytes.buffer)
    return { oversize: false, text: new TextDecoder().decode(read.bytes) }
  }
  const logContent = options.logContent === true

  const missing = (failed: Failed): GuardDecision => ({
    verdict: onMissingInput,
    mode,
    reason: failed.reason,
    message: failed.message,
  })

  function fromScore(score: JudgeScore, cached?: 'hit' | 'miss'): GuardDecision {
    return {
      verdict: decide(score.score, thresholds),
      mode,
      score: score.score,
      judge: score,
      ...(cached ? { cache: cached } : {}),
    }
  }

  /** The decision for a question and its documents: from the cache, else from the judge. */
  async function judged(
    c: Context,
    question: string,
    documents: string[],
    signal: AbortSignal,
  ): Promise<GuardDecision> {
    const key = cache
      ? await cacheKey(judge.identity, judge.promptVersion, question, documents)
      : undefined
    if (cache && key) {
      // A slow cache must not slow the request: past the bound, it counts as a miss.
      const bound = AbortSignal.timeout(CACHE_LOOKUP_LIMIT_MS)
      const hit = await Promise.race([
        cache.get(key).catch(() => undefined),
        new Promise<undefined>((resolve) =>
          bound.addEventListener('abort', () => resolve(undefined)),
        ),
      ])
      if (hit) return fromScore(hit, 'hit')
    }
    const result = await judge.judge({ question, context: documents }, { signal })
    if (result.ok) {
      if (cache && key) defer(c, cache.put(key, result))
      return fromScore(result, cache ? 'miss' : undefined)
    }
    // Failures are never cached: the next request asks the judge again.
    return {
      verdict: onError,
      mode,
      reason: result.reason,
      message: result.message,
      judge: result,
      ...(cache ? { cache: 'miss' as const } : {}),
    }
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
    const body = await readRequestBody(c)
    if (body.oversize && onOversize === 'reject') {
      return c.json(
        {
          error: {
            type: 'request_too_large',
            message: `The request body is larger than this route accepts (${maxBodyBytes} bytes).`,
          },
        },
        413,
        { [HEADER_REASON]: 'request-too-large' },
      )
    }
    const request = body.oversize ? ({ ok: false } as const) : parseJson(body.text)
    const requestBody = request.ok ? request.value : undefined
    const streaming = request.ok && format.isStreaming(requestBody, c.req.path)
    const reading = request.ok ? format.readRequest(requestBody) : undefined
    const question = reading?.question.ok ? reading.question.question : undefined
    let documents = reading?.context?.ok ? reading.context.documents : undefined

    const cancelJudge = new AbortController()
    // The client went away: stop judging (the proxy stops the upstream on the same signal).
    c.req.raw.signal?.addEventListener('abort', () => cancelJudge.abort(), { once: true })

    let upstreamAt = Date.now()
    const record = (decision: GuardDecision, status: number, stream?: DecisionRecord['stream']) => {
      if (!onDecision) return
      const sentAt = Date.now()
      const judgeResult = decision.judge
      defer(
        c,
        describeInput(question, documents, logContent).then((input) =>
          onDecision({
            message: 'rag-guard decision',
            time: new Date(sentAt).toISOString(),
            requestId:
              c.req.header('cf-ray') ?? c.req.header('x-request-id') ?? crypto.randomUUID(),
            route: c.req.routePath,
            path: c.req.path,
            method: c.req.method,
            format: format.name,
            mode,
            ...(stream ? { stream } : {}),
            verdict: decision.verdict,
            applied: mode === 'enforce' && decision.verdict === 'block',
            ...(decision.score !== undefined ? { score: decision.score } : {}),
            ...(judgeResult?.ok ? { pTrue: judgeResult.pTrue, pFalse: judgeResult.pFalse } : {}),
            ...(decision.reason ? { reason: decision.reason } : {}),
            ...(decision.cache ? { cache: decision.cache } : {}),
            ...(judgeResult
              ? { judgeLatencyMs: judgeResult.latencyMs, model: judgeResult.model }
              : {}),
            addedLatencyMs: Math.max(0, sentAt - upstreamAt),
            status,
            promptVersion: judge.promptVersion,
            ...input,
          }),
        ),
      )
    }

    if (streaming && !format.stream) {
      const decision: GuardDecision = {
        verdict: onError === 'block' ? 'flag' : onError,
        mode,
        reason: 'streaming-not-supported',
        message: `streamed answers of the ${format.name} format are passed on unjudged`,
      }
      c.set('ragGuard', Promise.resolve(decision))
      await next()
      upstreamAt = Date.now()
      finish(c, c.res, decision)
      record(decision, c.res.status, 'unsupported')
      return
    }

    let early: Promise<GuardDecision> | undefined
    if (body.oversize) {
      early = Promise.resolve(
        missing({
          ok: false,
          reason: 'request-too-large',
          message: `the request body is larger than ${maxBodyBytes} bytes`,
        }),
      )
    } else if (!reading) {
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
        ? judged(c, reading.question.question, reading.context.documents, cancelJudge.signal)
        : Promise.resolve(missing(reading.context))
    }
    // With the context in the response, the decision settles after the handler.
    let settleLate: (decision: GuardDecision) => void = () => {}
    const decided = early ?? new Promise<GuardDecision>((resolve) => (settleLate = resolve))
    c.set('ragGuard', decided)

    await next()
    upstreamAt = Date.now()

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
      record(decision, c.res.status)
      return
    }

    if (streaming && format.stream && isEventStream(c.res) && c.res.body) {
      const streamFormat = format.stream
      const upstream = c.res
      const reader = upstream.body!.getReader()
      const parser = new SSEParser()
      const seen: SSEEvent[] = []
      let decision = early
      const holding = mode === 'enforce' && streamMode === 'hold'
      /** Watches the stream for the context, and starts the judge when it appears. */
      const observe = (events: SSEEvent[]) => {
        for (const event of events) {
          // Hold mode keeps what it saw (bounded by its buffer) to shape a block after it.
          if (holding) seen.push(event)
          if (decision) continue
          const context = question === undefined ? undefined : streamFormat.contextFromEvent(event)
          if (!context) continue
          if (!context.ok) decision = Promise.resolve(missing(context))
          else {
            documents = context.documents
            decision = judged(c, question!, context.documents, cancelJudge.signal)
          }
          void decision.then(settleLate)
        }
      }
      /** The decision once the upstream has ended: without context seen, there is none to judge. */
      const finalDecision = (): Promise<GuardDecision> => {
        observe(parser.end())
        decision ??= Promise.resolve(
          missing({
            ok: false,
            reason: 'no-context',
            message: 'no context in the streamed response',
          }),
        )
        void decision.then(settleLate)
        return decision
      }
      if (mode === 'shadow' || streamMode === 'annotate') {
        // Every chunk goes out at once; the verdict is logged (shadow) or appended (annotate).
        const body = relay(reader, {
          onChunk: (chunk) => observe(parser.push(chunk)),
          onEnd: async () => {
            if (mode === 'shadow') {
              const pending = finalDecision()
              defer(
                c,
                pending.then((decision) => record(decision, upstream.status, 'shadow')),
              )
              return undefined
            }
            const final = await finalDecision()
            record(final, upstream.status, 'annotate')
            return encoder.encode(
              formatSSE({
                event: ANNOTATION_EVENT,
                data: JSON.stringify({
                  verdict: final.verdict,
                  score: final.score ?? null,
                  reason: final.reason ?? null,
                  mode,
                }),
              }),
            )
          },
          onCancel: () => cancelJudge.abort(),
        })
        const response = new Response(body, upstream)
        c.res = undefined
        c.res = response
        if (mode === 'shadow') c.res.headers.set(HEADER_MODE, 'shadow')
        return
      }

      // Hold: keep the stream until the verdict is known, within the buffer limit.
      const held = await hold(
        reader,
        streamBufferBytes,
        () => decision,
        (chunk) => observe(parser.push(chunk)),
      )
      let final: GuardDecision
      switch (held.outcome.kind) {
        case 'decided':
          final = held.outcome.value
          break
        case 'ended':
          final = await finalDecision()
          break
        case 'overflow':
          cancelJudge.abort()
          final = {
            verdict: onError,
            mode,
            reason: 'stream-buffer-exceeded',
            message: `the stream passed ${streamBufferBytes} bytes before the verdict was known`,
          }
          break
        case 'failed':
          cancelJudge.abort()
          final = {
            verdict: onError,
            mode,
            reason: 'upstream-stream-error',
            message: 'the upstream stream broke off before the verdict was known',
          }
          break
      }
      settleLate(final)
      if (final.verdict === 'block') {
        held.pending?.catch(() => {})
        void reader.cancel().catch(() => {})
        const responseHeaders = new Headers(upstream.headers)
        for (const name of BODY_HEADERS) responseHeaders.delete(name)
        finish(
          c,
          new Response(streamFormat.blockStream(seen, requestBody, fallbackMessage), {
            status: upstream.status,
            headers: responseHeaders,
          }),
          final,
        )
      } else if (held.outcome.kind === 'failed') {
        finish(c, new Response(new Blob(held.chunks).stream(), upstream), final)
      } else {
        finish(
          c,
          new Response(
            relay(reader, {
              prefix: held.chunks,
              pending: held.pending,
              onCancel: () => cancelJudge.abort(),
            }),
            upstream,
          ),
          final,
        )
      }
      record(final, upstream.status, 'hold')
      return
    }

    let response = c.res
    let responseBody: { ok: true; value: unknown } | { ok: false } | undefined
    let decision: GuardDecision
    if (early) {
      decision = await early
    } else {
      // The context is in the response: read it whole (the client gets the same bytes), then judge.
      let read: Awaited<ReturnType<typeof readLimited>>
      try {
        read = await readLimited(response.body, maxBodyBytes)
      } catch {
        // The upstream's body broke off: there is no whole answer to judge or to pass on.
        cancelJudge.abort()
        const broken: GuardDecision = {
          verdict: onError,
          mode,
          reason: 'upstream-stream-error',
          message: "the upstream's response broke off",
        }
        settleLate(broken)
        finish(
          c,
          Response.json(
            {
              error: {
                type: 'upstream_broken',
                message: "The upstream RAG endpoint's response broke off.",
              },
            },
            { status: 502 },
          ),
          broken,
        )
        record(broken, 502)
        return
      }
      if (read.ok) {
        response = new Response(read.bytes, response)
        responseBody = parseJson(new TextDecoder().decode(read.bytes))
      } else {
        // Too large to judge: the client still gets every byte, unjudged.
        response = new Response(relay(read.reader, { prefix: read.prefix }), response)
        responseBody = { ok: false }
      }
      const context: ContextReading | Failed = !read.ok
        ? {
            ok: false,
            reason: 'response-too-large',
            message: `the response body is larger than ${maxBodyBytes} bytes`,
          }
        : responseBody.ok
          ? format.readResponse(responseBody.value)
          : { ok: false, reason: 'invalid-response-body', message: 'the response body is not JSON' }
      if (context.ok) documents = context.documents
      decision =
        context.ok && question !== undefined
          ? await judged(c, question, context.documents, cancelJudge.signal)
          : missing(
              context.ok ? { ok: false, reason: 'no-question', message: 'no question' } : context,
            )
      settleLate(decision)
    }

    if (decision.verdict === 'block' && mode === 'enforce') {
      response = await blocked(c, response, responseBody, requestBody, decision)
    }
    finish(c, response, decision)
    record(decision, c.res.status)
  }
}
