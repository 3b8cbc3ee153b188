/**
 * One guarded request as the phases share it: what the request gave, the decision being made,
 * and the means to judge, to settle and to cancel. Each phase reads and advances it; only the
 * middleware creates it.
 */
import type { Context } from 'hono'
import type { DecisionContent } from './decision-log'
import type { ContextReading } from '../formats/context'
import type { Check } from '../judge/prompt'
import { boundContext, CheckParts, decideCheck, type BoundedContext } from './checks'
import {
  choicesDecision,
  combinedDecision,
  PendingDecision,
  unjudgedDecision,
  type GuardDecision,
  type Unjudged,
} from './decision'
import type { Question, RequestInput } from './extract'
import type { Judging } from './judging'
import type { GuardSettings } from './options'
import { repairDecision } from './repair'

export class Exchange {
  /** The decision: the first of the judge and whatever settles it otherwise. */
  readonly pending = new PendingDecision()
  /** Whether judging has started (or the decision was settled without a judge). */
  started = false
  /** The documents judged, once known (for the decision record). */
  documents: readonly string[] | undefined
  /** The answer, when the guard read it (for the decision's sinks). */
  answer: string | undefined
  /** A batch: each item's question, documents judged and answer (for the decision's sinks). */
  items: DecisionContent[] | undefined
  /** When the handler's (upstream's) response arrived. */
  answeredAt: number | undefined
  /** Whose cached scores this request may use ('' when the cache is shared). */
  readonly scope: string
  /** Whether this request's caller sees the decision's details (score, reason, cache, mode). */
  details = false
  readonly #judgeCall = new AbortController()
  /** The context the checks are judged against, once known; or the decision it made. */
  #context: BoundedContext | GuardDecision | undefined
  /** Each check's decision, as it comes, gathered into `pending`. */
  readonly #parts: CheckParts

  constructor(
    readonly c: Context,
    readonly settings: GuardSettings,
    readonly input: RequestInput,
    private readonly judging: Judging,
  ) {
    this.#parts = new CheckParts(settings, this.pending)
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
    else if (input.context) {
      this.judgeContext(input.context)
      // The judge keeps the documents it was given (bounded); the request's own are let go.
      input.context = undefined
    }
  }

  /** Whether the route asks about the answer (groundedness): the whole answer is then needed. */
  get needsAnswer(): boolean {
    return this.settings.checks.includes('groundedness')
  }

  /**
   * Judges the request's question against its context, once the context is known: the
   * sufficiency check at once; the groundedness check waits for the answer (`judgeAnswer`).
   */
  judgeContext(context: ContextReading | Unjudged): void {
    const question = this.input.question
    if (this.started || !question) return
    this.started = true
    const bounded = this.bound(question, context)
    this.#context = bounded
    if ('verdict' in bounded) {
      // No usable context, or no documents: that is every check's decision.
      this.pending.settle(bounded)
      return
    }
    this.documents = bounded.documents
    if (this.settings.checks.includes('sufficiency')) {
      this.#parts.add('sufficiency', this.#judged(question, 'sufficiency', bounded))
    }
  }

  /** Judges the answer's groundedness, once the answer is complete (undefined: there is none). */
  judgeAnswer(answer: string | undefined): void {
    this.judgeAnswers([answer])
  }

  /**
   * Judges the groundedness of every answer the response carries (a completion's choices, with
   * `n` > 1), each against the thresholds: the check's decision is the most severe, carrying
   * each choice's. More choices than `maxBatchItems` are not judged one by one: the answer is
   * unjudgeable (`judge-input-too-large`), so a client's `n` buys no more judge calls than a
   * batch may.
   */
  judgeAnswers(answers: ReadonlyArray<string | undefined>): void {
    const first = answers[0]
    if (first !== undefined) this.answer = first
    const question = this.input.question
    const context = this.#context
    if (!this.needsAnswer || !this.#parts.canStart('groundedness')) return
    if (!question || !context || 'verdict' in context) return
    if (answers.length <= 1) {
      const judged = this.#judged(question, 'groundedness', context, first)
      // Repair mode: one answer, whose unsupported sentences can be removed in its place (the
      // choices of `n` > 1 and a batch's items are blocked as before; an annotated stream is
      // sent before its verdict, so nothing of it can be removed).
      const repairable =
        this.settings.onUngrounded === 'repair' &&
        !(this.input.streaming && this.settings.streamMode === 'annotate')
      this.#parts.add(
        'groundedness',
        repairable
          ? Promise.resolve(judged).then((decision) =>
              repairDecision(decision, this.settings.groundednessThresholds),
            )
          : judged,
      )
      return
    }
    const limit = this.settings.maxBatchItems
    if (answers.length > limit) {
      const message = `the answer has ${answers.length} choices, more than ${limit}`
      this.#parts.add(
        'groundedness',
        unjudgedDecision(
          this.settings,
          { reason: 'judge-input-too-large', message },
          { check: 'groundedness' },
        ),
      )
      return
    }
    const each = answers.map((answer) => this.#judged(question, 'groundedness', context, answer))
    this.#parts.add('groundedness', Promise.all(each).then(choicesDecision))
  }

  /**
   * Every check of the route for one question, context and answer at once (a batch's item): the
   * most severe, with each check's own. Within the judge's input limits; with no documents, the
   * no-documents score without a judge call. The documents judged go in `about`, for the sinks.
   */
  async decideAll(
    question: Question,
    context: ContextReading | Unjudged,
    answer: string | undefined,
    about?: DecisionContent,
  ): Promise<GuardDecision> {
    const bounded = this.bound(question, context)
    if ('verdict' in bounded) return bounded
    if (about) about.documents = bounded.documents
    const parts = await Promise.all(
      this.settings.checks.map(
        async (check) => [check, await this.#judged(question, check, bounded, answer)] as const,
      ),
    )
    return parts.length === 1 ? parts[0]![1] : combinedDecision(parts)
  }

  /** The documents the judge is given, within its limits; or the decision when there are none to give. */
  private bound(
    question: Question,
    context: ContextReading | Unjudged,
  ): BoundedContext | GuardDecision {
    const { checks } = this.settings
    const bounded = boundContext(this.settings, question, context, checks[0])
    if (checks.length === 1 || !('verdict' in bounded)) return bounded
    // Nothing to judge: each check decides the same reason through its own thresholds (the
    // no-documents score), the most severe wins.
    const reason = { reason: bounded.reason!, message: bounded.message ?? '' }
    return combinedDecision(
      checks.map((check) => [check, unjudgedDecision(this.settings, reason, { check })] as const),
    )
  }

  /** One check's decision: a judge call (through the cache), or why there is none. */
  #judged(
    question: Question,
    check: Check,
    context: BoundedContext,
    answer?: string,
  ): GuardDecision | Promise<GuardDecision> {
    return decideCheck(this.settings, this.judging, question, context, {
      check,
      answer,
      ...(check === 'groundedness' ? { granularity: this.settings.groundednessGranularity } : {}),
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
