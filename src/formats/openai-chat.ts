import { readContext, readQuestion, type ContextReading, type QuestionReading } from './context'
import type { ContextLocation } from './json'
import { parseJsonPointer, readJsonPointer } from './json-pointer'
import { isNumber, isRecord, isString, member } from '../json'
import { eventJson, formatSSE } from './sse'
import type { RouteFormat } from './types'

export interface OpenAIChatFormatOptions {
  /**
   * Where the retrieved context is: `'system'` (the system and developer messages of the
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

/** Message content as text: a string, or the text parts of a content-part array. */
function messageText(content: unknown): string | undefined {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return undefined
  const texts = content.flatMap((part) =>
    isRecord(part) && part.type === 'text' && typeof part.text === 'string' ? [part.text] : [],
  )
  return texts.length > 0 ? texts.join('\n') : undefined
}

function messages(body: unknown): ChatMessage[] {
  const list = isRecord(body) ? body.messages : undefined
  return Array.isArray(list) ? list.filter(isRecord) : []
}

function lastUserQuestion(body: unknown): QuestionReading {
  const user = messages(body).findLast((message) => message.role === 'user')
  if (!user)
    return { ok: false, reason: 'no-question', message: 'no user message in request /messages' }
  const text = messageText(user.content)
  if (text === undefined && user.content != null) {
    return {
      ok: false,
      reason: 'invalid-question',
      message: 'the last user message has no text content',
    }
  }
  return readQuestion(text, 'the last user message')
}

function systemContext(body: unknown): ContextReading {
  const texts = messages(body)
    .filter((message) => message.role === 'system' || message.role === 'developer')
    .map((message) => messageText(message.content))
    .filter((text): text is string => text !== undefined)
  return readContext(texts, 'request system messages')
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
    readRequest(body) {
      const question = lastUserQuestion(body)
      if (contextIn === 'response') return { question }
      return {
        question,
        context: pointer
          ? readContext(readJsonPointer(body, pointer), `request ${pointer.source}`)
          : systemContext(body),
      }
    },
    readResponse: (body) =>
      readContext(
        pointer ? readJsonPointer(body, pointer) : undefined,
        `response ${pointer?.source}`,
      ),
    isStreaming: (body) =>
      member(body, 'stream', (value): value is boolean => value === true) === true,
    blockBody: fallbackCompletion,
    stream: {
      contextFromEvent(event) {
        if (!streamPointer) return undefined
        const value = readJsonPointer(eventJson(event), streamPointer)
        return value === undefined
          ? undefined
          : readContext(value, `stream ${streamPointer.source}`)
      },
      blockStream(seen, request, fallback) {
        const first = seen
          .map(eventJson)
          .find((chunk) => member(chunk, 'id', isString) !== undefined)
        const base = {
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
        return `${chunk({ role: 'assistant', content: fallback }, null)}${chunk({}, 'stop')}data: [DONE]\n\n`
      },
    },
  }
}
