/**
 * What the guard decided for one request, and the one place where a decision is built: from a
 * judge's score through the thresholds, or from a reason code through the policy that the
 * reason table names. Pure: no I/O, no Hono.
 */
import type { JudgeFailureReason, JudgeResult, JudgeScore } from '../judge/judge'
import { decide, type Thresholds, type Verdict } from './policy'

export type GuardMode = 'enforce' | 'shadow'

/** Why a verdict did not come from a score. Sent as `x-rag-guard-reason`. */
export type GuardReason =
  | JudgeFailureReason
  /** The request body is not JSON (or could not be read). */
  | 'invalid-request-body'
  /** The context was to be read from the response, and the response body is not JSON. */
  | 'invalid-response-body'
  /** The request asked for a streamed answer, which this route's format cannot judge. */
  | 'streaming-not-supported'
  /** Hold mode: the upstream sent more than `streamBufferBytes` before the verdict was known. */
  | 'stream-buffer-exceeded'
  /** The upstream's response body broke off before the verdict was known. */
  | 'upstream-stream-error'
  /** The request body passed `maxBodyBytes`: refused (413), or passed on unjudged. */
  | 'request-too-large'
  /** The response body, read for its context, passed `maxBodyBytes`: passed on unjudged. */
  | 'response-too-large'
  /** The value at the question pointer is not a string. */
  | 'invalid-question'
  /** The value at the context pointer is not a string, strings or documents. */
  | 'invalid-context'
  /** The handler answered with a non-2xx status: there is no answer to judge, it is passed on. */
  | 'response-not-ok'

/**
 * Which setting gives the verdict for a reason:
 * - `onError`: the judge could not give a score, or the answer could not be read;
 * - `onMissingInput`: the request has no usable question or context;
 * - `onOversize`: `block` (the 413) when oversize requests are rejected, else `onMissingInput`;
 * - `onErrorAtMostFlag`: the `onError` verdict, but `flag` where that is `block`;
 * - `pass`: always pass (there is no answer to judge).
 */
export type ReasonPolicy =
  'onError' | 'onMissingInput' | 'onOversize' | 'onErrorAtMostFlag' | 'pass'

/** Every reason code and the policy it follows. The README's reason table is checked against it. */
export const REASON_POLICY: Readonly<Record<GuardReason, ReasonPolicy>> = Object.freeze({
  'judge-timeout': 'onError',
  'judge-rate-limited': 'onError',
  'judge-http-error': 'onError',
  'judge-bad-response': 'onError',
  'judge-unreachable': 'onError',
  'judge-aborted': 'onError',
  'judge-error': 'onError',
  'no-logprobs': 'onError',
  'no-content-tokens': 'onError',
  'unexpected-token': 'onError',
  'no-question': 'onMissingInput',
  'invalid-question': 'onMissingInput',
  'no-context': 'onMissingInput',
  'invalid-context': 'onMissingInput',
  'invalid-request-body': 'onMissingInput',
  'request-too-large': 'onOversize',
  'invalid-response-body': 'onError',
  'response-too-large': 'onError',
  'streaming-not-supported': 'onErrorAtMostFlag',
  'stream-buffer-exceeded': 'onError',
  'upstream-stream-error': 'onError',
  'response-not-ok': 'pass',
})

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

/** What decisions are made from: the route's thresholds and the verdict of each policy. */
export interface DecisionPolicy {
  mode: GuardMode
  thresholds: Thresholds
  onError: Verdict
  onMissingInput: Verdict
  onOversize: 'reject' | 'pass'
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

function verdictFor(policy: DecisionPolicy, reason: GuardReason): Verdict {
  switch (REASON_POLICY[reason]) {
    case 'onError':
      return policy.onError
    case 'onMissingInput':
      return policy.onMissingInput
    case 'onOversize':
      return policy.onOversize === 'reject' ? 'block' : policy.onMissingInput
    case 'onErrorAtMostFlag':
      return policy.onError === 'block' ? 'flag' : policy.onError
    case 'pass':
      return 'pass'
  }
}

/** The decision for a reason code: its verdict comes from the policy the reason table names. */
export function unjudgedDecision(
  policy: DecisionPolicy,
  unjudged: Omit<Unjudged, 'ok'>,
  extra: Pick<GuardDecision, 'judge' | 'cache'> = {},
): GuardDecision {
  return {
    verdict: verdictFor(policy, unjudged.reason),
    mode: policy.mode,
    reason: unjudged.reason,
    message: unjudged.message,
    ...extra,
  }
}

/** The decision for a judge call: its score through the thresholds, or its failure's reason. */
export function judgedDecision(policy: DecisionPolicy, outcome: JudgeOutcome): GuardDecision {
  const { result, cache } = outcome
  const extra = cache ? { cache } : {}
  if (!result.ok) return unjudgedDecision(policy, result, { judge: result, ...extra })
  const score: JudgeScore = result
  return {
    verdict: decide(score.score, policy.thresholds),
    mode: policy.mode,
    score: score.score,
    judge: score,
    ...extra,
  }
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
