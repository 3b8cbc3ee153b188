/**
 * One turn's decision for a question and its documents, as the Worker makes it: the question and
 * the documents bounded by the judge's input limits, no documents scored without a judge call,
 * each check judged through the verdict cache (`guard/checks`), and the checks gathered into one
 * decision (`CheckParts`: the most severe; in enforce mode a block decides). Sufficiency starts at
 * once; groundedness when the answer is complete (`answer`). Every verdict is built by
 * `guard/decision`.
 */
import type { Callbacks } from '@langchain/core/callbacks/manager'
import type { ContextReading, QuestionReading } from '../formats/context'
import { boundContext, CheckParts, decideCheck, type BoundedContext } from '../guard/checks'
import {
  combinedDecision,
  PendingDecision,
  unjudgedDecision,
  type GuardDecision,
  type Unjudged,
} from '../guard/decision'
import { boundedQuestion, type Question } from '../guard/extract'
import { createJudging, type Judging } from '../guard/judging'
import { repairDecision } from '../guard/repair'
import type { Judge } from '../judge/judge'
import type { Check } from '../judge/prompt'
import type { LangChainSettings } from './options'

export interface Turn {
  question: QuestionReading
  context: ContextReading | Unjudged
  /** Whose cached scores the turn may use ('' when the cache is shared). */
  scope: string
  /** The callbacks of the run the judge call belongs to: tracing shows it as its child. */
  callbacks?: Callbacks
  signal?: AbortSignal
  /**
   * Whether a groundedness block may become a repair (`onUngrounded: 'repair'`): where the answer
   * can still be replaced by its repaired text (the agent's final message, a chain's `invoke`).
   */
  repairable?: boolean
}

export interface Decided {
  decision: GuardDecision
  /** How many documents the judge was given. */
  documents: number
}

/** The judge, each call made with `callbacks`; everything else is the judge's own. */
function tracedJudge(judge: Judge, callbacks: Callbacks | undefined): Judge {
  if (!callbacks) return judge
  const traced: Judge = Object.create(judge)
  traced.judge = (input, options) => judge.judge(input, { ...options, callbacks })
  return traced
}

/** The prompt version of `check`'s verdicts when no judge call gave one. */
export function promptVersionOf(judge: Judge, check: Check): string {
  return judge.promptVersions?.[check] ?? judge.promptVersion
}

/**
 * The checks of one turn (by default the settings' own), judged against one question and its
 * documents. Never rejects: the judge never does, and a failed cache is a miss.
 */
export class TurnJudgement {
  readonly #settings: LangChainSettings
  readonly #checks: readonly Check[]
  readonly #pending = new PendingDecision()
  readonly #parts: CheckParts
  readonly #stop = new AbortController()
  readonly #judging: Judging
  readonly #scope: string
  readonly #signal: AbortSignal
  readonly #repair: boolean
  /** The question and its documents, within the judge's limits; undefined when the decision was made without them. */
  readonly #input: { question: Question; context: BoundedContext } | undefined
  /** The decision, once every check (or an enforced block) has decided. */
  readonly decided: Promise<Decided>

  constructor(settings: LangChainSettings, turn: Turn, checks: readonly Check[] = settings.checks) {
    this.#settings = settings
    this.#checks = checks
    this.#parts = new CheckParts({ mode: settings.mode, checks }, this.#pending)
    this.#judging = createJudging(tracedJudge(settings.judge, turn.callbacks), settings.cache)
    this.#scope = turn.scope
    this.#repair = settings.onUngrounded === 'repair' && turn.repairable === true
    this.#signal = turn.signal
      ? AbortSignal.any([turn.signal, this.#stop.signal])
      : this.#stop.signal
    const question = boundedQuestion(turn.question, settings)
    const bounded =
      'ok' in question
        ? question
        : checks.map((check) => boundContext(settings, question, turn.context, check))
    if (!Array.isArray(bounded) || 'verdict' in bounded[0]!) {
      // No question or no usable documents: each check's decision, without a judge call.
      const parts = checks.map(
        (check, index) =>
          [
            check,
            Array.isArray(bounded)
              ? (bounded[index] as GuardDecision)
              : unjudgedDecision(settings, bounded, { check }),
          ] as const,
      )
      this.#pending.settle(parts.length === 1 ? parts[0]![1] : combinedDecision(parts))
      this.decided = this.#pending.promise.then((decision) => ({ decision, documents: 0 }))
      return
    }
    const context = bounded[0] as BoundedContext
    this.#input = { question: question as Question, context }
    this.decided = this.#pending.promise.then((decision) => ({
      decision,
      documents: context.documents.length,
    }))
    if (checks.includes('sufficiency')) this.#start('sufficiency')
  }

  /** Whether a check of this turn needs the answer (groundedness). */
  get needsAnswer(): boolean {
    return this.#checks.includes('groundedness')
  }

  /**
   * The answer is complete (undefined: there is none): groundedness starts, unless a check has
   * already blocked in enforce mode (then it is never asked, as in the Worker).
   */
  answer(text: string | undefined): void {
    if (!this.needsAnswer || !this.#input || !this.#parts.canStart('groundedness')) return
    this.#start('groundedness', text)
  }

  /** Stops the judge calls still running: their verdict is no longer wanted. */
  cancel(): void {
    this.#stop.abort()
  }

  #start(check: Check, answer?: string): void {
    const { question, context } = this.#input!
    const grounded = check === 'groundedness'
    const decision = decideCheck(this.#settings, this.#judging, question, context, {
      check,
      answer,
      ...(grounded ? { granularity: this.#settings.groundednessGranularity } : {}),
      scope: this.#scope,
      signal: this.#signal,
      // No runtime to keep alive here: the cache write runs on its own (it never rejects).
      defer: (work) => void work.catch(() => {}),
    })
    this.#parts.add(
      check,
      grounded && this.#repair
        ? Promise.resolve(decision).then((decided) =>
            repairDecision(decided, this.#settings.groundednessThresholds),
          )
        : decision,
    )
  }
}

/** The decision for one turn whose answer, if a check needs it, is `answer`. */
export function decideTurn(
  settings: LangChainSettings,
  turn: Turn,
  answer?: string,
  checks?: readonly Check[],
): Promise<Decided> {
  const judgement = new TurnJudgement(settings, turn, checks)
  judgement.answer(answer)
  return judgement.decided
}

/** Whose cached scores a caller may use: its id with `cacheScope: 'caller'`, else everyone's. */
export function cacheScope(
  settings: LangChainSettings,
  caller: Parameters<NonNullable<LangChainSettings['callerId']>>[0],
): string {
  return settings.cacheScope === 'caller' ? (settings.callerId?.(caller) ?? '') : ''
}
