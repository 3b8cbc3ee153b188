/**
 * What a judge call gives: a score, from one of two estimators of P(True), or a no-score outcome
 * with a reason. Shared by the judge, its estimators and everything that reads their results.
 */
import type { Check } from './prompt'
import type { LogprobScore, ScoringFailureReason } from './scoring'
import type { Granularity } from './sentences'

/**
 * How P(True) was estimated: from the first token's `top_logprobs` (one request, one token), or
 * from the share of True among N sampled answers (for models that give no logprobs).
 */
export type Estimator = 'logprobs' | 'sampling'

/**
 * Why the judge gave no score. Stable codes: they appear in `x-rag-guard-reason` and in logs.
 */
export type JudgeFailureReason =
  | ScoringFailureReason
  /** The judge did not answer within `timeoutMs` (retries included). */
  | 'judge-timeout'
  /** The judge API answered 429. */
  | 'judge-rate-limited'
  /** The judge API answered another non-2xx status. */
  | 'judge-http-error'
  /** The judge API answered 2xx with a body that is not a chat completion. */
  | 'judge-bad-response'
  /** The judge API could not be reached, or the connection was lost mid-answer. */
  | 'judge-unreachable'
  /** The caller cancelled the judge call (for example, the client went away). */
  | 'judge-aborted'
  /** Any other failure of the judge call. */
  | 'judge-error'
  /** True and False covered less of the answers (first token's probability, or samples) than `minMass`. */
  | 'low-answer-mass'
  /** Sampling: no sample answered True or False. */
  | 'no-samples'
  /** The judge API's content filter cut the judge's reply (`finish_reason: "content_filter"`). */
  | 'judge-content-filter'
  /** The judge API refused the prompt as longer than the model's context window. */
  | 'judge-context-overflow'
  /** The question was empty. */
  | 'no-question'
  /** The groundedness check had no answer to check. */
  | 'no-answer'
  /** Sentence granularity: the judge's reply had no line for a sentence, or its lines were out of order. */
  | 'missing-sentence-answer'
  /** There were no documents to judge. */
  | 'no-context'

export interface TokenUsage {
  inputTokens: number
  outputTokens: number
  totalTokens: number
}

export interface JudgeResultBase {
  /** What was asked: whether the documents suffice, or whether the answer is grounded in them. */
  check: Check
  /** The model that answered (as the API reports it), or the configured one. */
  model: string
  promptVersion: string
  /** Wall time of the judge step, retries included. */
  latencyMs: number
  /** Tokens of every request that made up the result (all samples' requests, for sampling). */
  usage?: TokenUsage
  /**
   * Groundedness asked per sentence (`granularity: 'sentence'`): `sentence` when it was judged so
   * (`sentences` holds each one's result); `answer` when the answer had more sentences than
   * `maxSentences` and was judged whole (`sentenceCount` says how many).
   */
  granularity?: Granularity
  /** Each sentence's result, in order (sentence granularity). */
  sentences?: SentenceResult[]
  /** The answer's sentence count, when it passed `maxSentences` and was judged whole. */
  sentenceCount?: number
}

/**
 * One sentence's result: its P(True) read at its line's answer token (logprobs) or counted over
 * the samples' lines (sampling), by the same rules as an answer's; or why it has none.
 */
export type SentenceResult = { sentence: number } & (
  | {
      ok: true
      score: number
      pTrue: number
      pFalse: number
      mass: number
      /** Logprobs: the token read at the sentence's answer position. */
      token?: string
      /** Sampling: how many samples' lines said True and False. */
      trueCount?: number
      falseCount?: number
    }
  | { ok: false; reason: JudgeFailureReason; message: string; token?: string; mass?: number }
)

/** A score read from the first token's `top_logprobs` (see `scoreLogprobs`). */
export type LogprobsEstimate = Extract<LogprobScore, { ok: true }> & { estimator: 'logprobs' }

/**
 * A score from N answers sampled at a temperature above 0: the smoothed share of True,
 * `(trueCount + ½) / (trueCount + falseCount + 1)` (see `estimators/sampling.ts` for why).
 */
export interface SamplingEstimate {
  ok: true
  estimator: 'sampling'
  /** P(True), smoothed: `(trueCount + ½) / (trueCount + falseCount + 1)`. */
  score: number
  /** Share of the samples that answered True. */
  pTrue: number
  /** Share of the samples that answered False. */
  pFalse: number
  /** pTrue + pFalse: the share of samples that answered True or False at all. */
  mass: number
  /** Answers read. */
  samples: number
  trueCount: number
  falseCount: number
  /** Chat requests the samples took: 1 when the provider honours `n`, up to N when it does not. */
  requests: number
}

export type JudgeScore = JudgeResultBase & (LogprobsEstimate | SamplingEstimate)

export interface JudgeNoScore extends JudgeResultBase {
  ok: false
  reason: JudgeFailureReason
  /** What went wrong, for logs. Never holds the API key or the judge API's own error text. */
  message: string
  /** The estimator that was tried, when a model was asked. */
  estimator?: Estimator
  /** HTTP status of the judge API, when it answered with an error. */
  status?: number
  /** The first token (or, sampling, the first answer), when it was neither True nor False. */
  token?: string
  /** With `low-answer-mass`: how much of the answers True and False covered. */
  mass?: number
  /** Sampling: answers read, and how many said True and False. */
  samples?: number
  trueCount?: number
  falseCount?: number
}

export type JudgeResult = JudgeScore | JudgeNoScore

/** A no-score outcome before the judge adds model, prompt version and latency. */
export type Failure = Omit<JudgeNoScore, keyof JudgeResultBase>

/** A score before the judge adds model, prompt version and latency. */
export type Estimate = LogprobsEstimate | SamplingEstimate
