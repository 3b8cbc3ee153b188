/**
 * `ragGuard()`: the Hono middleware. Per request it runs the phases in order —
 * read the request (bounded) → extract question and context → judge (cache, judge, cache put) →
 * let the handler answer → act on the answer (whole or streamed) → send it with the decision and
 * record it — each phase in its own module. This file is only the sequence.
 */
import type { Context, MiddlewareHandler, Next } from 'hono'
import { routePath } from 'hono/route'
import { guardAnswer } from './answer'
import { readRequestBody } from './body'
import { guardBatch } from './batch'
import { REASON_POLICY, refusalStatus, unjudgedDecision, type GuardDecision } from './decision'
import {
  decisionRecord,
  type DecisionContent,
  type DecisionContext,
  type DecisionRecord,
} from './decision-log'
import { Exchange } from './exchange'
import { readRequestInput } from './extract'
import { createJudging } from './judging'
import { resolveOptions, type GuardSettings, type RagGuardOptions } from './options'
import { errorResponse, HEADER_MODE, withDecisionHeaders, type Outcome } from './respond'
import { guardStream, isEventStream } from './stream'

export interface RagGuardVariables {
  /**
   * The guard's decision. It settles as soon as the judge answers, which may be before the
   * handler is done: a handler can `await c.var.ragGuard` to skip generating a blocked answer.
   * After the middleware, it holds the decision that was applied.
   */
  ragGuard: Promise<GuardDecision>
}

declare module 'hono' {
  interface ContextVariableMap extends RagGuardVariables {}
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
  const settings = resolveOptions(options)
  const judging = createJudging(settings.judge, settings.cache)

  return async function ragGuard(c, next) {
    // The body's text is not kept past this line: only what the format reads from it.
    const input = readRequestInput(
      settings.format,
      await readRequestBody(c, settings.maxBodyBytes),
      c.req.path,
      settings,
    )
    const exchange = new Exchange(c, settings, input, judging)
    exchange.details = await seesDetails(c, settings)
    exchange.begin()
    const outcome = refusal(exchange) ?? (await guardResponse(exchange, next))
    send(exchange, outcome)
  }
}

/** Whether the caller sees a decision's details. */
async function seesDetails(c: Context, settings: GuardSettings): Promise<boolean> {
  if (settings.details !== 'operators') return settings.details === 'everyone'
  try {
    return (await settings.isOperator?.(c)) === true
  } catch {
    return false
  }
}

/**
 * A request that cannot be judged, refused before the handler runs: in enforce mode, when the
 * unjudgeable policy blocks, with a 4xx that names the problem. Nothing is generated for it.
 */
function refusal(exchange: Exchange): Outcome | undefined {
  const decision = exchange.pending.settled
  if (
    !decision?.reason ||
    decision.verdict !== 'block' ||
    decision.mode !== 'enforce' ||
    REASON_POLICY[decision.reason] !== 'onUnjudgeable'
  ) {
    return undefined
  }
  const response = errorResponse(
    refusalStatus(decision.reason),
    'unjudgeable_request',
    `The guard cannot judge this request: ${decision.message ?? decision.reason}.`,
    { reason: decision.reason },
  )
  return { response, decision, applied: true }
}

/** Lets the handler answer, and acts on its answer. */
async function guardResponse(exchange: Exchange, next: Next): Promise<Outcome> {
  const { c, settings, input } = exchange
  c.set('ragGuard', exchange.pending.promise)
  await next()
  exchange.answeredAt = Date.now()
  if (c.error || !c.res.ok) {
    // The handler failed: there is no answer to guard, and its error reaches the client as is.
    exchange.cancel()
    const decision = unjudgedDecision(settings, {
      reason: 'response-not-ok',
      message: `the handler answered ${c.res.status}`,
    })
    exchange.pending.settle(decision)
    return { response: c.res, decision, applied: false }
  }
  if (input.batch && settings.format.batch) {
    return guardBatch(exchange, c.res, settings.format.batch)
  }
  if (input.streaming && settings.format.stream && isEventStream(c.res) && c.res.body) {
    return guardStream(exchange, c.res, settings.format.stream)
  }
  return guardAnswer(exchange, c.res)
}

/** The one exit: the response with the decision's headers, `c.var.ragGuard`, and the record. */
function send(exchange: Exchange, outcome: Outcome): void {
  const { c, settings } = exchange
  const sentAt = Date.now()
  const { decision } = outcome
  // Clear first: assigning over a response merges the old headers into the new one.
  c.res = undefined
  if (decision instanceof Promise) {
    // Its headers leave before its verdict is known; a shadow stream still says it is one.
    c.res = withDecisionHeaders(outcome.response, undefined, exchange.details)
    if (settings.mode === 'shadow' && exchange.details) c.res.headers.set(HEADER_MODE, 'shadow')
  } else {
    c.res = withDecisionHeaders(outcome.response, decision, exchange.details)
  }
  c.set('ragGuard', Promise.resolve(decision))
  if (settings.onDecision) exchange.defer(record(exchange, outcome, sentAt, settings))
}

async function record(
  exchange: Exchange,
  outcome: Outcome,
  sentAt: number,
  settings: GuardSettings,
): Promise<void> {
  const { c } = exchange
  const status = outcome.response.status
  const decision = await outcome.decision
  const where: DecisionContext = {
    requestId: requestId(c),
    route: routePath(c),
    path: c.req.path,
    method: c.req.method,
    format: settings.format.name,
    promptVersion:
      settings.judge.promptVersions?.[settings.checks[0]!] ?? settings.judge.promptVersion,
    stream: outcome.stream,
    applied: outcome.applied,
    status,
    sentAt,
    answeredAt: exchange.answeredAt,
    question: exchange.input.question?.question,
    documents: exchange.documents,
    logContent: settings.logContent,
    caller: settings.callerId?.(c),
  }
  await settings.onDecision!(await decisionRecord(decision, where), {
    question: exchange.input.question?.question,
    documents: exchange.documents,
    answer: exchange.answer,
    ...(decision.items && exchange.items
      ? { items: await itemRecords(decision.items, exchange.items, where) }
      : {}),
  })
}

/** Each item of a batch as a decision of its own: its record and its text. */
function itemRecords(
  items: readonly GuardDecision[],
  content: readonly DecisionContent[],
  where: DecisionContext,
): Promise<Array<{ record: DecisionRecord; content: DecisionContent }>> {
  return Promise.all(
    items.map(async (item, index) => {
      const about = content[index] ?? {}
      const record = await decisionRecord(item, {
        ...where,
        applied: where.applied && item.verdict === 'block',
        question: about.question,
        documents: about.documents,
      })
      return { record: { ...record, batchItem: { index, size: items.length } }, content: about }
    }),
  )
}

function requestId(c: Context): string {
  return c.req.header('cf-ray') ?? c.req.header('x-request-id') ?? crypto.randomUUID()
}
