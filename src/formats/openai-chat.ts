import type { ConversationTurn } from '../judge/prompt'
import {
  readContext,
  readQuestion,
  streamFlag,
  UNLIMITED,
  type ContextReading,
  type QuestionReading,
} from './context'
import type { ContextLocation } from './json'
import { parseJsonPointer, readJsonPointer } from './json-pointer'
import { isNumber, isRecord, isString, member } from '../json'
import { eventJson, formatSSE } from './sse'
import type { RouteFormat } from './types'

export interface OpenAIChatFormatOptions {
  /**
   * Where the retrieved context is: `'system'` (the system, developer and tool messages of the
   * request), a pointer into the request body, or `{ in: 'response', pointer }`, for example
   * `/choices/0/message/context/citations` (Azure OpenAI "On Your Data").
   * @default 'system'
   */
  context?: 'system' | ContextLocation
}

interface ChatMessage {
  role?: unknown
  content?: unknown
}

/** Roles whose messages carry retrieved context: instructions and tool (function) results. */
const CONTEXT_ROLES = new Set(['system', 'developer', 'tool', 'function'])

/**
 * Message content as text: a string, or the text parts of a content-part array. Undefined when
 * there is none, or when any part is not text (an image, audio or file part): the guard cannot
 * know what such a message says.
 */
function messageText(content: unknown): string | undefined {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return undefined
  const texts: string[] = []
  for (const part of content) {
    if (!isRecord(part) || part.type !== 'text' || typeof part.text !== 'string') return undefined
    texts.push(part.text)
  }
  return texts.length > 0 ? texts.join('\n') : undefined
}

function messages(body: unknown): ChatMessage[] {
  const list = isRecord(body) ? body.messages : undefined
  return Array.isArray(list) ? (list as unknown[]).filter(isRecord) : []
}

/** The last user message as the question, with up to `turns` earlier user and assistant turns. */
function lastUserQuestion(list: readonly ChatMessage[], turns: number): QuestionReading {
  const at = list.findLastIndex((message) => message.role === 'user')
  const user = list[at]
  if (!user)
    return { ok: false, reason: 'no-question', message: 'no user message in request /messages' }
  const text = messageText(user.content)
  if (text === undefined && user.content != null) {
    return {
      ok: false,
      reason: 'invalid-question',
      message: 'the last user message has content other than text',
    }
  }
  const reading = readQuestion(text, 'the last user message')
  if (!reading.ok || turns === 0) return reading
  const history: ConversationTurn[] = []
  for (let index = at - 1; index >= 0 && history.length < turns; index--) {
    const { role, content } = list[index]!
    if (role !== 'user' && role !== 'assistant') continue
    const said = messageText(content)
    if (said !== undefined && said.trim() !== '') history.unshift({ role, content: said })
  }
  return history.length > 0 ? { ...reading, history } : reading
}

/** `choices[0].message` (or `.delta` in a stream chunk) of a completion. */
function firstChoice(body: unknown, field: 'message' | 'delta'): ChatMessage | undefined {
  const choices = isRecord(body) ? body.choices : undefined
  const first: unknown = Array.isArray(choices) ? choices[0] : undefined
  const message = isRecord(first) ? first[field] : undefined
  return isRecord(message) ? message : undefined
}

/** The text of each choice's message, in order; undefined when the body has no choices. */
function choiceTexts(body: unknown): Array<string | undefined> | undefined {
  const choices = isRecord(body) ? body.choices : undefined
  if (!Array.isArray(choices)) return undefined
  return choices.map((choice: unknown) => {
    const message = isRecord(choice) ? choice.message : undefined
    return isRecord(message) ? messageText(message.content) : undefined
  })
}

/** The completion with the choices at `blocked` carrying `fallback`, each in its own place. */
function withChoicesReplaced(response: unknown, blocked: readonly number[], fallback: string) {
  const choices = isRecord(response) ? response.choices : undefined
  if (!isRecord(response) || !Array.isArray(choices)) return undefined
  const replaced = new Set(blocked)
  return {
    ...response,
    choices: choices.map((choice: unknown, at) =>
      replaced.has(at)
        ? {
            index: member(choice, 'index', isNumber) ?? at,
            message: { role: 'assistant', content: fallback, refusal: null },
            logprobs: null,
            finish_reason: 'stop',
          }
        : choice,
    ),
  }
}

/** The system, developer and tool messages, as documents. */
function messageContext(list: readonly ChatMessage[], maxDocuments: number): ContextReading {
  const texts: string[] = []
  for (const message of list) {
    if (typeof message.role !== 'string' || !CONTEXT_ROLES.has(message.role)) continue
    const text = messageText(message.content)
    if (text !== undefined) texts.push(text)
  }
  return readContext(texts, 'request system, developer and tool messages', maxDocuments)
}

/** A random completion id, in the `chatcmpl-` form clients expect. */
function completionId(): string {
  const bytes = new Uint8Array(12)
  crypto.getRandomValues(bytes)
  return `chatcmpl-ragguard${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`
}

/**
 * A `chat.completion` whose one message is the fallback text: valid for the official clients.
 * The upstream's id, model, creation time and usage are kept when it sent them.
 * @see https://platform.openai.com/docs/api-reference/chat/object
 */
export function fallbackCompletion(response: unknown, request: unknown, fallback: string) {
  const usage = member(response, 'usage', isRecord)
  return {
    id: member(response, 'id', isString) ?? completionId(),
    object: 'chat.completion',
    created: member(response, 'created', isNumber) ?? Math.floor(Date.now() / 1000),
    model: member(response, 'model', isString) ?? member(request, 'model', isString) ?? 'unknown',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: fallback, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    ...(usage ? { usage } : {}),
  }
}

/** `openai-chat`: an OpenAI-compatible chat completions RAG endpoint. */
export function openAIChatFormat(
  options: OpenAIChatFormatOptions = {},
  settingPrefix = '',
): RouteFormat {
  const location = options.context ?? 'system'
  const pointer =
    location === 'system'
      ? undefined
      : parseJsonPointer(
          typeof location === 'string' ? location : location.pointer,
          `${settingPrefix}context`,
        )
  const contextIn = typeof location === 'object' ? location.in : 'request'
  // In a stream, what a completion has in choices[].message comes in choices[].delta.
  const streamPointer =
    pointer && contextIn === 'response'
      ? parseJsonPointer(pointer.source.replace('/message/', '/delta/'), `${settingPrefix}context`)
      : undefined

  return {
    name: 'openai-chat',
    contextIn,
    readRequest(body, limits = UNLIMITED) {
      const list = messages(body)
      const question = lastUserQuestion(list, limits.turns)
      if (contextIn === 'response') return { question }
      return {
        question,
        context: pointer
          ? readContext(
              readJsonPointer(body, pointer),
              `request ${pointer.source}`,
              limits.documents,
            )
          : messageContext(list, limits.documents),
      }
    },
    readResponse: (body, limits = UNLIMITED) =>
      readContext(
        pointer ? readJsonPointer(body, pointer) : undefined,
        `response ${pointer?.source}`,
        limits.documents,
      ),
    isStreaming: (body) => streamFlag(isRecord(body) ? body.stream : undefined),
    readAnswer: (body) => messageText(firstChoice(body, 'message')?.content),
    readAnswers: choiceTexts,
    blockAnswers: withChoicesReplaced,
    blockBody: fallbackCompletion,
    // A block names the model asked for, and streams the usage chunk when it was asked for.
    requestForBlock: (body) =>
      isRecord(body) ? { model: body.model, stream_options: body.stream_options } : undefined,
    stream: {
      answerPiece(event) {
        const content = firstChoice(eventJson(event), 'delta')?.content
        return typeof content === 'string' ? content : undefined
      },
      contextFromEvent(event, limits = UNLIMITED) {
        if (!streamPointer) return undefined
        const value = readJsonPointer(eventJson(event), streamPointer)
        return value === undefined
          ? undefined
          : readContext(value, `stream ${streamPointer.source}`, limits.documents)
      },
      blockStream(seen, request, fallback) {
        const first = seen
          .map(eventJson)
          .find((chunk) => member(chunk, 'id', isString) !== undefined)
        // The upstream's own top-level fields (system_fingerprint, service_tier…) are kept.
        const { choices: _choices, usage: _usage, ...upstream } = isRecord(first) ? first : {}
        const base = {
          ...upstream,
          id: member(first, 'id', isString) ?? completionId(),
          object: 'chat.completion.chunk',
          created: member(first, 'created', isNumber) ?? Math.floor(Date.now() / 1000),
          model:
            member(first, 'model', isString) ?? member(request, 'model', isString) ?? 'unknown',
        }
        const chunk = (delta: object, finishReason: string | null) =>
          formatSSE({
            data: JSON.stringify({
              ...base,
              choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
            }),
          })
        // A client that asked for usage (`stream_options.include_usage`) counts on its chunk:
        // `choices: []` and the usage, after the last choice and before [DONE]. The tokens the
        // upstream reported, when it had; else none were delivered.
        const wantsUsage = member(
          member(request, 'stream_options', isRecord),
          'include_usage',
          (value): value is true => value === true,
        )
        const reported = seen
          .map(eventJson)
          .map((event) => member(event, 'usage', isRecord))
          .findLast((usage) => usage !== undefined)
        const usage = wantsUsage
          ? formatSSE({
              data: JSON.stringify({
                ...base,
                choices: [],
                usage: reported ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
              }),
            })
          : ''
        return `${chunk({ role: 'assistant', content: fallback }, null)}${chunk({}, 'stop')}${usage}data: [DONE]\n\n`
      },
    },
  }
}
