/**
 * One guarded request as the phases share it: what the request gave, the decision being made,
 * and the means to judge, to settle and to cancel. Each phase reads and advances it; only the
 * middleware creates it.
 */
import type { Context } from 'hono'
import type { ContextReading } from '../formats/context'
import {
  judgedDecision,
  PendingDecision,
  unjudgedDecision,
  type GuardDecision,
  type JudgeOutcome,
  type Unjudged,
} from './decision'
import { boundedDocuments, type Question, type RequestInput } from './extract'
import type { Judging } from './judging'
import type { GuardSettings } from './options'

export class Exchange {
  /** The decision: the first of the judge and whatever settles it otherwise. */
  readonly pending = new PendingDecision()
  /** Whether judging has started (or the decision was settled without a judge). */
  started = false
  /** The documents judged, once known (for the decision record). */
  documents: readonly string[] | undefined
  /** When the handler's (upstream's) response arrived. */
  answeredAt: number | undefined
  /** Whose cached scores this request may use ('' when the cache is shared). */
  readonly scope: string
  /** Whether this request's caller sees the decision's details (score, reason, cache, mode). */
  details = false
  readonly #judgeCall = new AbortController()

  constructor(
    readonly c: Context,
    readonly settings: GuardSettings,
    readonly input: RequestInput,
    private readonly judging: Judging,
  ) {
    this.scope = settings.cacheScope === 'caller' ? (settings.callerId?.(c) ?? '') : ''
    // The client went away: stop judging (the proxy stops the upstream on the same signal).
    c.req.raw.signal?.addEventListener('abort', () => this.cancel(), { once: true })
  }

  /**
   * Starts what can start before the upstream answers: the judge, when the request holds both
   * question and context; or the decision, when the request cannot be judged at all.
   */
  begin(): void {
    const { input } = this
    if (input.problem) this.settleUnjudged(input.problem)
    else if (input.context) this.judgeContext(input.context)
  }

  /** Judges the request's question against its context, once the context is known. */
  judgeContext(context: ContextReading | Unjudged): void {
    const question = this.input.question
    if (this.started || !question) return
    this.started = true
    const decision = this.decide(question, context, (documents) => (this.documents = documents))
    if (decision instanceof Promise) this.pending.follow(decision)
    else this.pending.settle(decision)
  }

  /**
   * The decision for one question against one context: within the judge's input limits, and
   * with no documents the no-documents score without a judge call. Settled at once when the
   * judge is not needed; a promise when it is. `judged` sees the documents the judge is given.
   */
  decide(
    question: Question,
    context: ContextReading | Unjudged,
    judged: (documents: readonly string[]) => void = () => {},
  ): GuardDecision | Promise<GuardDecision> {
    if (!context.ok) return unjudgedDecision(this.settings, context)
    const bounded = boundedDocuments(context, question, this.settings)
    if ('ok' in bounded) return unjudgedDecision(this.settings, bounded)
    judged(bounded.documents)
    if (bounded.documents.length === 0) {
      return unjudgedDecision(this.settings, {
        reason: 'no-documents',
        message: 'no documents were retrieved',
      })
    }
    const truncated = bounded.truncated ? { truncated: true } : {}
    return this.judgeOne(question, bounded.documents).then((outcome) => ({
      ...judgedDecision(this.settings, outcome),
      ...truncated,
    }))
  }

  /** One judge call (through the cache) for a question and its documents. Never rejects. */
  judgeOne(question: Question, documents: readonly string[]): Promise<JudgeOutcome> {
    return this.judging({
      question: question.question,
      history: question.history,
      documents,
      scope: this.scope,
      signal: this.#judgeCall.signal,
      defer: (task) => this.defer(task),
    })
  }

  /**
   * Settles the decision on a reason, unless something settled it first; then the judge, if one
   * is running, is no longer needed. Returns the decision that holds.
   */
  settleUnjudged(unjudged: Unjudged): GuardDecision {
    this.started = true
    const decision = unjudgedDecision(this.settings, unjudged)
    const holds = this.pending.settle(decision)
    if (holds === decision) this.cancel()
    return holds
  }

  /** Stops the judge call, if one is running. */
  cancel(): void {
    this.#judgeCall.abort()
  }

  /** `waitUntil` when the runtime offers it (Workers), so work after the response is not cut short. */
  defer(work: Promise<unknown>): void {
    const settled = work.catch((error: unknown) =>
      console.error('RAG Guard: background task failed', error),
    )
    try {
      this.c.executionCtx.waitUntil(settled)
    } catch {
      // No execution context (app.request in tests, other runtimes): the promise runs on its own.
    }
  }
}
