/**
 * Judging one question against its documents: the verdict cache first, then the judge, then the
 * cache again (written after the response, never on its path). Never rejects: a cache that
 * fails, even by throwing, counts as a miss.
 */
import { cacheKey, type CacheKeyParts, type VerdictCache } from '../judge/cache'
import type { Judge, JudgeResult } from '../judge/judge'
import { DEFAULT_JUDGE_OPTIONS } from '../judge/options'
import { SENTENCE_PROMPT_VERSION, type Check, type ConversationTurn } from '../judge/prompt'
import type { Granularity } from '../judge/sentences'
import type { JudgeOutcome } from './decision'

/** The longest a verdict-cache lookup may take before it counts as a miss. */
export const CACHE_LOOKUP_LIMIT_MS = 50

export interface JudgeRequest {
  question: string
  /** Earlier turns of the conversation, oldest first. */
  history?: readonly ConversationTurn[]
  documents: readonly string[]
  /** What to ask: sufficiency, or groundedness of `answer`. */
  check: Check
  answer?: string
  /** Groundedness: the answer judged whole, or per sentence. @default 'answer' */
  granularity?: Granularity
  /** Whose cached scores this request may read and write ('' when the cache is shared). */
  scope: string
  /** Cancels the judge call (the client went away, or the answer no longer needs a verdict). */
  signal: AbortSignal
  /** Runs work after the response (`waitUntil`), such as the cache write. */
  defer: (work: Promise<unknown>) => void
}

export type Judging = (request: JudgeRequest) => Promise<JudgeOutcome>

/** A lookup bounded in time; whatever goes wrong, it is a miss. */
async function lookup(cache: VerdictCache, key: string) {
  let timer: ReturnType<typeof setTimeout> | undefined
  const limit = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, CACHE_LOOKUP_LIMIT_MS, undefined)
  })
  try {
    return await Promise.race([Promise.resolve().then(() => cache.get(key)), limit])
  } catch {
    return undefined
  } finally {
    // Workers' clearTimeout takes a number only (Node's also undefined)
    if (timer !== undefined) clearTimeout(timer)
  }
}

export function createJudging(judge: Judge, cache?: VerdictCache): Judging {
  /** The judge's own call: a judge passed in that rejects (against its contract) is a judge-error. */
  const call = async (request: JudgeRequest): Promise<JudgeResult> => {
    const startedAt = Date.now()
    try {
      return await judge.judge(
        {
          question: request.question,
          history: request.history,
          context: request.documents,
          answer: request.answer,
        },
        {
          signal: request.signal,
          check: request.check,
          ...(request.granularity ? { granularity: request.granularity } : {}),
        },
      )
    } catch (error) {
      return {
        ok: false,
        reason: 'judge-error',
        message: `the judge threw (${error instanceof Error ? error.name : typeof error})`,
        check: request.check,
        model: judge.model,
        promptVersion: judge.promptVersions?.[request.check] ?? judge.promptVersion,
        latencyMs: Date.now() - startedAt,
      }
    }
  }
  if (!cache) return async (request) => ({ result: await call(request) })
  return async (request) => {
    const perSentence = request.check === 'groundedness' && request.granularity === 'sentence'
    const parts: CacheKeyParts = {
      judge: judge.identity,
      // Per sentence, the prompt (and, past the sentence limit, the granularity) differ.
      promptVersion: perSentence
        ? `${SENTENCE_PROMPT_VERSION} max ${judge.maxSentences ?? DEFAULT_JUDGE_OPTIONS.maxSentences}`
        : (judge.promptVersions?.[request.check] ?? judge.promptVersion),
      check: request.check,
      estimator: judge.currentEstimator,
      scope: request.scope,
      question: request.question,
      history: request.history,
      documents: request.documents,
      answer: request.answer,
    }
    const key = await cacheKey(parts)
    const hit = await lookup(cache, key)
    if (hit) return { result: hit, cache: 'hit' }
    const result = await call(request)
    // Failures are never cached: the next request asks the judge again. A score goes under the
    // estimator that made it (an `auto` judge may have turned to sampling during this call).
    if (result.ok) {
      const putKey =
        result.estimator === (parts.estimator ?? 'logprobs')
          ? key
          : cacheKey({ ...parts, estimator: result.estimator })
      request.defer(Promise.resolve(putKey).then((scored) => cache.put(scored, result)))
    }
    return { result, cache: 'miss' }
  }
}
