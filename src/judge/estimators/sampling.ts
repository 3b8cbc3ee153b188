/**
 * The sampling estimator, for judges that give no logprobs (reasoning models, Gemini, Anthropic,
 * many self-hosted servers): ask the same yes/no question N times at a temperature above 0, and
 * score the share of True — the model's own answer distribution, estimated by counting instead
 * of read from its token probabilities (as SelfCheckGPT and Cleanlab's TLM do).
 *
 * The score is the share smoothed toward ½:
 *
 *     score = (trueCount + ½) / (trueCount + falseCount + 1)
 *
 * the mean of the posterior Beta(trueCount + ½, falseCount + ½) under Jeffreys' prior Beta(½, ½),
 * the usual uninformative prior for a binomial proportion. Why smooth at all: five True out of
 * five does not show P(True) = 1, only that it is probably high; the raw share would claim
 * certainty that five samples cannot give, and a calibration (Brier score, reliability) would
 * punish it. Why ½ rather than Laplace's 1: it shrinks less, so the extremes stay usable with
 * few samples — at N = 5 the scores run from 1/12 ≈ 0.083 to 11/12 ≈ 0.917 (Laplace: 1/7 to
 * 6/7), so five False still fall under the default `blockBelow` of 0.1. It is symmetric
 * (score(t of n) = 1 − score(n − t of n)), and more samples move the extremes outward
 * (20 of 20: 0.976), as more evidence should.
 *
 * A score from n answers takes only n + 1 values; answers that are neither True nor False are
 * left out of both counts (and, past `minMass`, make the result `low-answer-mass`).
 */
import { classifyFailure } from '../failures'
import { addUsage, type ChatAnswer, type ChatCall, type ChatReply } from '../chat'
import type { Failure, SamplingEstimate } from '../result'

/** The prior's weight on each answer: Jeffreys' Beta(½, ½). */
export const SAMPLING_PRIOR = 0.5

/** The smoothed share of True: `(trueCount + ½) / (trueCount + falseCount + 1)`. */
export function smoothedShare(trueCount: number, falseCount: number): number {
  return (trueCount + SAMPLING_PRIOR) / (trueCount + falseCount + 2 * SAMPLING_PRIOR)
}

/** Leading and trailing decoration around a one-word answer: quotes, emphasis, brackets, punctuation. */
const DECORATION = /^[\s"'`*_([{“‘«]+|[\s"'`*_.,;:!?)\]}”’»]+$/g

/**
 * Reads a one-word True/False answer from text, whatever its case and decoration: `True`,
 * ` true`, `"True"`, `True.`, `**FALSE**`, `'false'!`. A `<think>…</think>` block before it (as
 * self-hosted reasoning models write) is skipped. Anything else — `Yes`, `True, because…`, an
 * empty answer — is neither: undefined.
 */
export function readAnswer(text: string): 'true' | 'false' | undefined {
  const word = text
    .replace(/^\s*<think>[\s\S]*?<\/think>/i, '')
    .replace(DECORATION, '')
    .toLowerCase()
  return word === 'true' || word === 'false' ? word : undefined
}

/** At most this much of an answer is kept in a no-score result, for logs. */
const ANSWER_SHOWN = 40

/**
 * The score of a set of answers, or why there is none: no answer was True or False
 * (`no-samples`), or too few were (`low-answer-mass`: under `minMass` of them).
 */
export function samplingEstimate(
  answers: readonly ChatAnswer[],
  requests: number,
  minMass: number,
): SamplingEstimate | Failure {
  let trueCount = 0
  let falseCount = 0
  for (const answer of answers) {
    const read = readAnswer(answer.text)
    if (read === 'true') trueCount++
    else if (read === 'false') falseCount++
  }
  const samples = answers.length
  const counts = { estimator: 'sampling' as const, samples, trueCount, falseCount }
  const other = answers.find((answer) => answer.text.trim() !== '')?.text.trim()
  const token = other ? { token: other.slice(0, ANSWER_SHOWN) } : {}
  if (trueCount + falseCount === 0) {
    const cut = answers.filter(
      (answer) => answer.finishReason === 'length' && answer.text.trim() === '',
    ).length
    return {
      ok: false,
      reason: 'no-samples',
      message: `none of the ${samples} samples answered True or False${cut ? ` (${cut} ran out of output tokens before answering: raise maxOutputTokens)` : ''}`,
      ...counts,
      ...token,
    }
  }
  const mass = (trueCount + falseCount) / samples
  if (mass < minMass) {
    return {
      ok: false,
      reason: 'low-answer-mass',
      message: `only ${trueCount + falseCount} of the ${samples} samples answered True or False`,
      mass,
      ...counts,
      ...token,
    }
  }
  return {
    ok: true,
    score: smoothedShare(trueCount, falseCount),
    pTrue: trueCount / samples,
    pFalse: falseCount / samples,
    mass,
    ...counts,
    requests,
  }
}

/** Where samples come from: a request that asks for all N at once (`n`), and one that asks for one. */
export interface SampleSource {
  many(call: ChatCall): Promise<ChatReply>
  one(call: ChatCall): Promise<ChatReply>
}

export interface SamplesCollected {
  answers: ChatAnswer[]
  requests: number
  model?: string
  usage?: ChatReply['usage']
}

/** What one judge call learned of `n`: its reply carried every answer, fewer, or it was refused. */
export type NReply = 'all' | 'fewer' | 'refused'

/**
 * Collects `count` answers for one judge call. The first attempt asks for all of them in one
 * request (`n`: one prompt's input tokens, N short outputs) unless `useN` says the provider
 * does not honour it; answers still missing — all but one when `n` was ignored, all when it was
 * refused — are asked for by concurrent requests of one answer each. Each call of `attempt`
 * asks only for what is still missing, so a retry after a failed request never pays twice for
 * answers already read. `learned` is told how the request with `n` went (the judge decides
 * whether that is reason enough to stop asking with `n`).
 */
export function sampleCollector(
  source: SampleSource,
  count: number,
  useN: boolean,
  learned: (reply: NReply) => void,
) {
  const collected: SamplesCollected = { answers: [], requests: 0 }
  const add = (reply: ChatReply) => {
    collected.answers.push(...reply.answers)
    collected.requests++
    collected.model ??= reply.model
    collected.usage = addUsage(collected.usage, reply.usage)
  }
  let askedForAll = !useN
  return async function attempt(call: ChatCall): Promise<SamplesCollected> {
    if (!askedForAll) {
      try {
        add(await source.many(call))
        askedForAll = true
        // Fewer answers than asked for: the provider may ignore `n` (LangChain drops nothing:
        // see askAll), or this one reply was short.
        learned(collected.answers.length < count ? 'fewer' : 'all')
      } catch (error) {
        if (classifyFailure(error).refused !== 'n') throw error
        askedForAll = true
        learned('refused')
      }
    }
    const missing = count - collected.answers.length
    if (missing > 0) {
      const settled = await Promise.allSettled(
        Array.from({ length: missing }, () => source.one(call)),
      )
      for (const outcome of settled) if (outcome.status === 'fulfilled') add(outcome.value)
      const failed = settled.find((outcome) => outcome.status === 'rejected')
      if (failed) throw failed.reason
    }
    return { ...collected, answers: collected.answers.slice(0, count) }
  }
}
