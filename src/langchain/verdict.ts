/**
 * The verdict as the LangChain forms hand it out: in the agent's state, in the final message's
 * metadata, in a chain's output. A plain JSON object, so checkpointers and tracing keep it whole.
 */
import { mostSevere, type GuardDecision, type GuardMode, type GuardReason } from '../guard/decision'
import type { Verdict } from '../guard/policy'
import type { Check } from '../judge/prompt'

/** Where the verdict is: the agent state's key, the message metadata's key, the output's key. */
export const RAG_GUARD_KEY = 'ragGuard'

/** The question the judge was asked: `sufficiency` (the default) or `groundedness`. */
export type GuardCheck = Check

export interface RagGuardVerdict {
  /** `pass`, `flag` or `block`; in shadow mode, the one that would have applied. */
  verdict: Verdict
  mode: GuardMode
  /** Whether the verdict changed the run: a block in enforce mode. */
  applied: boolean
  /** The check the verdict is of; with several checks, the one that decided. */
  check: GuardCheck
  /** P(True), when there is a score (a judge's, or `noDocumentsScore`). */
  score?: number
  /** Why the verdict did not come from a judge's score (a reason code of docs/reference/responses.md). */
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
  /**
   * Groundedness per sentence (`groundednessGranularity: 'sentence'`): each sentence's score
   * (or the reason it has none), numbered from 1; the verdict's score is the lowest.
   */
  sentences?: RagGuardSentence[]
  /** `onUngrounded: 'repair'`: the sentences removed from the answer, and how many it had. */
  repaired?: { removed: number[]; sentences: number }
  /**
   * With several checks: each check's own verdict, score and reason, for the checks that were
   * asked (in enforce mode, a block decides before a later check is asked). The verdict above is
   * the most severe of them.
   */
  checks?: Partial<Record<GuardCheck, RagGuardCheckVerdict>>
}

/** One sentence's score, or why it has none. */
export interface RagGuardSentence {
  sentence: number
  /** The sentence's own verdict by the groundedness thresholds (or its reason's policy). */
  verdict: Verdict
  score?: number
  reason?: GuardReason
}

/** One check's own part of a verdict with several checks. */
export type RagGuardCheckVerdict = Omit<
  RagGuardVerdict,
  'mode' | 'applied' | 'check' | 'documents' | 'checks'
>

/** What a verdict says besides the decision itself. */
export interface VerdictDetails {
  applied: boolean
  documents: number
  /** The prompt version of a check whose decision came without a judge call. */
  promptVersion: (check: Check) => string
}

/** One check's decision as a plain object. */
function checkVerdictOf(
  decision: GuardDecision,
  promptVersion: VerdictDetails['promptVersion'],
  check: Check,
): RagGuardCheckVerdict {
  const judge = decision.judge
  return {
    verdict: decision.verdict,
    ...(decision.score !== undefined ? { score: decision.score } : {}),
    ...(decision.reason ? { reason: decision.reason } : {}),
    ...(decision.message ? { message: decision.message } : {}),
    ...(judge ? { latencyMs: judge.latencyMs, model: judge.model } : {}),
    ...(decision.cache ? { cache: decision.cache } : {}),
    ...(decision.truncated ? { truncated: true } : {}),
    promptVersion: judge?.promptVersion ?? promptVersion(check),
    ...(decision.sentences ? { sentences: decision.sentences.map((part) => ({ ...part })) } : {}),
    ...(decision.repaired ? { repaired: decision.repaired } : {}),
  }
}

/**
 * The verdict of several checks, each given as its own part: the most severe (among equals, the
 * lowest score: `mostSevere`, as the Worker decides), carrying every part.
 */
export function combinedVerdict(
  parts: ReadonlyArray<readonly [Check, RagGuardCheckVerdict]>,
  details: Pick<RagGuardVerdict, 'mode' | 'applied' | 'documents'>,
): RagGuardVerdict {
  const { check, verdict, ...worst } = mostSevere(
    parts.map(([check, part]) => ({ ...part, check })),
  )
  return {
    verdict,
    mode: details.mode,
    applied: details.applied,
    check,
    ...worst,
    documents: details.documents,
    checks: Object.fromEntries(parts),
  }
}

/** The verdict of a decision, as a plain object; with several checks, each one's part. */
export function verdictOf(decision: GuardDecision, details: VerdictDetails): RagGuardVerdict {
  if (decision.checks) {
    return combinedVerdict(
      Object.entries(decision.checks).map(([name, part]) => {
        const check = name as Check
        return [check, checkVerdictOf(part, details.promptVersion, check)] as const
      }),
      { mode: decision.mode, applied: details.applied, documents: details.documents },
    )
  }
  const check = decision.check ?? 'sufficiency'
  const { verdict, ...rest } = checkVerdictOf(decision, details.promptVersion, check)
  return {
    verdict,
    mode: decision.mode,
    applied: details.applied,
    check,
    ...rest,
    documents: details.documents,
  }
}

/** A verdict's own part, as a verdict with several checks carries it. */
export function checkPart(verdict: RagGuardVerdict): RagGuardCheckVerdict {
  const { mode: _mode, applied: _applied, check: _check, documents: _documents, ...part } = verdict
  delete part.checks
  return part
}

/**
 * The repair a verdict asks for, when it is enforced and nothing blocked: its own, or its
 * groundedness check's.
 */
export const repairOfVerdict = (
  verdict: Pick<RagGuardVerdict, 'verdict' | 'mode' | 'repaired' | 'checks'>,
): RagGuardVerdict['repaired'] =>
  verdict.mode === 'enforce' && verdict.verdict !== 'block'
    ? (verdict.repaired ?? verdict.checks?.groundedness?.repaired)
    : undefined

/** Whether a decision (or a verdict) changes what goes out: a block, enforced. */
export const enforcesBlock = (decision: Pick<GuardDecision, 'verdict' | 'mode'>): boolean =>
  decision.verdict === 'block' && decision.mode === 'enforce'

/**
 * Thrown by the agent middleware with `exitBehavior: 'error'`, and by the guarded runnable when
 * a blocked answer cannot be found in the chain's output to be replaced.
 */
export class RagGuardBlockedError extends Error {
  override readonly name = 'RagGuardBlockedError'
  constructor(
    readonly verdict: RagGuardVerdict,
    // The score to 4 decimals, as in the x-rag-guard-score header.
    message = `RAG Guard blocked the answer (${verdict.checks ? `${verdict.check} ` : ''}${verdict.reason ?? `score ${verdict.score === undefined ? 'none' : Number(verdict.score.toFixed(4))}`})`,
  ) {
    super(message)
  }
}
