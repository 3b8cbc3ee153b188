/**
 * P(True) from OpenAI chat-completions logprobs.
 *
 * The judge is asked for one token, `True` or `False`. The first content token's `top_logprobs`
 * holds the model's distribution over that token; the score is the mass of every spelling of
 * "true" over the mass of "true" plus "false". The probability of the *chosen* token is never
 * the score: "False at 99%" means P(True) is about 1%.
 *
 * @see https://platform.openai.com/docs/api-reference/chat/object (choices[].logprobs)
 */
import { isRecord } from '../json'

/** One entry of `logprobs.content[].top_logprobs`. */
export interface TopLogprob {
  token: string
  logprob: number
  bytes?: number[] | null
}

/** One entry of `logprobs.content`. */
export interface TokenLogprob extends TopLogprob {
  top_logprobs?: TopLogprob[] | null
}

/**
 * `choices[0].logprobs` of a chat completion; LangChain keeps it at `response_metadata.logprobs`.
 * The Responses API's token list (`output[].content[].logprobs`) is read the same way.
 */
export interface ChatLogprobs {
  content?: TokenLogprob[] | null
  refusal?: TokenLogprob[] | null
}

/** Why no score could be read from a response's logprobs. */
export type ScoringFailureReason =
  /** The response carried no `logprobs` (the model or server does not return them). */
  | 'no-logprobs'
  /** `logprobs` was there but had no content token to read. */
  | 'no-content-tokens'
  /** The first token was neither a spelling of true nor of false. */
  | 'unexpected-token'
  /** The judge refused to answer (`logprobs.refusal`, no content). */
  | 'judge-refusal'

export type LogprobScore =
  | {
      ok: true
      /** P(True) = pTrue / (pTrue + pFalse), in [0, 1]. */
      score: number
      /** Probability mass of every spelling of "true" among the read alternatives. */
      pTrue: number
      /** Probability mass of every spelling of "false" among the read alternatives. */
      pFalse: number
      /** pTrue + pFalse: how much of the distribution the two answers cover. */
      mass: number
      /** The token the model actually produced. */
      token: string
      /**
       * `top_logprobs` when the alternatives were listed; `chosen-token` when the list was empty
       * and only the chosen token's own probability was known (the remaining mass is then
       * counted for the other answer, which gives the cautious bound).
       */
      source: 'top_logprobs' | 'chosen-token'
    }
  | { ok: false; reason: ScoringFailureReason; token?: string }

type Answer = 'true' | 'false'

/**
 * Byte-pair-encoding word-start markers: GPT-2 style `Ġ` (U+0120, an encoded space) and
 * SentencePiece `▁` (U+2581). Servers such as llama.cpp or vLLM can return tokens with them.
 */
const WORD_START_MARKERS = /^[\u0120\u2581\s]+|\s+$/g

/** `True`, ` True`, `TRUE`, `ĠTrue`, `▁true` → 'true'; anything else → undefined. */
export function classifyToken(token: string): Answer | undefined {
  const word = token.replace(WORD_START_MARKERS, '').toLowerCase()
  return word === 'true' || word === 'false' ? word : undefined
}

/**
 * `exp(logprob)`, with anything that is not a usable log-probability counted as no mass.
 * `-9999` is OpenAI's sentinel for "not within the top 20" and lands at 0 on its own.
 */
function probability(logprob: unknown): number {
  if (typeof logprob !== 'number' || Number.isNaN(logprob)) return 0
  return Math.exp(Math.min(logprob, 0))
}

/**
 * Reads P(True) from a chat completion's `choices[0].logprobs`. Never throws: any input that is
 * not a usable logprobs object gives `{ ok: false, reason }`.
 */
export function scoreLogprobs(
  logprobs: ChatLogprobs | TokenLogprob[] | null | undefined | unknown,
): LogprobScore {
  // The Responses API lists the tokens directly (`output[].content[].logprobs`).
  const content = Array.isArray(logprobs)
    ? logprobs
    : isRecord(logprobs)
      ? logprobs.content
      : undefined
  if (!Array.isArray(content) || content.length === 0) {
    if (!isRecord(logprobs) && !Array.isArray(logprobs)) return { ok: false, reason: 'no-logprobs' }
    // A refusal carries `logprobs.refusal` and no content: there is no answer to read.
    const refusal = isRecord(logprobs) ? logprobs.refusal : undefined
    if (Array.isArray(refusal) && refusal.length > 0) return { ok: false, reason: 'judge-refusal' }
    return {
      ok: false,
      reason: content == null && refusal == null ? 'no-logprobs' : 'no-content-tokens',
    }
  }
  const first: unknown = content[0]
  if (!isRecord(first) || typeof first.token !== 'string') {
    return { ok: false, reason: 'no-content-tokens' }
  }
  const token = first.token
  const chosen = classifyToken(token)
  if (chosen === undefined) return { ok: false, reason: 'unexpected-token', token }

  const alternatives = Array.isArray(first.top_logprobs) ? first.top_logprobs : []
  let pTrue = 0
  let pFalse = 0
  let listedChosen = false
  const seen = new Set<string>()
  for (const alternative of alternatives) {
    if (!isRecord(alternative) || typeof alternative.token !== 'string') continue
    // A token listed twice (a faulty server) counts once.
    if (seen.has(alternative.token)) continue
    seen.add(alternative.token)
    if (alternative.token === token) listedChosen = true
    const answer = classifyToken(alternative.token)
    if (answer === 'true') pTrue += probability(alternative.logprob)
    else if (answer === 'false') pFalse += probability(alternative.logprob)
  }

  if (alternatives.length === 0 || (!listedChosen && pTrue + pFalse === 0)) {
    // Only the chosen token is known. Count the rest of the distribution for the other answer:
    // "True at 99.6%" gives P(True) >= 0.996, "False at 99.1%" gives P(True) <= 0.009.
    const p = probability(first.logprob)
    pTrue = chosen === 'true' ? p : 1 - p
    pFalse = 1 - pTrue
    return { ok: true, score: pTrue, pTrue, pFalse, mass: 1, token, source: 'chosen-token' }
  }
  if (!listedChosen) {
    // The chosen token is always among OpenAI's alternatives; some servers leave it out.
    if (chosen === 'true') pTrue += probability(first.logprob)
    else pFalse += probability(first.logprob)
  }
  if (pTrue + pFalse > 1) {
    // More than all of the probability: the server's numbers are off; keep their proportion.
    const total = pTrue + pFalse
    pTrue /= total
    pFalse /= total
  }
  const mass = pTrue + pFalse
  if (mass === 0) return { ok: false, reason: 'unexpected-token', token }
  return { ok: true, score: pTrue / mass, pTrue, pFalse, mass, token, source: 'top_logprobs' }
}
