/**
 * The estimators at sentence granularity: one reply (or N sampled replies) of `i: True` /
 * `i: False` lines, read as one estimate per sentence by the rules of the answer-level
 * estimators — for logprobs, `estimateFrom` at each line's answer token (every spelling of True
 * and False, renormalised, `minMass`); for sampling, `samplingEstimate` over the samples' words
 * of each line ((k + ½)/(N + 1)). The answer's estimate is its lowest sentence's; when any
 * sentence has none, the answer has none either, with that sentence's reason (the first one's).
 */
import { isRecord } from '../../json'
import type { ChatAnswer, ChatReply } from '../chat'
import type { Estimate, Failure, SentenceResult } from '../result'
import type { TokenLogprob } from '../scoring'
import { readLines, tokensFrom, tokenText } from '../sentences'
import { estimateFrom, logprobsEstimate } from './logprobs'
import { samplingEstimate } from './sampling'

/** The answer's estimate at sentence granularity, with each sentence's (absent when the reply failed as a whole). */
export type SentencesEstimate = (Estimate | Failure) & { sentences?: SentenceResult[] }

/** What a sentence keeps of its estimate, or of why it has none. */
function sentenceResult(sentence: number, estimate: Estimate | Failure): SentenceResult {
  if (!estimate.ok) {
    const { reason, message, token, mass } = estimate
    return {
      sentence,
      ok: false,
      reason,
      message,
      ...(token !== undefined ? { token } : {}),
      ...(mass !== undefined ? { mass } : {}),
    }
  }
  const { score, pTrue, pFalse, mass } = estimate
  return {
    sentence,
    ok: true,
    score,
    pTrue,
    pFalse,
    mass,
    ...(estimate.estimator === 'logprobs'
      ? { token: estimate.token }
      : { trueCount: estimate.trueCount, falseCount: estimate.falseCount }),
  }
}

/** Every sentence's estimate, gathered: the lowest sentence's estimate, or the first failure. */
function gathered(estimates: Array<Estimate | Failure>): (Estimate | Failure) & {
  sentences: SentenceResult[]
} {
  const sentences = estimates.map((estimate, index) => sentenceResult(index + 1, estimate))
  const failed = estimates.findIndex((estimate) => !estimate.ok)
  if (failed !== -1) {
    const failure = estimates[failed] as Failure
    return { ...failure, message: `sentence ${failed + 1}: ${failure.message}`, sentences }
  }
  const lowest = (estimates as Estimate[]).reduce((low, estimate) =>
    estimate.score < low.score ? estimate : low,
  )
  return { ...lowest, sentences }
}

/**
 * Logprobs: each of `count` sentences' P(True) from the token at its line's answer word. A reply
 * the answer-level estimator cannot read at all (content filter, refusal, no logprobs, no
 * tokens) fails as a whole, with its reason.
 */
export function logprobsSentences(
  reply: ChatReply,
  count: number,
  minMass: number,
): SentencesEstimate {
  const first = reply.answers[0]
  const logprobs = first?.logprobs
  const content = Array.isArray(logprobs)
    ? logprobs
    : isRecord(logprobs) && Array.isArray(logprobs.content)
      ? logprobs.content
      : undefined
  if (first?.finishReason === 'content_filter' || !content || content.length === 0) {
    return logprobsEstimate(reply, minMass)
  }
  const tokens = content as TokenLogprob[]
  const { text, starts } = tokenText(tokens)
  return gathered(
    readLines(text, count).map((line): Estimate | Failure =>
      line.ok
        ? estimateFrom(tokensFrom(tokens, starts, line.start), minMass)
        : { ok: false, estimator: 'logprobs', reason: line.reason, message: line.message },
    ),
  )
}

/**
 * Sampling: each sentence's smoothed share of True over the samples' lines for it. A sentence
 * no sample gave a line for is `missing-sentence-answer`; lines whose word is neither True nor
 * False count as answers of neither kind, as a sample's whole answer does at answer level.
 */
export function samplingSentences(
  answers: readonly ChatAnswer[],
  requests: number,
  count: number,
  minMass: number,
): SentencesEstimate {
  const lines = answers.map((answer) => readLines(answer.text, count))
  return gathered(
    Array.from({ length: count }, (_, position): Estimate | Failure => {
      const words = lines.map((read, index): ChatAnswer => {
        const line = read[position]!
        return { text: line.ok ? line.word : '', finishReason: answers[index]!.finishReason }
      })
      if (lines.every((read) => !read[position]!.ok)) {
        const missing = lines[0]?.[position]
        return {
          ok: false,
          estimator: 'sampling',
          reason: 'missing-sentence-answer',
          message:
            missing && !missing.ok
              ? `no sample gave a line for sentence ${position + 1} (${missing.message})`
              : `no sample gave a line for sentence ${position + 1}`,
          samples: answers.length,
          trueCount: 0,
          falseCount: 0,
        }
      }
      return samplingEstimate(words, requests, minMass)
    }),
  )
}
