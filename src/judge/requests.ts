/**
 * A judge's requests as data, for a provider's Batch API: the chat-completions body the online
 * judge sends for an input and a check, and the result the online judge reads from a reply. The
 * prompt (`prepareInput`), the request parameters (the judge's own `ChatOpenAI` models) and the
 * scoring (the estimators) are the online judge's; only the transport differs, so a batched
 * example's score is the online score for the same model reply.
 */
import { ConfigurationError } from '../errors'
import { replyFromCompletion } from './chat'
import { logprobsEstimate } from './estimators/logprobs'
import { samplingEstimate } from './estimators/sampling'
import { logprobsSentences, samplingSentences } from './estimators/sentences'
import { classifyFailure } from './failures'
import {
  granularityOf,
  judgeIdentity,
  prepareInput,
  promptVersionOf,
  resolveJudgeOptions,
  sentencePlan,
  type JudgeOptions,
} from './judge'
import { openAIRequestBodies } from './models'
import { PROMPT_VERSIONS, SENTENCE_PROMPT_VERSION, type Check } from './prompt'
import type { Granularity } from './sentences'
import type { Estimator, JudgeNoScore, JudgeResult } from './result'
import type { JudgeInput } from './judge'

export interface JudgeRequests {
  readonly model: string
  /** As `Judge.identity`: what makes these scores comparable with another judge's. */
  readonly identity: string
  readonly estimator: Estimator
  /** Sampling: the answers asked for per check (N). */
  readonly samples: number
  readonly promptVersions: Readonly<Record<Check, string>>
  /**
   * The request body for one input and check, or the no-score result the online judge gives
   * without asking a model (no question, no documents, no answer).
   */
  request(
    input: JudgeInput,
    check: Check,
  ): { ok: true; body: Record<string, unknown> } | { ok: false; result: JudgeNoScore }
  /**
   * The result of a 200 reply's body, scored by the online judge's estimators. `answer`: the
   * answer the request asked about (per sentence, its sentences are counted again, as the request
   * numbered them).
   */
  read(check: Check, completion: unknown, answer?: string): JudgeResult
  /**
   * The result of a request the provider answered with an error status (`body` its error
   * object): the online judge's reason code for that status, never the provider's own text.
   */
  failed(check: Check, status: number, body: unknown): JudgeNoScore
}

/** The fields of an OpenAI error body that say what went wrong, as `classifyFailure` reads them. */
function apiError(status: number, body: unknown): Error {
  const error = (body as { error?: Record<string, unknown> } | undefined)?.error ?? {}
  const text = typeof error.message === 'string' ? error.message : ''
  return Object.assign(new Error(text), { status, code: error.code, param: error.param })
}

/**
 * The requests of a judge built from `options` (as `createJudge` takes them). Only the logprobs
 * and sampling estimators: `auto` decides from each reply whether to ask again by sampling,
 * which a batch submitted in advance cannot; and only models built from settings (the Batch
 * API takes chat-completions bodies, not a LangChain model).
 */
export function createJudgeRequests(
  options: JudgeOptions,
  /** Groundedness per answer, or per sentence (one request each, one line per sentence). */
  granularity: Granularity = 'answer',
): JudgeRequests {
  if (options.chatModel)
    throw new ConfigurationError(
      'RAG Guard judge requests: a "chatModel" cannot be sent through the Batch API; give the model by name',
      'chatModel',
    )
  const settings = resolveJudgeOptions(options)
  const { estimator, model, minMass, samples, maxSentences } = settings
  if (estimator === 'auto')
    throw new ConfigurationError(
      'the Batch API needs the estimator chosen in advance: use --estimator logprobs or --estimator sampling (auto decides from each reply)',
      'estimator',
    )
  const bodies = openAIRequestBodies({
    ...settings,
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    headers: options.headers,
  })
  const base = (check: Check, answer?: string) => {
    const plan = sentencePlan(check, answer, granularity, maxSentences)
    return {
      check,
      model,
      promptVersion: plan.lines !== undefined ? SENTENCE_PROMPT_VERSION : PROMPT_VERSIONS[check],
      // A batched request has no latency of its own: the batch's window is what it took.
      latencyMs: 0,
      ...(plan.granularity ? { granularity: plan.granularity } : {}),
      ...(plan.sentenceCount !== undefined ? { sentenceCount: plan.sentenceCount } : {}),
    }
  }

  return {
    model,
    identity: judgeIdentity(options, settings),
    estimator,
    samples,
    // Per sentence, groundedness is asked with its own prompt: a batch state of the other
    // granularity is refused as another judge's.
    promptVersions:
      granularity === 'sentence'
        ? { ...PROMPT_VERSIONS, groundedness: SENTENCE_PROMPT_VERSION }
        : PROMPT_VERSIONS,
    request(input, check) {
      const prepared = prepareInput(check, input, granularity, maxSentences)
      if (!prepared.ok)
        return {
          ok: false,
          result: {
            ...prepared,
            ...base(check),
            promptVersion: promptVersionOf(check, prepared),
            ...granularityOf(prepared),
          },
        }
      return { ok: true, body: bodies[estimator](prepared.prompt, prepared.lines) }
    },
    read(check, completion, answer) {
      let reply
      try {
        reply = replyFromCompletion(completion)
      } catch (error) {
        const { retryable: _retryable, retryAfterMs: _wait, ...failure } = classifyFailure(error)
        return { ok: false, estimator, ...failure, ...base(check, answer) }
      }
      const lines = sentencePlan(check, answer, granularity, maxSentences).lines
      const answers = reply.answers.slice(0, samples)
      const estimate =
        lines === undefined
          ? estimator === 'logprobs'
            ? logprobsEstimate(reply, minMass)
            : samplingEstimate(answers, 1, minMass)
          : estimator === 'logprobs'
            ? logprobsSentences(reply, lines, minMass)
            : samplingSentences(answers, 1, lines, minMass)
      return {
        ...base(check, answer),
        model: reply.model ?? model,
        ...(reply.usage ? { usage: reply.usage } : {}),
        ...estimate,
      }
    },
    failed(check, status, body) {
      const {
        retryable: _retryable,
        retryAfterMs: _wait,
        refused: _refused,
        ...failure
      } = classifyFailure(apiError(status, body))
      return { ok: false, estimator, ...failure, ...base(check) }
    },
  }
}
