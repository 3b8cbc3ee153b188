/**
 * The judge's side of a LangChain chat model: one request, read as the answers it carries (one,
 * or `n` of them), with their text, logprobs and finish reason, the model that answered and the
 * tokens it took. Only public LangChain APIs: `invoke`, and `generate` for every generation.
 */
import type { Callbacks } from '@langchain/core/callbacks/manager'
import type { BaseLanguageModelInput } from '@langchain/core/language_models/base'
import type { BaseMessageLike } from '@langchain/core/messages'
import { isRecord } from '../json'
import type { TokenUsage } from './result'

type UsageMetadata = { input_tokens?: number; output_tokens?: number; total_tokens?: number }

/** The message a chat model answers with (LangChain's `AIMessage` has these). */
interface ChatMessage {
  content?: unknown
  response_metadata?: Record<string, unknown>
  usage_metadata?: UsageMetadata
}

/**
 * How one judge request is made: its cancellation, and, inside a caller's LangChain run, the
 * callbacks, name and tags that make it a child run of that run.
 */
export interface ChatCall {
  signal: AbortSignal
  callbacks?: Callbacks
  runName?: string
  tags?: string[]
}

type CallOptions = Partial<ChatCall> & { maxRetries?: number }

/** What the judge needs of a LangChain chat model (`BaseChatModel` has it). */
export interface JudgeChatModel {
  invoke(input: BaseLanguageModelInput, options?: CallOptions): Promise<ChatMessage>
  /**
   * Every answer of one request (`n` of them, when the model was built with `n`). Sampling uses
   * it when it is there, else `invoke`; `BaseChatModel` has it.
   */
  generate?(
    messages: BaseMessageLike[][],
    options?: CallOptions,
  ): Promise<{
    generations: Array<Array<{ text?: string; message?: unknown; generationInfo?: unknown }>>
  }>
}

/** One answer of a chat request. */
export interface ChatAnswer {
  text: string
  /** `choices[i].logprobs` (LangChain's `response_metadata.logprobs`), when the model sent them. */
  logprobs?: unknown
  /** `stop`, or `length` when the output budget ran out (a reasoning model that thought too long). */
  finishReason?: string
}

/** The answers of one chat request, the model that gave them and what they cost. */
export interface ChatReply {
  answers: ChatAnswer[]
  model?: string
  usage?: TokenUsage
}

export type JudgePromptMessages = Array<[string, string]>

function readUsage(metadata: UsageMetadata | undefined): TokenUsage | undefined {
  if (!metadata) return undefined
  const inputTokens = metadata.input_tokens ?? 0
  const outputTokens = metadata.output_tokens ?? 0
  return {
    inputTokens,
    outputTokens,
    totalTokens: metadata.total_tokens ?? inputTokens + outputTokens,
  }
}

/** Usage of several requests together; undefined when none reported any. */
export function addUsage(total: TokenUsage | undefined, more: TokenUsage | undefined) {
  if (!total || !more) return total ?? more
  return {
    inputTokens: total.inputTokens + more.inputTokens,
    outputTokens: total.outputTokens + more.outputTokens,
    totalTokens: total.totalTokens + more.totalTokens,
  }
}

/** A message's text: a string, or the text parts of a list of content blocks. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  return content
    .map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : ''))
    .join('')
}

function answerOf(message: ChatMessage, text?: string, info: unknown = {}): ChatAnswer {
  const metadata = message.response_metadata ?? {}
  const generation = isRecord(info) ? info : {}
  const finishReason = generation.finish_reason ?? metadata.finish_reason
  return {
    text: text ?? textOf(message.content),
    logprobs: generation.logprobs ?? metadata.logprobs,
    ...(typeof finishReason === 'string' ? { finishReason } : {}),
  }
}

function modelOf(message: ChatMessage | undefined): string | undefined {
  const name = message?.response_metadata?.model_name
  return typeof name === 'string' ? name : undefined
}

/** One request through `invoke`: its one answer (the first choice). */
export async function askOne(
  chatModel: JudgeChatModel,
  prompt: JudgePromptMessages,
  call: ChatCall,
): Promise<ChatReply> {
  const message = await chatModel.invoke(prompt, { ...call, maxRetries: 0 })
  return {
    answers: [answerOf(message)],
    model: modelOf(message),
    usage: readUsage(message.usage_metadata),
  }
}

/**
 * One request through `generate`, when the model has it: every answer it carries (LangChain's
 * `invoke` keeps only the first of `n`). Usage is the request's, which LangChain puts on each
 * generation's message alike.
 */
export async function askAll(
  chatModel: JudgeChatModel,
  prompt: JudgePromptMessages,
  call: ChatCall,
): Promise<ChatReply> {
  if (!chatModel.generate) return askOne(chatModel, prompt, call)
  const result = await chatModel.generate([prompt], { ...call, maxRetries: 0 })
  const generations = result.generations[0] ?? []
  // A body that is no chat completion (text, JSON without choices) leaves nothing to read.
  if (generations.length === 0) throw new TypeError('the answer held no choices')
  const messages = generations.map(
    (generation) => (isRecord(generation.message) ? generation.message : {}) as ChatMessage,
  )
  return {
    answers: generations.map((generation, index) =>
      answerOf(messages[index]!, generation.text, generation.generationInfo),
    ),
    model: modelOf(messages[0]),
    usage: readUsage(messages[0]?.usage_metadata),
  }
}

/**
 * A chat completion's body (`choices`, `model`, `usage`), read as the judge reads the message
 * LangChain makes of it: each choice's text (`message.content`, '' when null), its logprobs and
 * finish reason, the model that answered and the request's tokens. For replies that came another
 * way than through LangChain (the Batch API's output file), so they are scored by the same
 * estimators as the online judge's. Throws a TypeError, as a reply without choices does online.
 */
export function replyFromCompletion(completion: unknown): ChatReply {
  const body = isRecord(completion) ? completion : {}
  const choices = Array.isArray(body.choices) ? body.choices.filter(isRecord) : []
  if (choices.length === 0) throw new TypeError('the answer held no choices')
  const usage = isRecord(body.usage) ? body.usage : {}
  const count = (value: unknown) => (typeof value === 'number' && value ? value : undefined)
  return {
    answers: choices.map((choice) => {
      const message = isRecord(choice.message) ? choice.message : {}
      return {
        text: textOf(message.content),
        logprobs: choice.logprobs ?? undefined,
        ...(typeof choice.finish_reason === 'string' && choice.finish_reason
          ? { finishReason: choice.finish_reason }
          : {}),
      }
    }),
    model: typeof body.model === 'string' ? body.model : undefined,
    usage: readUsage({
      input_tokens: count(usage.prompt_tokens),
      output_tokens: count(usage.completion_tokens),
      total_tokens: count(usage.total_tokens),
    }),
  }
}
