/**
 * One guarded request as the phases share it: what the request gave, the decision being made,
 * and the means to judge, to settle and to cancel. Each phase reads and advances it; only the
 * middleware creates it.
 */
import type { Context } from 'hono'
import {
  judgedDecision,
  PendingDecision,
  unjudgedDecision,
  type GuardDecision,
  type Unjudged,
} from './decision'
import { requestProblem, type RequestInput } from './extract'
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
  readonly #judgeCall = new AbortController()

  constructor(
    readonly c: Context,
    readonly settings: GuardSettings,
    readonly input: RequestInput,
    private readonly judging: Judging,
  ) {
    // The client went away: stop judging (the proxy stops the upstream on the same signal).
    c.req.raw.signal?.addEventListener('abort', () => this.cancel(), { once: true })
  }

  get question(): string | undefined {
    return this.input.question.ok ? this.input.question.question : undefined
  }

  /**
   * Starts what can start before the upstream answers: the judge, when the request holds both
   * question and context; or the decision, when the request cannot be judged at all.
   */
  begin(): void {
    const { input, settings } = this
    if (input.streaming && !settings.format.stream) {
      this.settleUnjudged({
        ok: false,
        reason: 'streaming-not-supported',
        message: `streamed answers of the ${settings.format.name} format are passed on unjudged`,
      })
      return
    }
    const problem = requestProblem(input)
    if (problem) this.settleUnjudged(problem)
    else if (input.context?.ok) this.judge(input.context.documents)
  }

  /** Judges the question against `documents`; the decision follows the judge. */
  judge(documents: readonly string[]): void {
    const question = this.question
    if (question === undefined || this.started) return
    this.started = true
    this.documents = documents
    const work = this.judging({
      question,
      documents,
      signal: this.#judgeCall.signal,
      defer: (task) => this.defer(task),
    })
    this.pending.follow(work.then((outcome) => judgedDecision(this.settings, outcome)))
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
