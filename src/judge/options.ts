/**
 * The judge's settings: one definition each, used by `createJudge` and by the Worker's config.
 */
import {
  choice,
  fraction,
  headerMap,
  httpUrl,
  integer,
  numberAbove,
  text,
  type Setting,
} from '../settings'

/** How P(True) is estimated: `auto` starts with logprobs and turns to sampling for a model without them. */
export const ESTIMATOR_OPTIONS = ['logprobs', 'sampling', 'auto'] as const
export type EstimatorOption = (typeof ESTIMATOR_OPTIONS)[number]

/** The values OpenAI's reasoning models take (each model accepts some of them). */
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number]

export const JUDGE_SETTINGS = {
  /** Judge model name. */
  model: text({ env: 'JUDGE_MODEL', default: 'gpt-4o-mini', nonEmpty: 'a non-empty model name' }),
  /** The judge's API key (a secret). */
  apiKey: text({ env: 'OPENAI_API_KEY', secret: true }),
  /** Any OpenAI-compatible chat completions API. */
  baseURL: httpUrl({ env: 'OPENAI_BASE_URL' }),
  /** Alternatives read for the first token. */
  topLogprobs: integer(1, 20, { env: 'JUDGE_TOP_LOGPROBS', default: 20 }),
  /** Time budget for the whole judge step, retries included. */
  timeoutMs: integer(1, 600_000, { unit: 'milliseconds', env: 'JUDGE_TIMEOUT_MS', default: 3000 }),
  /** Retries of a failed call within that budget. */
  maxRetries: integer(0, 10, { env: 'JUDGE_MAX_RETRIES', default: 1 }),
  /** The least share of the answers that True and False must cover for a score. */
  minMass: fraction({ env: 'JUDGE_MIN_MASS', default: 0.5 }),
  /** What identifies a chat model passed in, in the verdict cache. */
  identity: text({ nonEmpty: 'a non-empty string' }),
  /** Extra headers on every judge request (a secret: never logged). */
  headers: headerMap({ env: 'JUDGE_HEADERS', secret: true }),
  /** How P(True) is estimated: from logprobs, by sampling, or logprobs falling back to sampling. */
  estimator: choice(ESTIMATOR_OPTIONS, { env: 'JUDGE_ESTIMATOR', default: 'logprobs' }),
  /** Sampling: answers asked for per check (N). */
  samples: integer(2, 20, { env: 'JUDGE_SAMPLES', default: 5 }),
  /** Sampling: the temperature the answers are sampled at (reasoning models accept only 1). */
  samplingTemperature: numberAbove(0, 2, { env: 'JUDGE_SAMPLING_TEMPERATURE', default: 1 }),
  /** `reasoning_effort` sent with every judge request, when set. */
  reasoningEffort: choice(REASONING_EFFORTS, { env: 'JUDGE_REASONING_EFFORT' }),
  /** The output budget of each answer; by default 1 token (logprobs), 5 (sampling), 4096 (reasoning models). */
  maxOutputTokens: integer(1, 100_000, { env: 'JUDGE_MAX_OUTPUT_TOKENS' }),
  /** Sentence granularity: the most sentences judged one by one; a longer answer is judged whole. */
  maxSentences: integer(1, 200, { env: 'JUDGE_MAX_SENTENCES', default: 32 }),
} satisfies Record<string, Setting<unknown>>

export const DEFAULT_JUDGE_OPTIONS = Object.freeze({
  model: JUDGE_SETTINGS.model.default!,
  topLogprobs: JUDGE_SETTINGS.topLogprobs.default!,
  timeoutMs: JUDGE_SETTINGS.timeoutMs.default!,
  maxRetries: JUDGE_SETTINGS.maxRetries.default!,
  minMass: JUDGE_SETTINGS.minMass.default!,
  estimator: JUDGE_SETTINGS.estimator.default!,
  samples: JUDGE_SETTINGS.samples.default!,
  samplingTemperature: JUDGE_SETTINGS.samplingTemperature.default!,
  maxSentences: JUDGE_SETTINGS.maxSentences.default!,
})

/**
 * Whether OpenAI's API treats a model as a reasoning model (o-series, gpt-5 but gpt-5-chat):
 * the rule `@langchain/openai` uses to send `max_completion_tokens` instead of `max_tokens`.
 * Such a model spends output tokens thinking before it answers, so one token is no budget.
 */
export function isReasoningModel(model: string): boolean {
  return /^o\d/.test(model) || (model.startsWith('gpt-5') && !model.startsWith('gpt-5-chat'))
}

/** Default output budgets, per answer. */
export const OUTPUT_TOKENS = {
  /** One token: True or False, whose logprobs are read. */
  logprobs: 1,
  /** A few tokens, so that `True.` or `"False"` is read whole. */
  sampling: 5,
  /** Reasoning models think first; they are billed for what they use, not for the budget. */
  reasoning: 4096,
} as const

/**
 * The output budget of a reply of one line per sentence (`lines` of them, each about
 * `SENTENCE_LINE_TOKENS` tokens): at least that, or `maxOutputTokens` when it is larger; a
 * reasoning model gets it on top of its thinking budget.
 */
export function sentenceOutputTokens(
  lines: number,
  lineTokens: number,
  maxOutputTokens: number | undefined,
  reasoning: boolean,
): number {
  const answer = lines * lineTokens
  return reasoning
    ? (maxOutputTokens ?? OUTPUT_TOKENS.reasoning) + answer
    : Math.max(maxOutputTokens ?? 0, answer)
}
