/**
 * The chat models a judge asks: for logprobs, one answer of one token at temperature 0 with
 * `top_logprobs`; for sampling, N short answers at a temperature above 0, all in one request
 * (`n`) or one per request. Built from settings as `ChatOpenAI` (chat completions), or a chat
 * model passed in, used as it was built.
 */
import { coerceMessageLikeToMessage } from '@langchain/core/messages'
import { ChatOpenAI, convertMessagesToCompletionsMessageParams } from '@langchain/openai'
import { askAll, type ChatCall, type JudgeChatModel, type JudgePromptMessages } from './chat'
import type { SampleSource } from './estimators/sampling'
import {
  isReasoningModel,
  OUTPUT_TOKENS,
  sentenceOutputTokens,
  type ReasoningEffort,
} from './options'
import { SENTENCE_LINE_TOKENS } from './sentences'

export interface JudgeModels {
  /**
   * The model the logprobs estimator asks (`invoke`); with `lines`, one whose output budget holds
   * that many lines of a per-sentence reply.
   */
  logprobs(lines?: number): JudgeChatModel
  /** Where the sampling estimator's answers come from (`lines`: as for `logprobs`). */
  sampling(prompt: JudgePromptMessages, lines?: number): SampleSource
}

/**
 * The chat-completions bodies the judge's own `ChatOpenAI` models send, as data, for the
 * provider's Batch API: the same parameters (`invocationParams`) and messages (LangChain's own
 * conversion), so a batched request asks exactly what the online judge asks.
 */
export interface JudgeRequestBodies {
  /** The logprobs estimator's request (`lines`: a per-sentence reply of that many lines). */
  logprobs(prompt: JudgePromptMessages, lines?: number): Record<string, unknown>
  /** The sampling estimator's first request: all N answers at once (`n`). */
  sampling(prompt: JudgePromptMessages, lines?: number): Record<string, unknown>
}

export interface OpenAIModelSettings {
  model: string
  apiKey?: string
  baseURL?: string
  fetch?: typeof fetch
  headers?: Record<string, string>
  topLogprobs: number
  samples: number
  samplingTemperature: number
  reasoningEffort?: ReasoningEffort
  maxOutputTokens?: number
}

/** Whether the model thinks before it answers: by its name, or because it was given an effort. */
export function thinks(model: string, reasoningEffort?: ReasoningEffort): boolean {
  return isReasoningModel(model) || (reasoningEffort !== undefined && reasoningEffort !== 'none')
}

/**
 * The judge's `ChatOpenAI` models, each built on first use (a judge that never samples never
 * builds them): one token at temperature 0 with `top_logprobs`; N answers at once (`n`); one
 * answer. The output budget goes as `max_tokens`, or as `max_completion_tokens` for a model that
 * thinks — by its name or by its reasoning effort; `reasoning_effort` goes as is, for any model
 * (LangChain would drop it for names it does not know, such as a reasoning model behind a
 * gateway).
 */
function openAIChatModels(settings: OpenAIModelSettings) {
  const reasoning = thinks(settings.model, settings.reasoningEffort)
  const budget = (estimator: 'logprobs' | 'sampling', lines?: number) => {
    const tokens =
      lines !== undefined
        ? sentenceOutputTokens(lines, SENTENCE_LINE_TOKENS, settings.maxOutputTokens, reasoning)
        : (settings.maxOutputTokens ??
          (reasoning ? OUTPUT_TOKENS.reasoning : OUTPUT_TOKENS[estimator]))
    // `@langchain/openai` turns `maxTokens` into `max_completion_tokens` only for the names it
    // knows as reasoning models (the rule of `isReasoningModel`); an Azure deployment or a gateway
    // alias of one would get `max_tokens`, which OpenAI's reasoning models refuse. For those the
    // budget is sent as a model argument, and `maxTokens: -1` (documented: no limit of its own)
    // leaves `max_tokens` out of the request.
    return reasoning && !isReasoningModel(settings.model)
      ? { maxTokens: -1, modelKwargs: { max_completion_tokens: tokens } }
      : { maxTokens: tokens }
  }
  const build = ({
    modelKwargs,
    ...fields
  }: ConstructorParameters<typeof ChatOpenAI>[0] & object) =>
    new ChatOpenAI({
      model: settings.model,
      // OpenAI-compatible servers that need no key still need a non-empty one in the client.
      apiKey: settings.apiKey || 'no-key',
      streaming: false,
      useResponsesApi: false, // logprobs are only read from chat completions
      maxRetries: 0, // the judge retries itself, within its time budget
      configuration: {
        ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
        ...(settings.fetch ? { fetch: settings.fetch } : {}),
        ...(settings.headers ? { defaultHeaders: settings.headers } : {}),
      },
      modelKwargs: {
        ...modelKwargs,
        ...(settings.reasoningEffort ? { reasoning_effort: settings.reasoningEffort } : {}),
      },
      ...fields,
    })
  const sampling = (lines?: number) => ({
    temperature: settings.samplingTemperature,
    ...budget('sampling', lines),
  })
  // One model per output budget: the answer-level one, and one per sentence count asked (at most
  // `maxSentences` of them), each built on first use.
  return {
    logprobs: perLines((lines) =>
      build({
        temperature: 0,
        ...budget('logprobs', lines),
        logprobs: true,
        topLogprobs: settings.topLogprobs,
      }),
    ),
    all: perLines((lines) => build({ ...sampling(lines), n: settings.samples })),
    one: perLines((lines) => build(sampling(lines))),
  }
}

/** `make(lines)`, built once for each `lines` (undefined: the answer-level budget). */
function perLines<T>(make: (lines?: number) => T): (lines?: number) => T {
  const made = new Map<number | undefined, T>()
  return (lines) => {
    let model = made.get(lines)
    if (model === undefined) made.set(lines, (model = make(lines)))
    return model
  }
}

/** The judge's `ChatOpenAI` models, as the judge asks them. */
export function openAIModels(settings: OpenAIModelSettings): JudgeModels {
  const { logprobs, all, one } = openAIChatModels(settings)
  return {
    logprobs,
    sampling: (prompt, lines) => ({
      many: (call) => askAll(all(lines), prompt, call),
      one: (call) => askAll(one(lines), prompt, call),
    }),
  }
}

/**
 * What the judge's `ChatOpenAI` models send for a prompt, as data: their invocation parameters
 * (the same for every prompt: read once), `stream: false`, and the messages as LangChain
 * converts them — the body of its chat-completions call.
 */
export function openAIRequestBodies(settings: OpenAIModelSettings): JudgeRequestBodies {
  const { logprobs, all } = openAIChatModels(settings)
  const body = (parameters: () => object, prompt: JudgePromptMessages) => ({
    ...parameters(),
    stream: false,
    messages: convertMessagesToCompletionsMessageParams({
      messages: prompt.map((message) => coerceMessageLikeToMessage(message)),
      model: settings.model,
    }),
  })
  const logprobsParameters = perLines((lines) => logprobs(lines).invocationParams({}))
  const samplingParameters = perLines((lines) => all(lines).invocationParams({}))
  return {
    logprobs: (prompt, lines) => body(() => logprobsParameters(lines), prompt),
    sampling: (prompt, lines) => body(() => samplingParameters(lines), prompt),
  }
}

/**
 * A chat model passed in, as it was built: its own temperature, output budget and `n` (a
 * `ChatOpenAI` built with `n` answers N samples in one request; other models answer one each).
 */
export function givenModels(chatModel: JudgeChatModel): JudgeModels {
  const ask = (prompt: JudgePromptMessages) => (call: ChatCall) => askAll(chatModel, prompt, call)
  return {
    logprobs: () => chatModel,
    sampling: (prompt) => ({ many: ask(prompt), one: ask(prompt) }),
  }
}
