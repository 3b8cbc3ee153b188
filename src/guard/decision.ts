/**
 * What the guard decided for one request, and the one place where a decision is built: from a
 * judge's score through the thresholds, or from a reason code through the policy that the
 * reason table names. Pure: no I/O, no Hono.
 */
import type { JudgeFailureReason, JudgeResult, JudgeScore } from '../judge/judge'
import type { Check } from '../judge/prompt'
import { decide, type Thresholds, type Verdict } from './policy'

export type GuardMode = 'enforce' | 'shadow'

/** Why a verdict did not come from a score alone. Sent as `x-rag-guard-reason`. */
export type GuardReason =
  | JudgeFailureReason
  /** No documents were retrieved: nothing can support an answer (a score of its own). */
  | 'no-documents'
  /** The request body is not JSON (or could not be read). */
  | 'invalid-request-body'
  /** The request body is compressed or encoded in a way the guard does not read. */
  | 'unsupported-encoding'
  /** The request's `stream` flag is there and is not a boolean. */
  | 'invalid-stream-flag'
  /** The request asked for a streamed answer, which this route's format cannot judge. */
  | 'streaming-not-supported'
  /** The request names several questions and none is configured (LangServe input). */
  | 'ambiguous-question'
  /** The request body passed `maxBodyBytes`. */
  | 'request-too-large'
  /** The question (or, with `inputOverflow: 'refuse'`, question and documents) passes the judge's input limits. */
  | 'judge-input-too-large'
  /** An endpoint of the route the guard cannot judge (LangServe `stream_log`, `stream_events`). */
  | 'unsupported-endpoint'
  /** The context was to be read from the response, and the response body is not JSON. */
  | 'invalid-response-body'
  /** The response body, read for its context, passed `maxBodyBytes`. */
  | 'response-too-large'
  /** Hold mode: the upstream sent more than `streamBufferBytes` before the verdict was known. */
  | 'stream-buffer-exceeded'
  /** The upstream's response body broke off before the verdict was known. */
  | 'upstream-stream-error'
  /** The value at the question pointer is not text. */
  | 'invalid-question'
  /** The value at the context pointer is not a string, strings or documents. */
  | 'invalid-context'
  /** The handler answered with a non-2xx status: there is no answer to judge, it is passed on. */
  | 'response-not-ok'
  /**
   * `onUngrounded: 'repair'`: the answer's unsupported sentences were removed and the rest sent,
   * flagged (`repaired` in the decision numbers the removed ones).
   */
  | 'repaired'

/**
 * Which setting gives the verdict for a reason:
 * - `onError`: the judge's infrastructure failed to give a score (timeout, unreachable, 5xx,
 *   429, a body that is no chat completion): nothing the request holds caused it;
 * - `onUnjudgeable`: the input cannot be judged (a request or an answer the guard cannot read,
 *   or that passes its limits), or the judge replied to it without a usable True/False (another
 *   token, a refusal, a content filter, no logprobs, too little True/False mass): the request's
 *   data may have caused it, so whatever a client or a document sends, it never gets more than
 *   this setting gives (by default, a block in enforce mode);
 * - `noDocuments`: the score `noDocumentsScore`, through the thresholds;
 * - `pass`: always pass (there is no answer to judge);
 * - `onUngrounded`: `'repair'` sent the answer without its unsupported sentences: a flag.
 */
export type ReasonPolicy = 'onError' | 'onUnjudgeable' | 'noDocuments' | 'pass' | 'onUngrounded'

/**
 * Every reason code and the policy it follows: the one place where a reason's policy is decided.
 * The README's reason table is checked against it, and `rag-guard eval` reads which reasons a
 * second try would not change from it.
 */
export const REASON_POLICY: Readonly<Record<GuardReason, ReasonPolicy>> = Object.freeze({
  // The judge's infrastructure.
  'judge-timeout': 'onError',
  'judge-rate-limited': 'onError',
  'judge-http-error': 'onError',
  'judge-bad-response': 'onError',
  'judge-unreachable': 'onError',
  'judge-aborted': 'onError',
  'judge-error': 'onError',
  // The judge's reply to this request's data.
  'no-logprobs': 'onUnjudgeable',
  'no-content-tokens': 'onUnjudgeable',
  'unexpected-token': 'onUnjudgeable',
  'low-answer-mass': 'onUnjudgeable',
  'no-samples': 'onUnjudgeable',
  'missing-sentence-answer': 'onUnjudgeable',
  'judge-refusal': 'onUnjudgeable',
  'judge-content-filter': 'onUnjudgeable',
  // The input, and what answers it (no documents: the no-documents score; no answer to judge).
  'judge-context-overflow': 'onUnjudgeable',
  'no-documents': 'noDocuments',
  'no-context': 'noDocuments',
  'no-question': 'onUnjudgeable',
  'no-answer': 'onUnjudgeable',
  'invalid-question': 'onUnjudgeable',
  'ambiguous-question': 'onUnjudgeable',
  'invalid-context': 'onUnjudgeable',
  'invalid-request-body': 'onUnjudgeable',
  'unsupported-encoding': 'onUnjudgeable',
  'invalid-stream-flag': 'onUnjudgeable',
  'streaming-not-supported': 'onUnjudgeable',
  'request-too-large': 'onUnjudgeable',
  'judge-input-too-large': 'onUnjudgeable',
  'unsupported-endpoint': 'onUnjudgeable',
  'invalid-response-body': 'onUnjudgeable',
  'response-too-large': 'onUnjudgeable',
  'stream-buffer-exceeded': 'onUnjudgeable',
  'upstream-stream-error': 'onUnjudgeable',
  'response-not-ok': 'pass',
  // The answer, repaired.
  repaired: 'onUngrounded',
})

/**
 * The status of the 4xx that refuses a request the guard cannot judge, when it is known before
 * the upstream is asked (RFC 9110 §15.5): too large → 413, an encoding it does not read → 415,
 * anything else the client sent → 400.
 */
export function refusalStatus(reason: GuardReason): 400 | 413 | 415 {
  if (reason === 'request-too-large' || reason === 'judge-input-too-large') return 413
  if (reason === 'unsupported-encoding') return 415
  return 400
}

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
  /** The judge saw only part of the documents: they passed the judge's input limits. */
  truncated?: boolean
  /** A batch's decision for each input, in order; the batch's own is the most severe. */
  items?: GuardDecision[]
  /** The check this decision is of; with several checks, the one that decided. */
  check?: Check
  /** Each check's own decision, on a route with more than one; the decision is the most severe. */
  checks?: Partial<Record<Check, GuardDecision>>
  /**
   * Groundedness of an answer with several choices (`n` > 1): each choice's own decision, in
   * order; the check's decision is the most severe.
   */
  choices?: GuardDecision[]
  /**
   * `onUngrounded: 'repair'`: the numbers (from 1) of the sentences removed from the answer, and
   * how many it had. Never their text: the client got the rest.
   */
  repaired?: { removed: number[]; sentences: number }
  /**
   * Groundedness per sentence: each sentence's own verdict by the check's thresholds (or its
   * reason's policy), with its score or reason, numbered from 1.
   */
  sentences?: SentenceDecision[]
}

/** One sentence's part of a groundedness decision. */
export interface SentenceDecision {
  sentence: number
  verdict: Verdict
  score?: number
  reason?: GuardReason
}

/** What decisions are made from: the route's thresholds and the verdict of each policy. */
export interface DecisionPolicy {
  mode: GuardMode
  /** The sufficiency check's thresholds. */
  thresholds: Thresholds
  /** The groundedness check's thresholds. */
  groundednessThresholds: Thresholds
  onError: Verdict
  onUnjudgeable: Verdict
  noDocumentsScore: number
}

/** A reason the request cannot be judged, and what went wrong, for logs. */
export interface Unjudged {
  ok: false
  reason: GuardReason
  message: string
}

/** A judge call's result, and whether it came from the cache. */
export interface JudgeOutcome {
  result: JudgeResult
  cache?: 'hit' | 'miss'
}

const thresholdsOf = (policy: DecisionPolicy, check: Check = 'sufficiency') =>
  check === 'groundedness' ? policy.groundednessThresholds : policy.thresholds

/** The decision for a reason code: its verdict comes from the policy the reason table names. */
export function unjudgedDecision(
  policy: DecisionPolicy,
  unjudged: Omit<Unjudged, 'ok'>,
  extra: Pick<GuardDecision, 'judge' | 'cache' | 'check'> = {},
): GuardDecision {
  const base = { mode: policy.mode, reason: unjudged.reason, message: unjudged.message, ...extra }
  switch (REASON_POLICY[unjudged.reason]) {
    case 'onError':
      return { verdict: policy.onError, ...base }
    case 'onUnjudgeable':
      return { verdict: policy.onUnjudgeable, ...base }
    case 'noDocuments':
      return {
        verdict: decide(policy.noDocumentsScore, thresholdsOf(policy, extra.check)),
        score: policy.noDocumentsScore,
        ...base,
      }
    case 'pass':
      return { verdict: 'pass', ...base }
    case 'onUngrounded':
      return { verdict: 'flag', ...base }
  }
}

/** The decision for a judge call: its score through the thresholds, or its failure's reason. */
export function judgedDecision(policy: DecisionPolicy, outcome: JudgeOutcome): GuardDecision {
  const decision = scoredDecision(policy, outcome)
  const sentences = outcome.result.sentences
  if (!sentences) return decision
  const thresholds = thresholdsOf(policy, outcome.result.check)
  return {
    ...decision,
    sentences: sentences.map((sentence) =>
      sentence.ok
        ? {
            sentence: sentence.sentence,
            verdict: decide(sentence.score, thresholds),
            score: sentence.score,
          }
        : {
            sentence: sentence.sentence,
            verdict: unjudgedDecision(policy, sentence).verdict,
            reason: sentence.reason,
          },
    ),
  }
}

function scoredDecision(policy: DecisionPolicy, outcome: JudgeOutcome): GuardDecision {
  const { result, cache } = outcome
  const extra = { check: result.check, ...(cache ? { cache } : {}) }
  if (!result.ok) {
    const unjudged = unjudgedDecision(policy, result, { judge: result, ...extra })
    // Per sentence, a sentence without a score does not undo another's: a sentence already below
    // the thresholds decides when its verdict is the more severe (no verdict is downgraded).
    const scores = (result.sentences ?? []).flatMap((sentence) =>
      sentence.ok ? [sentence.score] : [],
    )
    if (scores.length === 0) return unjudged
    const lowest = Math.min(...scores)
    const scored = decide(lowest, thresholdsOf(policy, result.check))
    return SEVERITY[scored] > SEVERITY[unjudged.verdict]
      ? { ...unjudged, verdict: scored }
      : unjudged
  }
  const score: JudgeScore = result
  return {
    verdict: decide(score.score, thresholdsOf(policy, result.check)),
    mode: policy.mode,
    score: score.score,
    judge: score,
    ...extra,
  }
}

const SEVERITY = { pass: 0, flag: 1, block: 2 } as const

/** What severity is read from: a verdict, and the score it came from, if any. */
export interface Graded {
  verdict: Verdict
  score?: number
}

/**
 * The most severe of several decisions (among equals, the lowest score). Any graded value: a
 * decision, or a verdict as the LangChain forms hand it out.
 */
export function mostSevere<D extends Graded>(decisions: readonly D[]): D {
  return decisions.reduce((worst, decision) =>
    SEVERITY[decision.verdict] > SEVERITY[worst.verdict] ||
    (decision.verdict === worst.verdict && (decision.score ?? 1) < (worst.score ?? 1))
      ? decision
      : worst,
  )
}

/** The decision of a route with several checks: the most severe, carrying each check's own. */
export function combinedDecision(
  parts: ReadonlyArray<readonly [Check, GuardDecision]>,
): GuardDecision {
  return {
    ...mostSevere(parts.map(([, decision]) => decision)),
    checks: Object.fromEntries(parts),
  }
}

/** Groundedness of an answer with several choices: the most severe choice's, carrying each one's. */
export function choicesDecision(choices: GuardDecision[]): GuardDecision {
  return { ...mostSevere(choices), choices }
}

/**
 * A decision that settles once: the first of the judge, a stream's failure or the end of the
 * exchange wins, and everyone who reads it (the handler through `c.var.ragGuard`, the response,
 * the decision log) sees that one.
 */
export class PendingDecision {
  readonly promise: Promise<GuardDecision>
  #resolve!: (decision: GuardDecision) => void
  #settled: GuardDecision | undefined

  constructor() {
    this.promise = new Promise((resolve) => (this.#resolve = resolve))
  }

  /** The decision, once settled. */
  get settled(): GuardDecision | undefined {
    return this.#settled
  }

  /** Settles with `decision` unless already settled; returns the decision that holds. */
  settle(decision: GuardDecision): GuardDecision {
    if (this.#settled) return this.#settled
    this.#settled = decision
    this.#resolve(decision)
    return decision
  }

  /** Settles with what `work` resolves to, unless something else settles first. */
  follow(work: Promise<GuardDecision>): void {
    void work.then((decision) => this.settle(decision))
  }
}
