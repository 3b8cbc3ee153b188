/**
 * The logprobs estimator: one request for one token at temperature 0, with `top_logprobs`; the
 * score is the mass of True over True and False in the first token's alternatives
 * (`scoreLogprobs`). The cheapest and finest estimate, where the model gives logprobs.
 */
import type { ChatReply } from '../chat'
import type { Estimate, Failure } from '../result'
import { scoreLogprobs, type ScoringFailureReason } from '../scoring'

const MESSAGES: Record<ScoringFailureReason | 'low-answer-mass' | 'judge-content-filter', string> =
  {
    'judge-content-filter': 'the judge API’s content filter cut the judge’s reply',
    'judge-refusal': 'the judge refused to answer',
    'low-answer-mass': 'True and False covered too little of the judge’s answer to read a score',
    'no-logprobs': 'the judge response carried no logprobs (does the model or server return them?)',
    'no-content-tokens': 'the judge response had no content token',
    'unexpected-token': 'the judge answered neither True nor False',
  }

/**
 * P(True) from the first answer's logprobs, or why there is none: a content filter, a refusal,
 * no logprobs, no content token, a first token other than True or False, or True and False
 * covering less than `minMass` of it.
 */
export function logprobsEstimate(reply: ChatReply, minMass: number): Estimate | Failure {
  const first = reply.answers[0]
  // A filtered reply may still carry a token's logprobs (the filter ran after it): never a score.
  if (first?.finishReason === 'content_filter') {
    const reason = 'judge-content-filter'
    return { ok: false, estimator: 'logprobs', reason, message: MESSAGES[reason] }
  }
  return estimateFrom(first?.logprobs, minMass)
}

/**
 * P(True) from the first of these tokens (a reply's `logprobs`, or the tokens from one answer
 * position on), or why there is none: the scoring rules of every logprobs score, at whatever
 * position they are read.
 */
export function estimateFrom(logprobs: unknown, minMass: number): Estimate | Failure {
  const scored = scoreLogprobs(logprobs)
  if (!scored.ok) return { ...scored, estimator: 'logprobs', message: MESSAGES[scored.reason] }
  if (scored.mass < minMass) {
    return {
      ok: false,
      estimator: 'logprobs',
      reason: 'low-answer-mass',
      message: MESSAGES['low-answer-mass'],
      token: scored.token,
      mass: scored.mass,
    }
  }
  return { ...scored, estimator: 'logprobs' }
}
