/**
 * One check's decision for a question, its documents and (for groundedness) its answer: the
 * documents bounded by the judge's input limits, the reasons there is nothing to judge, then the
 * judge (through the verdict cache). Shared by the middleware (`Exchange`) and the LangChain
 * forms, so each reason and each limit is decided in one place.
 */
import type { ContextReading } from '../formats/context'
import type { Check } from '../judge/prompt'
import {
  combinedDecision,
  judgedDecision,
  PendingDecision,
  unjudgedDecision,
  type DecisionPolicy,
  type GuardDecision,
  type Unjudged,
} from './decision'
import { boundedDocuments, type InputLimits, type Question } from './extract'
import type { JudgeRequest, Judging } from './judging'

/** The documents the judge is given, within its limits. */
export interface BoundedContext {
  documents: string[]
  truncated: boolean
}

/**
 * The documents the judge is given for `question`, within its limits; or the decision when there
 * are none to give (an unusable context, too much of it with `refuse`, no documents). `check`
 * names the check the decision is of, when it is one check's.
 */
export function boundContext(
  settings: DecisionPolicy & InputLimits,
  question: Question,
  context: ContextReading | Unjudged,
  check?: Check,
): BoundedContext | GuardDecision {
  const extra = check ? { check } : {}
  if (!context.ok) return unjudgedDecision(settings, context, extra)
  const bounded = boundedDocuments(context, question, settings)
  if ('ok' in bounded) return unjudgedDecision(settings, bounded, extra)
  if (bounded.documents.length === 0) {
    return unjudgedDecision(
      settings,
      { reason: 'no-documents', message: 'no documents were retrieved' },
      extra,
    )
  }
  return bounded
}

/** What one check is asked about, besides the question and its bounded documents. */
export type CheckRequest = Omit<JudgeRequest, 'question' | 'history' | 'documents'>

/**
 * One check's decision: a judge call (through `judging`), or why there is none — groundedness
 * without an answer (`no-answer`) or with one past `maxInputChars` (`judge-input-too-large`).
 */
export function decideCheck(
  settings: DecisionPolicy & Pick<InputLimits, 'maxInputChars'>,
  judging: Judging,
  question: Question,
  context: BoundedContext,
  request: CheckRequest,
): GuardDecision | Promise<GuardDecision> {
  const { check, answer } = request
  if (check === 'groundedness' && !answer?.trim()) {
    return unjudgedDecision(
      settings,
      { reason: 'no-answer', message: 'the response has no answer to check' },
      { check },
    )
  }
  if (check === 'groundedness' && answer!.length > settings.maxInputChars) {
    return unjudgedDecision(
      settings,
      {
        reason: 'judge-input-too-large',
        message: `the answer has more than ${settings.maxInputChars} characters`,
      },
      { check },
    )
  }
  const truncated = context.truncated ? { truncated: true } : {}
  return judging({
    ...request,
    question: question.question,
    history: question.history,
    documents: context.documents,
  }).then((outcome) => ({ ...judgedDecision(settings, outcome), ...truncated }))
}

/**
 * The checks of one answer, gathered into one decision: each check's decision as it comes, and
 * the decision once every check has answered — the check's own with one check, the most severe
 * with several (carrying each one's). In enforce mode a block decides: no check is started after
 * it, and the decision waits only for the checks already running (they are reported).
 */
export class CheckParts {
  readonly #parts = new Map<Check, Promise<GuardDecision>>()
  /** A check blocked (in enforce mode): no other is started. */
  #blocked = false

  constructor(
    private readonly settings: Pick<DecisionPolicy, 'mode'> & { checks: readonly Check[] },
    /** Settled with the decision (unless something settles it first). */
    readonly pending: PendingDecision,
  ) {}

  /** Whether `check` can still start: not started yet, and no check has blocked. */
  canStart(check: Check): boolean {
    return !this.#parts.has(check) && !this.#blocked && !this.pending.settled
  }

  /** One check's decision; once every check has one, the decision follows them. */
  add(check: Check, decision: GuardDecision | Promise<GuardDecision>): void {
    const { checks, mode } = this.settings
    const part = Promise.resolve(decision)
    this.#parts.set(check, part)
    if (mode === 'enforce' && checks.length > 1) {
      void part.then((settled) => {
        if (settled.verdict !== 'block' || this.#blocked) return
        this.#blocked = true
        this.pending.follow(this.#combined())
      })
    }
    if (!checks.every((each) => this.#parts.has(each))) return
    this.pending.follow(checks.length === 1 ? this.#parts.get(checks[0]!)! : this.#combined())
  }

  /** The checks started so far, combined once they have all answered. */
  #combined(): Promise<GuardDecision> {
    return Promise.all(
      [...this.#parts].map(async ([check, part]) => [check, await part] as const),
    ).then(combinedDecision)
  }
}
