import type { Callbacks } from '@langchain/core/callbacks/manager'
import type { BaseLanguageModelInput } from '@langchain/core/language_models/base'
import { ContextOverflowError } from '@langchain/core/errors'
import { ChatOpenAI } from '@langchain/openai'
import { ConfigurationError } from '../errors'
import { isRecord } from '../json'
import { check, checkOptional } from '../settings'
import { JUDGE_SETTINGS } from './options'
import { buildPrompt, PROMPT_VERSIONS, type Check, type ConversationTurn } from './prompt'
import { scoreLogprobs, type LogprobScore, type ScoringFailureReason } from './scoring'

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
  /** True and False covered less of the first token's probability than `minMass`. */
  | 'low-answer-mass'
  /** The judge API refused the prompt as longer than the model's context window. */
  | 'judge-context-overflow'
  /** The question was empty. */
  | 'no-question'
  /** The groundedness check had no answer to judge. */
  | 'no-answer'
  /** There were no documents to judge. */
  | 'no-context'

export interface TokenUsage {
  inputTokens: number
  outputTokens: number
  totalTokens: number
}

interface JudgeResultBase {
  /** What was asked: whether the documents suffice, or whether the answer is grounded in them. */
  check: Check
  /** The model that answered (as the API reports it), or the configured one. */
  model: string
  promptVersion: string
  /** Wall time of the judge step, retries included. */
  latencyMs: number
  usage?: TokenUsage
}

export type JudgeScore = JudgeResultBase & Extract<LogprobScore, { ok: true }>

export interface JudgeNoScore extends JudgeResultBase {
  ok: false
  reason: JudgeFailureReason
  /** What went wrong, for logs. Never holds the API key or the judge API's own error text. */
  message: string
  /** HTTP status of the judge API, when it answered with an error. */
  status?: number
  /** The first token, when the model answered something other than True or False. */
  token?: string
  /** With `low-answer-mass`: how much of the first token's probability True and False covered. */
  mass?: number
}

export type JudgeResult = JudgeScore | JudgeNoScore

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
  /** Resolves to a score or a no-score outcome. Never rejects. */
  judge(input: JudgeInput, options?: JudgeCallOptions): Promise<JudgeResult>
}

/** What the judge needs of a LangChain chat model (`BaseChatModel` has it). */
export interface JudgeChatModel {
  invoke(
    input: BaseLanguageModelInput,
    options?: {
      signal?: AbortSignal
      maxRetries?: number
      callbacks?: Callbacks
      runName?: string
      tags?: string[]
    },
  ): Promise<{
    response_metadata?: Record<string, unknown>
    usage_metadata?: { input_tokens?: number; output_tokens?: number; total_tokens?: number }
  }>
}

export interface JudgeOptions {
  /**
   * Judge model name. It must return logprobs: reasoning models (o-series, most gpt-5) refuse them.
   * @default 'gpt-4o-mini'
   */
  model?: string
  /** API key for the judge. Optional when `baseURL` points at a server that needs none. */
  apiKey?: string
  /**
   * Base URL of any OpenAI-compatible chat completions API (Azure OpenAI, vLLM, llama.cpp,
   * Ollama, Cloudflare AI Gateway).
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
   * Time budget for the whole judge step, retries included.
   * @default 3000
   * @unit milliseconds
   */
  timeoutMs?: number
  /**
   * Retries after a failed judge call (5xx, 429, connection failure), within `timeoutMs`: the
   * waits are 100 ms, 200 ms, 400 ms… (or a 429's Retry-After), and a retry whose wait does not
   * fit in the budget is not made. A 4xx or a malformed answer is not retried.
   * @default 1
   */
  maxRetries?: number
  /**
   * An already-built LangChain chat model (`AzureChatOpenAI`, `ChatOpenAI` for another server).
   * It must be set up for `logprobs: true`, `topLogprobs`, `maxTokens: 1` and `temperature: 0`;
   * `model`, `apiKey`, `baseURL` and `topLogprobs` are then not used.
   */
  chatModel?: JudgeChatModel
  /**
   * The least share of the first token's probability that True and False together must cover
   * for a score to be read; below it (the model mostly answered something else, such as "Yes"),
   * there is no score (`low-answer-mass`).
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

/** Reads the logprobs settings of a ChatOpenAI-like model, where it has them, to fail early. */
function checkChatModel(chatModel: JudgeChatModel): void {
  const fields = chatModel as { logprobs?: unknown; topLogprobs?: unknown }
  if ('logprobs' in fields && fields.logprobs !== true) {
    throw new ConfigurationError(
      'RAG Guard judge: "chatModel" must be created with logprobs: true (and topLogprobs 5 to 20), or the judge can read no score',
      'chatModel',
    )
  }
}

const OWNER = 'RAG Guard judge'

/** The name of the judge's chat model call in LangChain tracing, when it runs inside a run. */
export const JUDGE_RUN_NAME = 'RagGuardJudge'

/**
 * The call options that make the judge call a named child run of the caller's run, if any. Its
 * one token is no part of an answer: LangGraph's `messages` stream mode leaves out runs tagged
 * `langsmith:nostream`, so an agent's streamed messages never show it.
 */
const traced = ({ callbacks }: JudgeCallOptions) =>
  callbacks ? { callbacks, runName: JUDGE_RUN_NAME, tags: ['langsmith:nostream'] } : {}

class JudgeTimeout extends Error {
  override readonly name = 'JudgeTimeout'
}

/** The first wait between attempts; it doubles with each retry. */
const RETRY_BASE_MS = 100

/** The `retry-after` header of a failed call (seconds, or an HTTP date), in milliseconds. */
function retryAfter(headers: unknown): number | undefined {
  const value = headers instanceof Headers ? headers.get('retry-after') : undefined
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/**
 * Whether a 400 says the prompt is longer than the model's window: OpenAI's error code
 * `context_length_exceeded`, or the wording vLLM, llama.cpp and Azure use (LangChain's
 * `ContextOverflowError` says so for ChatOpenAI; this covers other chat models). Only matched,
 * never copied into a message.
 */
function isContextOverflow(error: unknown): boolean {
  const fields = isRecord(error) ? error : {}
  if (fields.code === 'context_length_exceeded') return true
  const text = error instanceof Error ? error.message : ''
  return /context length|context window|maximum context|too many tokens|exceeds? the (?:model'?s? )?(?:maximum|max)/i.test(
    text,
  )
}

/** Maps a failed judge call to a reason code, without copying the API's error text. */
function classifyFailure(error: unknown): Pick<JudgeNoScore, 'reason' | 'message' | 'status'> & {
  retryable: boolean
  retryAfterMs?: number
} {
  const fields = (isRecord(error) ? error : {}) as {
    status?: unknown
    headers?: unknown
  }
  const name = error instanceof Error ? error.name : 'Error'
  const status = typeof fields.status === 'number' ? fields.status : undefined
  if (status === 429) {
    return {
      reason: 'judge-rate-limited',
      message: 'the judge API answered 429 (rate limited)',
      status,
      retryable: true,
      retryAfterMs: retryAfter(fields.headers),
    }
  }
  if (ContextOverflowError.isInstance(error) || (status === 400 && isContextOverflow(error))) {
    return {
      reason: 'judge-context-overflow',
      message: "the judge API refused the prompt as longer than the model's context window",
      ...(status !== undefined ? { status } : {}),
      retryable: false,
    }
  }
  if (status !== undefined && status >= 400) {
    // Server errors may pass on a second try; a 4xx will not.
    return {
      reason: 'judge-http-error',
      message: `the judge API answered ${status}`,
      status,
      retryable: status >= 500 || status === 408,
      retryAfterMs: retryAfter(fields.headers),
    }
  }
  // openai-node's APIError carries `status`, `headers` and `requestID`; without a status it is a
  // connection failure. Matched by shape: bundles can hold two copies of the class.
  if ('requestID' in fields && 'headers' in fields && status === undefined) {
    return {
      reason: 'judge-unreachable',
      message: 'the judge API could not be reached',
      retryable: true,
    }
  }
  // workerd reports a connection lost mid-answer (a reset, a body cut short) as a plain Error.
  if (
    /network connection lost|connection (?:reset|closed|lost)|premature eof|socket hang up|econnreset/i.test(
      error instanceof Error ? error.message : '',
    )
  ) {
    return {
      reason: 'judge-unreachable',
      message: 'the connection to the judge API was lost',
      retryable: true,
    }
  }
  if (error instanceof SyntaxError || error instanceof TypeError) {
    return {
      reason: 'judge-bad-response',
      message: `the judge API sent a body that is not a chat completion (${name})`,
      retryable: false,
    }
  }
  return { reason: 'judge-error', message: `the judge call failed (${name})`, retryable: false }
}

function readUsage(
  metadata: Awaited<ReturnType<JudgeChatModel['invoke']>>['usage_metadata'],
): TokenUsage | undefined {
  if (!metadata) return undefined
  const inputTokens = metadata.input_tokens ?? 0
  const outputTokens = metadata.output_tokens ?? 0
  return {
    inputTokens,
    outputTokens,
    totalTokens: metadata.total_tokens ?? inputTokens + outputTokens,
  }
}

const SCORING_MESSAGES: Record<ScoringFailureReason | 'low-answer-mass', string> = {
  'low-answer-mass': 'True and False covered too little of the judge’s answer to read a score',
  'no-logprobs': 'the judge response carried no logprobs (does the model or server return them?)',
  'no-content-tokens': 'the judge response had no content token',
  'unexpected-token': 'the judge answered neither True nor False',
}

/**
 * Creates the judge: one chat completion per call, one output token at temperature 0, with
 * `logprobs` and `top_logprobs`, scored as P(True). Each call asks one check: sufficiency (by
 * default) or groundedness (with `answer`).
 *
 * @example
 * ```ts
 * const judge = createJudge({ model: 'gpt-4o-mini', apiKey: env.OPENAI_API_KEY })
 * const result = await judge.judge({ question: 'Who wrote it?', context: ['…', '…'] })
 * if (result.ok) console.log(result.score)
 * else console.log(result.reason)
 * ```
 */
export function createJudge(options: JudgeOptions = {}): Judge {
  const setting = <K extends keyof typeof JUDGE_SETTINGS>(name: K) =>
    check<(typeof JUDGE_SETTINGS)[K]>(OWNER, name, JUDGE_SETTINGS[name], options[name])
  const model = setting('model')
  const topLogprobs = setting('topLogprobs')
  const timeoutMs = setting('timeoutMs')
  const maxRetries = setting('maxRetries')
  const minMass = setting('minMass')
  checkOptional(OWNER, 'apiKey', JUDGE_SETTINGS.apiKey, options.apiKey)
  checkOptional(OWNER, 'baseURL', JUDGE_SETTINGS.baseURL, options.baseURL)
  checkOptional(OWNER, 'headers', JUDGE_SETTINGS.headers, options.headers)
  checkOptional(OWNER, 'identity', JUDGE_SETTINGS.identity, options.identity)
  if (options.chatModel) checkChatModel(options.chatModel)
  else if (!options.apiKey && !options.baseURL) {
    throw new ConfigurationError(
      'RAG Guard judge: "apiKey" is required for the OpenAI API (or set "baseURL" to a server that needs no key, or pass "chatModel")',
      'apiKey',
    )
  }

  const chatModel: JudgeChatModel =
    options.chatModel ??
    new ChatOpenAI({
      model,
      // OpenAI-compatible servers that need no key still need a non-empty one in the client.
      apiKey: options.apiKey || 'no-key',
      temperature: 0,
      maxTokens: 1,
      logprobs: true,
      topLogprobs,
      streaming: false,
      useResponsesApi: false, // logprobs are only read from chat completions
      maxRetries: 0, // the judge retries itself, within its time budget
      configuration: {
        ...(options.baseURL ? { baseURL: options.baseURL } : {}),
        ...(options.fetch ? { fetch: options.fetch } : {}),
        ...(options.headers ? { defaultHeaders: options.headers } : {}),
      },
    })

  async function judge(
    input: JudgeInput,
    callOptions: JudgeCallOptions = {},
  ): Promise<JudgeResult> {
    const startedAt = Date.now()
    const check = callOptions.check ?? 'sufficiency'
    const base = () => ({
      check,
      model,
      promptVersion: PROMPT_VERSIONS[check],
      latencyMs: Date.now() - startedAt,
    })
    const documents = (typeof input.context === 'string' ? [input.context] : input.context).filter(
      (document) => document.trim() !== '',
    )
    if (input.question.trim() === '') {
      return { ok: false, reason: 'no-question', message: 'the question is empty', ...base() }
    }
    if (documents.length === 0) {
      return {
        ok: false,
        reason: 'no-context',
        message: 'there are no documents to judge',
        ...base(),
      }
    }
    if (check === 'groundedness' && (input.answer ?? '').trim() === '') {
      return { ok: false, reason: 'no-answer', message: 'there is no answer to check', ...base() }
    }

    const controller = new AbortController()
    const deadline = startedAt + timeoutMs
    const timer = setTimeout(() => controller.abort(new JudgeTimeout()), timeoutMs)
    const forwardAbort = () => controller.abort(callOptions.signal?.reason)
    if (callOptions.signal?.aborted) forwardAbort()
    callOptions.signal?.addEventListener('abort', forwardAbort, { once: true })
    // Every wait below races this, so the budget bounds the whole step whatever the client does.
    const aborted = new Promise<never>((_, reject) => {
      if (controller.signal.aborted) reject(controller.signal.reason)
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), {
        once: true,
      })
    })
    aborted.catch(() => {})
    const { messages } = buildPrompt(check, {
      question: input.question,
      documents,
      history: input.history,
      answer: input.answer,
    })
    const prompt = messages.map(({ role, content }): [string, string] => [role, content])

    try {
      for (let attempt = 0; ; attempt++) {
        let failure: ReturnType<typeof classifyFailure>
        try {
          const message = await Promise.race([
            chatModel.invoke(prompt, {
              signal: controller.signal,
              maxRetries: 0,
              ...traced(callOptions),
            }),
            aborted,
          ])
          const metadata = message.response_metadata ?? {}
          const answered = {
            ...base(),
            model: typeof metadata.model_name === 'string' ? metadata.model_name : model,
            usage: readUsage(message.usage_metadata),
          }
          const scored = scoreLogprobs(metadata.logprobs)
          if (scored.ok && scored.mass >= minMass) return { ...answered, ...scored }
          if (scored.ok) {
            return {
              ...answered,
              ok: false,
              reason: 'low-answer-mass',
              message: SCORING_MESSAGES['low-answer-mass'],
              token: scored.token,
              mass: scored.mass,
            }
          }
          return { ...answered, ...scored, message: SCORING_MESSAGES[scored.reason] }
        } catch (error) {
          if (controller.signal.aborted) throw error
          failure = classifyFailure(error)
        }
        // Retry what may pass on a second try, if the wait still fits in the budget; otherwise
        // report the failure itself rather than a timeout, so the real cause is seen.
        const wait =
          failure.retryAfterMs ?? RETRY_BASE_MS * 2 ** attempt * (0.8 + Math.random() * 0.4)
        const { retryable: _retryable, retryAfterMs: _retryAfter, ...reported } = failure
        if (!failure.retryable || attempt >= maxRetries || Date.now() + wait >= deadline) {
          return {
            ok: false,
            ...reported,
            ...(attempt > 0
              ? { message: `${reported.message} (after ${attempt + 1} attempts)` }
              : {}),
            ...base(),
          }
        }
        await Promise.race([new Promise((resolve) => setTimeout(resolve, wait)), aborted])
      }
    } catch {
      return controller.signal.reason instanceof JudgeTimeout
        ? {
            ok: false,
            reason: 'judge-timeout',
            message: `the judge did not answer within ${timeoutMs} ms`,
            ...base(),
          }
        : { ok: false, reason: 'judge-aborted', message: 'the judge call was cancelled', ...base() }
    } finally {
      clearTimeout(timer)
      callOptions.signal?.removeEventListener('abort', forwardAbort)
      controller.abort()
    }
  }

  const identity = JSON.stringify(
    options.chatModel
      ? ['chat-model', options.identity ?? describeChatModel(options.chatModel), minMass]
      : [options.baseURL ?? 'https://api.openai.com/v1', model, topLogprobs, minMass],
  )
  return {
    model,
    identity,
    promptVersion: PROMPT_VERSIONS.sufficiency,
    promptVersions: PROMPT_VERSIONS,
    judge,
  }
}
