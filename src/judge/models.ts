/**
 * The chat models a judge asks: for logprobs, one answer of one token at temperature 0 with
 * `top_logprobs`; for sampling, N short answers at a temperature above 0, all in one request
 * (`n`) or one per request. Built from settings as `ChatOpenAI` (chat completions), or a chat
 * model passed in, used as it was built.
 */
import { ChatOpenAI } from '@langchain/openai'
import { askAll, type ChatCall, type JudgeChatModel, type JudgePromptMessages } from './chat'
import type { SampleSource } from './estimators/sampling'
import { isReasoningModel, OUTPUT_TOKENS, type ReasoningEffort } from './options'

export interface JudgeModels {
  /** The model the logprobs estimator asks (`invoke`). */
  logprobs(): JudgeChatModel
  /** Where the sampling estimator's answers come from. */
  sampling(prompt: JudgePromptMessages): SampleSource
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
 * `ChatOpenAI` models, built on first use (a judge that never samples never builds them).
 * The output budget goes as `max_tokens`, or as `max_completion_tokens` for a model that thinks
 * — by its name or by its reasoning effort; `reasoning_effort` goes as is, for any model
 * (LangChain would drop it for names it does not know, such as a reasoning model behind a
 * gateway).
 */
export function openAIModels(settings: OpenAIModelSettings): JudgeModels {
  const reasoning = thinks(settings.model, settings.reasoningEffort)
  const budget = (estimator: 'logprobs' | 'sampling') => {
    const tokens =
      settings.maxOutputTokens ?? (reasoning ? OUTPUT_TOKENS.reasoning : OUTPUT_TOKENS[estimator])
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
  const once = <T>(make: () => T) => {
    let made: T | undefined
    return () => (made ??= make())
  }
  const logprobs = once(() =>
    build({
      temperature: 0,
      ...budget('logprobs'),
      logprobs: true,
      topLogprobs: settings.topLogprobs,
    }),
  )
  const sampling = { temperature: settings.samplingTemperature, ...budget('sampling') }
  const all = once(() => build({ ...sampling, n: settings.samples }))
  const one = once(() => build(sampling))
  return {
    logprobs,
    sampling: (prompt) => ({
      many: (call) => askAll(all(), prompt, call),
      one: (call) => askAll(one(), prompt, call),
    }),
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
