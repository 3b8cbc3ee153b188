import {
  callbackHandlerPrefersChatModelStreamEvents,
  callbackHandlerPrefersStreaming,
} from '@langchain/core/callbacks/base'
import type { Callbacks } from '@langchain/core/callbacks/manager'
import { ConfigurationError } from '../errors'
import { isRecord } from '../json'
import { check, checkOptional } from '../settings'
import { retrying, startBudget, type Budget, type Reported } from './budget'
import {
  addUsage,
  askOne,
  type ChatCall,
  type JudgeChatModel,
  type JudgePromptMessages,
} from './chat'
import { logprobsEstimate } from './estimators/logprobs'
import { sampleCollector, samplingEstimate, type NReply } from './estimators/sampling'
import { logprobsSentences, samplingSentences } from './estimators/sentences'
import type { RefusedParameter } from './failures'
import { givenModels, openAIModels, type JudgeModels } from './models'
import { JUDGE_SETTINGS, type EstimatorOption, type ReasoningEffort } from './options'
import {
  buildPrompt,
  PROMPT_VERSIONS,
  SENTENCE_PROMPT_VERSION,
  type Check,
  type ConversationTurn,
} from './prompt'
import type { Estimate, Estimator, Failure, JudgeNoScore, JudgeResult, TokenUsage } from './result'
import { judgedText, splitSentences, type Granularity } from './sentences'

export type { JudgeChatModel } from './chat'
export type { EstimatorOption, ReasoningEffort } from './options'
export type {
  Estimator,
  JudgeFailureReason,
  JudgeNoScore,
  JudgeResult,
  JudgeScore,
  LogprobsEstimate,
  SamplingEstimate,
  SentenceResult,
  TokenUsage,
} from './result'
export type { Granularity } from './sentences'

export interface JudgeInput {
  question: string
  /** Earlier turns of the conversation the question belongs to, oldest first. */
  history?: readonly ConversationTurn[]
  /** The retrieved context: one string or one string per document. */
  context: string | readonly string[]
  /** The answer to check, for the groundedness check. */
  answer?: string
}

export interface JudgeCallOptions {
  /**
   * LangChain callbacks of the run this judge call belongs to (an agent's, a chain's): the call
   * then shows in tracing as a child run of it, named {@link JUDGE_RUN_NAME}.
   */
  callbacks?: Callbacks

  /** Cancels the judge call; the result is then `judge-aborted`. */
  signal?: AbortSignal
  /** What to ask. @default 'sufficiency' */
  check?: Check
  /**
   * Groundedness: judge the answer whole, or each of its sentences (one line per sentence in one
   * reply; the answer's score is its lowest sentence's). Past `maxSentences` sentences, the
   * answer is judged whole and the result says so (`sentenceCount`).
   * @default 'answer'
   */
  granularity?: Granularity
}

export interface Judge {
  readonly model: string
  /**
   * What makes this judge's scores comparable with another's: endpoint, model and settings.
   * Part of every cache key, so another judge never reads these scores.
   */
  readonly identity: string
  /** The sufficiency prompt's version. */
  readonly promptVersion: string
  /** Each check's prompt version. */
  readonly promptVersions: Readonly<Record<Check, string>>
  /** How it estimates P(True), as configured: `logprobs`, `sampling` or `auto`. */
  readonly estimator?: EstimatorOption
  /**
   * The estimator its next call uses: with `auto`, `logprobs` until the model turned out to give
   * none, `sampling` from then on. Part of the cache key (absent: `logprobs`).
   */
  readonly currentEstimator?: Estimator
  /** Sentence granularity: the most sentences judged one by one (part of the cache key). @default 32 */
  readonly maxSentences?: number
  /** Resolves to a score or a no-score outcome. Never rejects. */
  judge(input: JudgeInput, options?: JudgeCallOptions): Promise<JudgeResult>
}

export interface JudgeOptions {
  /**
   * Judge model name. With the `logprobs` estimator it must return logprobs (reasoning models
   * such as the o-series and most gpt-5 refuse them): use `sampling` or `auto` for those.
   * @default 'gpt-4o-mini'
   */
  model?: string
  /** API key for the judge. Optional when `baseURL` points at a server that needs none. */
  apiKey?: string
  /**
   * Base URL of any OpenAI-compatible chat completions API (Azure OpenAI, vLLM, llama.cpp,
   * Ollama, Cloudflare AI Gateway, Workers AI).
   * @default 'https://api.openai.com/v1'
   */
  baseURL?: string
  /**
   * How many alternatives to read for the first token, 1 to 20. More alternatives catch more
   * spellings of True and False at no extra cost.
   * @default 20
   */
  topLogprobs?: number
  /**
   * Time budget for the whole judge step, retries included (for sampling: every sample's request).
   * @default 3000
   * @unit milliseconds
   */
  timeoutMs?: number
  /**
   * Retries after a failed judge call (5xx, 429, connection failure), within `timeoutMs`: the
   * waits are 100 ms, 200 ms, 400 ms… (or a 429's Retry-After), and a retry whose wait does not
   * fit in the budget is not made. A 4xx or a malformed answer is not retried. Sampling retries
   * only the requests that failed.
   * @default 1
   */
  maxRetries?: number
  /**
   * An already-built LangChain chat model, used as it was built. For `estimator: 'logprobs'`
   * (`AzureChatOpenAI`, `ChatOpenAI` for another server) it must be set up for
   * `logprobs: true`, `topLogprobs`, `maxTokens: 1` and `temperature: 0`. For
   * `estimator: 'sampling'` any chat model does (`ChatAnthropic`, `ChatGoogleGenerativeAI`,
   * …), set up with a temperature above 0 and a few output tokens; a `ChatOpenAI` built with
   * `n` gives all samples in one request. `model`, `apiKey`, `baseURL`, `topLogprobs`,
   * `samplingTemperature`, `reasoningEffort` and `maxOutputTokens` are then not used; `auto`
   * needs models of its own and is refused.
   */
  chatModel?: JudgeChatModel
  /**
   * The least share of the answers that True and False together must cover for a score to be
   * read: of the first token's probability (logprobs), or of the samples (sampling). Below it
   * (the model mostly answered something else, such as "Yes"), there is no score
   * (`low-answer-mass`).
   * @default 0.5
   */
  minMass?: number
  /**
   * What identifies a `chatModel`'s scores in the verdict cache. Without it, the identity comes
   * from LangChain's own description of the model (class, model, temperature, logprobs,
   * endpoint; never its key); a model LangChain cannot describe needs it.
   */
  identity?: string
  /** The `fetch` the OpenAI client uses. @default globalThis.fetch */
  fetch?: typeof fetch
  /**
   * Extra headers on every judge request, such as `cf-aig-authorization` for an authenticated
   * Cloudflare AI Gateway. Their values are never logged.
   */
  headers?: Record<string, string>
  /**
   * How P(True) is estimated. `'logprobs'`: from the first token's `top_logprobs` (one request,
   * one output token). `'sampling'`: the smoothed share of True among `samples` answers at
   * `samplingTemperature`, for models without logprobs. `'auto'`: logprobs, and for a model
   * that refuses them or returns none, sampling from then on (remembered for the judge's life).
   * @default 'logprobs'
   */
  estimator?: EstimatorOption
  /**
   * Sampling: answers per check (N), 2 to 20. One request with `n` where the provider honours
   * it, N concurrent requests where it does not. A score from N answers takes N + 1 values.
   * @default 5
   */
  samples?: number
  /**
   * Sampling: the temperature, above 0 and at most 2 (reasoning models accept only 1).
   * @default 1
   */
  samplingTemperature?: number
  /**
   * `reasoning_effort` sent with every request, for reasoning models: `'none'`, `'minimal'`,
   * `'low'`, `'medium'`, `'high'` or `'xhigh'` (each model accepts some). Unset: the model's own
   * default. Setting it (to other than `'none'`) also gives the model a reasoning budget.
   */
  reasoningEffort?: ReasoningEffort
  /**
   * The output budget of each answer (`max_tokens`, or `max_completion_tokens` for reasoning
   * models), 1 to 100000. By default 1 for logprobs, 5 for sampling (room for `True.`), and
   * 4096 for reasoning models, which think before they answer and are billed for what they use.
   */
  maxOutputTokens?: number
  /**
   * Groundedness at sentence granularity: the most sentences of an answer judged one by one,
   * 1 to 200. The output budget grows with the sentence count (about 5 tokens a line); an answer
   * with more sentences is judged whole (the result's `sentenceCount` says how many it had).
   * A `chatModel` passed in keeps its own output budget: give it room for the lines.
   * @default 32
   */
  maxSentences?: number
}

/**
 * What identifies a chat model passed in: LangChain's own serialisation of it (class path and
 * constructor fields: model, temperature, logprobs, top_logprobs, endpoint). Secrets are never
 * in it: LangChain replaces them with references. Throws when the model cannot describe itself.
 */
function describeChatModel(chatModel: JudgeChatModel): string {
  const serialisable = chatModel as { toJSON?: () => unknown }
  const described =
    typeof serialisable.toJSON === 'function'
      ? (serialisable.toJSON() as Record<string, unknown>)
      : undefined
  if (!described || described.type !== 'constructor') {
    throw new ConfigurationError(
      'RAG Guard judge: "identity" is required with a chatModel that LangChain cannot describe: it keeps scores of different judges apart in the verdict cache',
      'identity',
    )
  }
  return JSON.stringify([described.id, described.kwargs])
}

/** Checks a ChatOpenAI-like model's fields, where it has them, against the estimator, to fail early. */
function checkChatModel(chatModel: JudgeChatModel, estimator: EstimatorOption): void {
  const fields = chatModel as { logprobs?: unknown; temperature?: unknown }
  if (estimator === 'auto') {
    throw new ConfigurationError(
      'RAG Guard judge: "estimator" "auto" builds its own models (one for logprobs, one for sampling) and cannot use a "chatModel"; with a chatModel, choose "logprobs" or "sampling"',
      'estimator',
    )
  }
  if (estimator === 'logprobs' && 'logprobs' in fields && fields.logprobs !== true) {
    throw new ConfigurationError(
      'RAG Guard judge: "chatModel" must be created with logprobs: true (and topLogprobs 5 to 20), or the judge can read no score; for a model without logprobs, use "estimator": "sampling"',
      'chatModel',
    )
  }
  if (estimator === 'sampling' && fields.temperature === 0) {
    throw new ConfigurationError(
      'RAG Guard judge: "chatModel" must be created with a temperature above 0 for sampling: at 0 every sample gives the same answer',
      'chatModel',
    )
  }
}

const OWNER = 'RAG Guard judge'

/** The name of the judge's chat model call in LangChain tracing, when it runs inside a run. */
export const JUDGE_RUN_NAME = 'RagGuardJudge'

/** Whether a callback handler makes a chat model stream its answer instead of asking for it whole. */
const streams = (handler: unknown) =>
  isRecord(handler) &&
  Boolean(
    callbackHandlerPrefersStreaming(handler as never) ||
    callbackHandlerPrefersChatModelStreamEvents(handler as never),
  )

/**
 * The caller's callbacks without the handlers that make a chat model stream (LangGraph's
 * `messages` stream mode, `streamEvents`): a streamed reply loses the first token's logprobs when
 * LangChain assembles it, so the judge would read no score. The judge's one token is no part of
 * an answer anyway. Tracers and the rest are kept, with the run they belong to.
 */
function withoutStreaming(callbacks: Callbacks): Callbacks {
  if (Array.isArray(callbacks)) return callbacks.filter((handler) => !streams(handler))
  const manager = callbacks.copy()
  for (const handler of [...manager.handlers]) if (streams(handler)) manager.removeHandler(handler)
  return manager
}

/**
 * The call options that make the judge call a named child run of the caller's run, if any. Its
 * one token is no part of an answer: LangGraph's `messages` stream mode leaves out runs tagged
 * `langsmith:nostream`, so an agent's streamed messages never show it.
 */
const traced = ({ callbacks }: JudgeCallOptions) =>
  callbacks
    ? {
        callbacks: withoutStreaming(callbacks),
        runName: JUDGE_RUN_NAME,
        tags: ['langsmith:nostream'],
      }
    : {}

/** An estimate, or why there is none, with the model that answered and what it cost. */
interface Estimated {
  result: Estimate | Failure
  /** A parameter the provider refused (a 400 naming `logprobs` or `n`). */
  refused?: RefusedParameter
  model?: string
  usage?: TokenUsage
}

/**
 * Whether a logprobs estimate shows the model has none: the provider refused them in its error's
 * structured fields. A reply without logprobs is not enough: a content filter sends one, and the
 * request's data can cause it (issue 24).
 */
const withoutLogprobs = ({ refused }: Estimated): boolean => refused === 'logprobs'

/** The judge's options, checked against their definitions, with their defaults. */
export function resolveJudgeOptions(options: JudgeOptions) {
  const setting = <K extends keyof typeof JUDGE_SETTINGS>(name: K) =>
    check<(typeof JUDGE_SETTINGS)[K]>(OWNER, name, JUDGE_SETTINGS[name], options[name])
  const optional = <K extends keyof typeof JUDGE_SETTINGS>(name: K) =>
    checkOptional<(typeof JUDGE_SETTINGS)[K]>(OWNER, name, JUDGE_SETTINGS[name], options[name])
  const settings = {
    model: setting('model'),
    topLogprobs: setting('topLogprobs'),
    timeoutMs: setting('timeoutMs'),
    maxRetries: setting('maxRetries'),
    minMass: setting('minMass'),
    estimator: setting('estimator'),
    samples: setting('samples'),
    samplingTemperature: setting('samplingTemperature'),
    reasoningEffort: optional('reasoningEffort'),
    maxOutputTokens: optional('maxOutputTokens'),
    maxSentences: setting('maxSentences'),
  }
  for (const name of ['apiKey', 'baseURL', 'headers', 'identity'] as const) optional(name)
  if (options.chatModel) checkChatModel(options.chatModel, settings.estimator)
  else if (!options.apiKey && !options.baseURL) {
    throw new ConfigurationError(
      'RAG Guard judge: "apiKey" is required for the OpenAI API (or set "baseURL" to a server that needs no key, or pass "chatModel")',
      'apiKey',
    )
  }
  return settings
}

/**
 * Everything that shapes a judge's scores, so that another endpoint, model or setting never
 * shares them. The estimator of each score is part of the cache key besides (a judge with
 * `auto` makes scores of both).
 */
export function judgeIdentity(
  options: JudgeOptions,
  settings: ReturnType<typeof resolveJudgeOptions>,
): string {
  const { estimator, samples, samplingTemperature, reasoningEffort, maxOutputTokens } = settings
  const estimation = [
    estimator,
    ...(estimator === 'logprobs' ? [] : [samples, samplingTemperature]),
    reasoningEffort ?? null,
    maxOutputTokens ?? null,
  ]
  return JSON.stringify(
    options.chatModel
      ? [
          'chat-model',
          options.identity ?? describeChatModel(options.chatModel),
          settings.minMass,
          ...estimation,
        ]
      : [
          options.baseURL ?? 'https://api.openai.com/v1',
          settings.model,
          settings.topLogprobs,
          settings.minMass,
          ...estimation,
        ],
  )
}

/**
 * What the judge asks for one input and check: the prompt, or why the input cannot be judged
 * (no question, no documents, no answer to check) without asking a model. Shared by the judge
 * and by the Batch API's requests, so both ask exactly the same.
 */
export function prepareInput(
  check: Check,
  input: JudgeInput,
  granularity: Granularity = 'answer',
  maxSentences: number = JUDGE_SETTINGS.maxSentences.default!,
): PreparedInput {
  const documents = (typeof input.context === 'string' ? [input.context] : input.context).filter(
    (document) => document.trim() !== '',
  )
  if (input.question.trim() === '')
    return { ok: false, reason: 'no-question', message: 'the question is empty' }
  if (documents.length === 0)
    return { ok: false, reason: 'no-context', message: 'there are no documents to judge' }
  if (check === 'groundedness' && (input.answer ?? '').trim() === '')
    return { ok: false, reason: 'no-answer', message: 'there is no answer to check' }
  const plan = sentencePlan(check, input.answer, granularity, maxSentences)
  const { messages } = buildPrompt(check, {
    question: input.question,
    documents,
    history: input.history,
    answer: input.answer,
    ...(plan.lines !== undefined ? { sentences: plan.sentences } : {}),
  })
  const { sentences: _sentences, ...planned } = plan
  return {
    ok: true,
    prompt: messages.map(({ role, content }): [string, string] => [role, content]),
    ...planned,
  }
}

/**
 * How an answer is asked about at `granularity`: per sentence (`lines`: how many, `sentences`:
 * their text as the judge sees it), whole past `maxSentences` (`sentenceCount`), or, for answer
 * granularity and the sufficiency check, nothing to say. Shared by the judge and the Batch API's
 * requests, so both number the same sentences.
 */
export function sentencePlan(
  check: Check,
  answer: string | undefined,
  granularity: Granularity = 'answer',
  maxSentences: number = JUDGE_SETTINGS.maxSentences.default!,
): {
  granularity?: Granularity
  lines?: number
  sentenceCount?: number
  sentences?: string[]
} {
  if (check !== 'groundedness' || granularity !== 'sentence' || answer === undefined) return {}
  const sentences = splitSentences(answer).map(judgedText)
  return sentences.length <= maxSentences
    ? { granularity: 'sentence', lines: sentences.length, sentences }
    : { granularity: 'answer', sentenceCount: sentences.length }
}

/** What the judge asks for one input and check, or why it asks nothing. */
export type PreparedInput =
  | {
      ok: true
      prompt: JudgePromptMessages
      /** Asked at sentence granularity: judged per sentence, or (past the limit) whole. */
      granularity?: Granularity
      /** Per sentence: the number of sentences, so of reply lines. */
      lines?: number
      /** Past the limit: the answer's sentence count. */
      sentenceCount?: number
    }
  | { ok: false; reason: 'no-question' | 'no-context' | 'no-answer'; message: string }

/** The version of the prompt a prepared input was asked with. */
export function promptVersionOf(check: Check, prepared: PreparedInput): string {
  return prepared.ok && prepared.lines !== undefined
    ? SENTENCE_PROMPT_VERSION
    : PROMPT_VERSIONS[check]
}

/** What a result says of its granularity, for a prepared input asked at sentence granularity. */
export function granularityOf(
  prepared: PreparedInput,
): Pick<JudgeResult, 'granularity' | 'sentenceCount'> {
  if (!prepared.ok || !prepared.granularity) return {}
  return {
    granularity: prepared.granularity,
    ...(prepared.sentenceCount !== undefined ? { sentenceCount: prepared.sentenceCount } : {}),
  }
}

/**
 * Creates the judge: P(True) from the first token's logprobs (one token at temperature 0), from
 * the share of True among N sampled answers, or (`auto`) from logprobs until the model turns out
 * to give none, then by sampling. Each call asks one check: sufficiency (by default) or
 * groundedness (with `answer`).
 *
 * @example
 * ```ts
 * const judge = createJudge({ model: 'gpt-4o-mini', apiKey: env.OPENAI_API_KEY })
 * const result = await judge.judge({ question: 'Who wrote it?', context: ['…', '…'] })
 * if (result.ok) console.log(result.score, result.estimator)
 * else console.log(result.reason)
 *
 * // A reasoning model, which gives no logprobs:
 * createJudge({ model: 'gpt-5-mini', apiKey, estimator: 'sampling', reasoningEffort: 'low' })
 * ```
 */
export function createJudge(options: JudgeOptions = {}): Judge {
  const settings = resolveJudgeOptions(options)
  const { model, timeoutMs, maxRetries, minMass, estimator, samples, maxSentences } = settings

  const models: JudgeModels = options.chatModel
    ? givenModels(options.chatModel)
    : openAIModels({
        ...settings,
        apiKey: options.apiKey,
        baseURL: options.baseURL,
        fetch: options.fetch,
        headers: options.headers,
      })

  // What this judge has learned of its model, for as long as it lives (an isolate, in a Worker):
  // with `auto`, that it gives no logprobs; for sampling, that it does not honour `n`. Only what
  // the provider says in its error's fields, or what every reply shows, teaches it: never one
  // reply, which the request's data can shape.
  const sampledInstead = new Set<string>()
  const nNotHonoured = new Set<string>()
  /** Replies in a row to `n` that carried fewer answers than asked for. */
  let fewerInARow = 0

  function learnN(reply: NReply): void {
    if (nNotHonoured.has(model)) return
    if (reply === 'all') {
      fewerInARow = 0
      return
    }
    if (reply === 'fewer' && ++fewerInARow < samples) return
    nNotHonoured.add(model)
    const cause =
      reply === 'refused'
        ? 'it refused "n"'
        : `${samples} replies in a row carried fewer than the ${samples} answers asked for`
    console.warn(
      JSON.stringify({
        message: `${OWNER}: the model does not honour n (${cause}); asking for each sample in a request of its own from now on`,
        model,
      }),
    )
  }
  const current = (): Estimator =>
    estimator === 'auto' ? (sampledInstead.has(model) ? 'sampling' : 'logprobs') : estimator

  function turnToSampling(reason: string): void {
    // Calls that were in flight together each find out; one is enough to say it.
    if (sampledInstead.has(model)) return
    sampledInstead.add(model)
    console.warn(
      JSON.stringify({
        message: `${OWNER}: the model gives no logprobs (${reason}); estimating by sampling (${samples} samples per check) from now on`,
        model,
        estimator: 'sampling',
      }),
    )
  }

  const failed = (which: Estimator, { refused, ...failure }: Reported): Estimated => ({
    result: { ok: false, estimator: which, ...failure },
    ...(refused ? { refused } : {}),
  })

  async function estimate(
    which: Estimator,
    prompt: Array<[string, string]>,
    budget: Budget,
    tracing: Omit<ChatCall, 'signal'>,
    /** Per sentence: how many lines the reply has. */
    lines?: number,
  ): Promise<Estimated> {
    const call = { ...tracing, signal: budget.signal }
    if (which === 'logprobs') {
      const asked = await retrying(budget, maxRetries, () =>
        askOne(models.logprobs(lines), prompt, call),
      )
      if (!asked.ok) return failed(which, asked.failure)
      const reply = asked.value
      const result =
        lines === undefined
          ? logprobsEstimate(reply, minMass)
          : logprobsSentences(reply, lines, minMass)
      return { result, model: reply.model, usage: reply.usage }
    }
    const attempt = sampleCollector(
      models.sampling(prompt, lines),
      samples,
      !nNotHonoured.has(model),
      learnN,
    )
    const asked = await retrying(budget, maxRetries, () => attempt(call))
    if (!asked.ok) return failed(which, asked.failure)
    const { answers, requests, model: answeredBy, usage } = asked.value
    const result =
      lines === undefined
        ? samplingEstimate(answers, requests, minMass)
        : samplingSentences(answers, requests, lines, minMass)
    return { result, model: answeredBy, usage }
  }

  async function judge(
    input: JudgeInput,
    callOptions: JudgeCallOptions = {},
  ): Promise<JudgeResult> {
    const startedAt = Date.now()
    const check = callOptions.check ?? 'sufficiency'
    const prepared = prepareInput(check, input, callOptions.granularity, maxSentences)
    const base = () => ({
      check,
      model,
      promptVersion: promptVersionOf(check, prepared),
      latencyMs: Date.now() - startedAt,
      ...granularityOf(prepared),
    })
    if (!prepared.ok) return { ...prepared, ...base() }
    const lines = prepared.lines

    const budget = startBudget(timeoutMs, callOptions.signal)
    const prompt = prepared.prompt
    const planned = current()
    const tracing = traced(callOptions)
    try {
      let estimated = await estimate(planned, prompt, budget, tracing, lines)
      let usage = estimated.usage
      if (estimator === 'auto' && planned === 'logprobs' && withoutLogprobs(estimated)) {
        turnToSampling('it refused "logprobs"')
        estimated = await estimate('sampling', prompt, budget, tracing, lines)
        usage = addUsage(usage, estimated.usage) // the logprobs request was paid for too
      }
      return {
        ...base(),
        model: estimated.model ?? model,
        ...(usage ? { usage } : {}),
        ...estimated.result,
      }
    } catch {
      const failure: Omit<JudgeNoScore, 'check' | 'model' | 'promptVersion' | 'latencyMs'> =
        budget.timedOut()
          ? {
              ok: false,
              reason: 'judge-timeout',
              message: `the judge did not answer within ${timeoutMs} ms`,
            }
          : { ok: false, reason: 'judge-aborted', message: 'the judge call was cancelled' }
      return { ...failure, estimator: current(), ...base() }
    } finally {
      budget.end()
    }
  }

  return {
    model,
    identity: judgeIdentity(options, settings),
    promptVersion: PROMPT_VERSIONS.sufficiency,
    promptVersions: PROMPT_VERSIONS,
    estimator,
    get currentEstimator() {
      return current()
    },
    maxSentences,
    judge,
  }
}
