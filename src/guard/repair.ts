/**
 * Repair mode (`onUngrounded: 'repair'`): a groundedness block judged per sentence becomes the
 * answer without its unsupported sentences, flagged. Pure: the decision, and the repaired text.
 *
 * Only what was scored is removed: a sentence below `groundednessBlockBelow`. An answer with a
 * sentence that has no score is not repaired (its policy decides, as for any answer). When no
 * sentence would be left, or more than half would go, the block stands: an answer cut down to a
 * fragment is worse than the fallback.
 */
import { splitSentences } from '../judge/sentences'
import type { GuardDecision } from './decision'
import type { Thresholds } from './policy'

/**
 * The decision with a groundedness block turned into a repair, when the answer can be repaired:
 * verdict `flag`, reason `repaired`, and the removed sentences' numbers. Any other decision is
 * returned as it is.
 */
export function repairDecision(decision: GuardDecision, thresholds: Thresholds): GuardDecision {
  const result = decision.judge
  if (decision.verdict !== 'block' || !result?.ok || result.granularity !== 'sentence') {
    return decision
  }
  const sentences = result.sentences ?? []
  if (sentences.length === 0 || sentences.some((sentence) => !sentence.ok)) return decision
  const removed = sentences.flatMap((sentence) =>
    sentence.ok && sentence.score < thresholds.blockBelow ? [sentence.sentence] : [],
  )
  if (removed.length === 0 || removed.length * 2 > sentences.length) return decision
  return {
    ...decision,
    verdict: 'flag',
    reason: 'repaired',
    message: `sentence${removed.length === 1 ? '' : 's'} ${removed.join(', ')} of ${sentences.length} removed as unsupported`,
    repaired: { removed, sentences: sentences.length },
  }
}

/**
 * The repair a decision asks of the response, if any: its own, or (with several checks) its
 * groundedness check's, when it is enforced and nothing else made it a block. (In shadow mode
 * the decision only says what repair would have done.)
 */
export function repairOf(decision: GuardDecision): GuardDecision['repaired'] {
  if (decision.verdict === 'block' || decision.mode !== 'enforce') return undefined
  return decision.repaired ?? decision.checks?.groundedness?.repaired
}

/**
 * `answer` without the sentences numbered in `removed` (from 1, as the judge numbered them): the
 * kept sentences as they were written, trailing whitespace at the end let go.
 */
export function repairedText(answer: string, removed: readonly number[]): string {
  const gone = new Set(removed)
  return splitSentences(answer)
    .filter((sentence) => !gone.has(sentence.index))
    .map((sentence) => sentence.text)
    .join('')
    .trimEnd()
}

/**
 * A repair that could not be made (the answer to cut was not at hand): the block it stands in
 * for, as the record reports it.
 */
export function unrepaired(decision: GuardDecision): GuardDecision {
  const { repaired: _repaired, reason: _reason, message: _message, ...rest } = decision
  const checks = decision.checks?.groundedness?.repaired
    ? { checks: { ...decision.checks, groundedness: unrepaired(decision.checks.groundedness) } }
    : {}
  return {
    ...rest,
    ...checks,
    verdict: 'block',
    message: 'the answer could not be repaired in place: blocked',
  }
}
