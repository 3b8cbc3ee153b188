/**
 * The verdict as the LangChain forms hand it out: in the agent's state, in the final message's
 * metadata, in a chain's output. A plain JSON object, so checkpointers and tracing keep it whole.
 */
import type { GuardDecision, GuardMode, GuardReason } from '../guard/decision'
import type { Verdict } from '../guard/policy'
import type { Check } from '../judge/prompt'

/** Where the verdict is: the agent state's key, the message metadata's key, the output's key. */
export const RAG_GUARD_KEY = 'ragGuard'

/** The question the judge was asked; the LangChain forms ask `sufficiency`. */
export type GuardCheck = Check

export interface RagGuardVerdict {
  /** `pass`, `flag` or `block`; in shadow mode, the one that would have applied. */
  verdict: Verdict
  mode: GuardMode
  /** Whether the verdict changed the run: a block in enforce mode. */
  applied: boolean
  check: GuardCheck
  /** P(True), when there is a score (a judge's, or `noDocumentsScore`). */
  score?: number
  /** Why the verdict did not come from a judge's score (a reason code of the README's table). */
  reason?: GuardReason
  /** What went wrong, when there is a reason. */
  message?: string
  /** The judge call's own time, retries included (0 for a cache hit); absent without a judge call. */
  latencyMs?: number
  /** Whether the score came from the verdict cache, when there is one. */
  cache?: 'hit' | 'miss'
  /** The judge saw only part of the documents: they passed its input limits. */
  truncated?: boolean
  /** The judge model that answered. */
  model?: string
  promptVersion: string
  /** How many documents the judge was given. */
  documents: number
}

/** The verdict of a decision, as a plain object. */
export function verdictOf(
  decision: GuardDecision,
  details: { applied: boolean; documents: number; promptVersion: string },
): RagGuardVerdict {
  const judge = decision.judge
  return {
    verdict: decision.verdict,
    mode: decision.mode,
    applied: details.applied,
    check: decision.check ?? 'sufficiency',
    ...(decision.score !== undefined ? { score: decision.score } : {}),
    ...(decision.reason ? { reason: decision.reason } : {}),
    ...(decision.message ? { message: decision.message } : {}),
    ...(judge ? { latencyMs: judge.latencyMs, model: judge.model } : {}),
    ...(decision.cache ? { cache: decision.cache } : {}),
    ...(decision.truncated ? { truncated: true } : {}),
    promptVersion: judge?.promptVersion ?? details.promptVersion,
    documents: details.documents,
  }
}

/** Whether a decision changes what goes out: a block, enforced. */
export const enforcesBlock = (decision: GuardDecision): boolean =>
  decision.verdict === 'block' && decision.mode === 'enforce'

/**
 * Thrown by the agent middleware with `exitBehavior: 'error'`, and by the guarded runnable when
 * a blocked answer cannot be found in the chain's output to be replaced.
 */
export class RagGuardBlockedError extends Error {
  override readonly name = 'RagGuardBlockedError'
  constructor(
    readonly verdict: RagGuardVerdict,
    message = `RAG Guard blocked the answer (${verdict.reason ?? `score ${verdict.score}`})`,
  ) {
    super(message)
  }
}
