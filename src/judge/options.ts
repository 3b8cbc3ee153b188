/**
 * The judge's settings: one definition each, used by `createJudge` and by the Worker's config.
 */
import { fraction, headerMap, httpUrl, integer, text, type Setting } from '../settings'

export const JUDGE_SETTINGS = {
  /** Judge model name; it must return logprobs. */
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
  /** The least share of the first token that True and False must cover for a score. */
  minMass: fraction({ env: 'JUDGE_MIN_MASS', default: 0.5 }),
  /** What identifies a chat model passed in, in the verdict cache. */
  identity: text({ nonEmpty: 'a non-empty string' }),
  /** Extra headers on every judge request (a secret: never logged). */
  headers: headerMap({ env: 'JUDGE_HEADERS', secret: true }),
} satisfies Record<string, Setting<unknown>>

export const DEFAULT_JUDGE_OPTIONS = Object.freeze({
  model: JUDGE_SETTINGS.model.default!,
  topLogprobs: JUDGE_SETTINGS.topLogprobs.default!,
  timeoutMs: JUDGE_SETTINGS.timeoutMs.default!,
  maxRetries: JUDGE_SETTINGS.maxRetries.default!,
  minMass: JUDGE_SETTINGS.minMass.default!,
})
