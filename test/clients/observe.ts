/**
 * Real client libraries, run unmodified against a base URL, and what each of them shows its
 * caller: the text, the finish reason, the chunks, the usage and the errors. The probe
 * (probe-annotation.ts) and the client tests (*.test.ts) compare these observations between an
 * endpoint alone and the same endpoint behind the guard.
 *
 * Every observation is plain JSON (class instances turned into their JSON form), so two of them
 * compare with a deep equality.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createOpenAI } from '@ai-sdk/openai'
import { ChatOpenAI } from '@langchain/openai'
import {
  generateText,
  parseJsonEventStream,
  readUIMessageStream,
  streamText,
  uiMessageChunkSchema,
  type UIMessage,
  type UIMessageChunk,
} from 'ai'
import { RemoteRunnable } from 'langchain-core-03/runnables/remote'
import OpenAI from 'openai'
import { API_KEY } from './rig'

export const MODEL = 'rag-model'
const AUTHORIZATION = { authorization: `Bearer ${API_KEY}` }

export interface ChatCase {
  /** The system message: the retrieved documents, where the openai-chat route reads its context. */
  system: string
  question: string
  /** Ask for `stream_options.include_usage` (the openai client only; the others decide themselves). */
  includeUsage?: boolean
}

/** JSON form of a value (class instances become what they serialise to); undefined stays out. */
export const plain = <T>(value: T): T =>
  value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T)

export const errorText = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error)

const messages = (chat: ChatCase) => [
  { role: 'system' as const, content: chat.system },
  { role: 'user' as const, content: chat.question },
]

function openaiClient(baseURL: string, fetchImpl?: typeof fetch) {
  return new OpenAI({
    apiKey: API_KEY,
    baseURL,
    maxRetries: 0,
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  })
}

export interface OpenAIStreamObservation {
  chunks: unknown[]
  content: string
  finishReason: string | null
  usage: unknown
  /** The `x-rag-guard-*` headers of the response (`.withResponse()`). */
  headers: Record<string, string>
  error?: string
}

/** `openai`: `chat.completions.create({ stream: true })`, iterated chunk by chunk. */
export async function openaiCreateStream(
  baseURL: string,
  chat: ChatCase,
  fetchImpl?: typeof fetch,
): Promise<OpenAIStreamObservation & { response?: Response }> {
  const observed: OpenAIStreamObservation & { response?: Response } = {
    chunks: [],
    content: '',
    finishReason: null,
    usage: null,
    headers: {},
  }
  try {
    const { data: stream, response } = await openaiClient(baseURL, fetchImpl)
      .chat.completions.create({
        model: MODEL,
        messages: messages(chat),
        stream: true,
        ...(chat.includeUsage ? { stream_options: { include_usage: true } } : {}),
      })
      .withResponse()
    observed.headers = guardHeaders(response.headers)
    if (fetchImpl) Object.defineProperty(observed, 'response', { value: response })
    for await (const chunk of stream) {
      observed.chunks.push(plain(chunk))
      // Written as a careful client would: a usage chunk has no choices.
      observed.content += chunk.choices[0]?.delta?.content ?? ''
      observed.finishReason = chunk.choices[0]?.finish_reason ?? observed.finishReason
      if (chunk.usage) observed.usage = plain(chunk.usage)
    }
  } catch (error) {
    observed.error = errorText(error)
  }
  return observed
}

export interface OpenAIHelperObservation {
  chunks: unknown[]
  content: string
  final: unknown
  error?: string
}

/** `openai`: the `chat.completions.stream()` helper (ChatCompletionStream) and its final completion. */
export async function openaiHelperStream(
  baseURL: string,
  chat: ChatCase,
): Promise<OpenAIHelperObservation> {
  const observed: OpenAIHelperObservation = { chunks: [], content: '', final: null }
  try {
    const stream = openaiClient(baseURL).chat.completions.stream({
      model: MODEL,
      messages: messages(chat),
      ...(chat.includeUsage ? { stream_options: { include_usage: true } } : {}),
    })
    stream.on('content', (delta) => (observed.content += delta))
    for await (const chunk of stream) observed.chunks.push(plain(chunk))
    observed.final = plain(await stream.finalChatCompletion())
  } catch (error) {
    observed.error = errorText(error)
  }
  return observed
}

export interface OpenAICompletionObservation {
  completion: unknown
  headers: Record<string, string>
  error?: string
}

/** `openai`: `chat.completions.create()` without streaming, with the response's headers. */
export async function openaiCreate(
  baseURL: string,
  chat: ChatCase,
): Promise<OpenAICompletionObservation> {
  try {
    const { data, response } = await openaiClient(baseURL)
      .chat.completions.create({ model: MODEL, messages: messages(chat) })
      .withResponse()
    return { completion: plain(data), headers: guardHeaders(response.headers) }
  } catch (error) {
    return { completion: null, headers: {}, error: errorText(error) }
  }
}

/** The `x-rag-guard-*` headers of a response. */
export function guardHeaders(headers: Headers): Record<string, string> {
  const found: Record<string, string> = {}
  headers.forEach((value, name) => {
    if (name.startsWith('x-rag-guard-')) found[name] = value
  })
  return found
}

function chatOpenAI(baseURL: string) {
  return new ChatOpenAI({
    model: MODEL,
    apiKey: API_KEY,
    maxRetries: 0,
    configuration: { baseURL },
  })
}

const messageChunk = (message: {
  content: unknown
  response_metadata?: unknown
  usage_metadata?: unknown
}) =>
  plain({
    content: message.content,
    response_metadata: message.response_metadata,
    usage_metadata: message.usage_metadata,
  })

export interface LangChainStreamObservation {
  chunks: unknown[]
  content: string
  error?: string
}

/** `@langchain/openai`: `ChatOpenAI.stream()` (it asks for the usage chunk itself). */
export async function chatOpenAIStream(
  baseURL: string,
  chat: ChatCase,
): Promise<LangChainStreamObservation> {
  const observed: LangChainStreamObservation = { chunks: [], content: '' }
  try {
    for await (const chunk of await chatOpenAI(baseURL).stream(messages(chat))) {
      observed.chunks.push(messageChunk(chunk))
      observed.content += typeof chunk.content === 'string' ? chunk.content : ''
    }
  } catch (error) {
    observed.error = errorText(error)
  }
  return observed
}

/** `@langchain/openai`: `ChatOpenAI.invoke()`. */
export async function chatOpenAIInvoke(
  baseURL: string,
  chat: ChatCase,
): Promise<{ message: unknown; error?: string }> {
  try {
    return { message: messageChunk(await chatOpenAI(baseURL).invoke(messages(chat))) }
  } catch (error) {
    return { message: null, error: errorText(error) }
  }
}

const aiModel = (baseURL: string) => createOpenAI({ baseURL, apiKey: API_KEY }).chat(MODEL)
/** AI SDK 7 takes the system message as `instructions` (it refuses one inside `messages`). */
const aiPrompt = (chat: ChatCase) => ({ instructions: chat.system, prompt: chat.question })

export interface AIStreamObservation {
  /** The fullStream's parts: their type, and the text of text deltas. */
  parts: string[]
  text: string | null
  finishReason: string | null
  usage: unknown
  errors: string[]
}

/** AI SDK: `streamText` with `createOpenAI({ baseURL }).chat(model)` (it asks for the usage chunk itself). */
export async function aiStreamText(baseURL: string, chat: ChatCase): Promise<AIStreamObservation> {
  const observed: AIStreamObservation = {
    parts: [],
    text: null,
    finishReason: null,
    usage: null,
    errors: [],
  }
  try {
    const result = streamText({
      model: aiModel(baseURL),
      ...aiPrompt(chat),
      maxRetries: 0,
      onError: ({ error }) => void observed.errors.push(errorText(error)),
    })
    for await (const part of result.fullStream) {
      observed.parts.push(part.type === 'text-delta' ? `text-delta:${part.text}` : part.type)
    }
    observed.text = await result.text
    observed.finishReason = await result.finishReason
    observed.usage = plain(await result.usage)
  } catch (error) {
    observed.errors.push(errorText(error))
  }
  return observed
}

type Parsed<T> = { success: true; value: T } | { success: false; error: unknown }

export interface AIUIObservation {
  /** The UI message stream's chunks, as `useChat` receives them: their type (and delta / error text). */
  chunks: string[]
  /** The last state of the assistant message that `readUIMessageStream` built. */
  message: unknown
  errors: string[]
}

const uiChunk = (chunk: UIMessageChunk): string =>
  chunk.type === 'text-delta'
    ? `text-delta:${chunk.delta}`
    : chunk.type === 'error'
      ? `error:${chunk.errorText}`
      : chunk.type

/** Drops the generated ids of a UI message, which differ from call to call. */
const withoutIds = (message: UIMessage | undefined) =>
  message && plain({ role: message.role, parts: message.parts })

/**
 * AI SDK: `streamText(...).toUIMessageStreamResponse()` read back with the SDK's own parser
 * (`parseJsonEventStream` with `uiMessageChunkSchema`, what `useChat`'s transport does) and
 * `readUIMessageStream`.
 */
export async function aiUIMessageStream(baseURL: string, chat: ChatCase): Promise<AIUIObservation> {
  const observed: AIUIObservation = { chunks: [], message: null, errors: [] }
  try {
    const result = streamText({
      model: aiModel(baseURL),
      ...aiPrompt(chat),
      maxRetries: 0,
      onError: () => {},
    })
    const response = result.toUIMessageStreamResponse()
    const parsed = parseJsonEventStream({
      stream: response.body!,
      schema: uiMessageChunkSchema,
    }) as ReadableStream<Parsed<UIMessageChunk>>
    const chunks = parsed.pipeThrough(
      new TransformStream<Parsed<UIMessageChunk>, UIMessageChunk>({
        transform(result, controller) {
          // What useChat's transport does: a chunk that does not parse is an error.
          if (!result.success) throw result.error
          observed.chunks.push(uiChunk(result.value))
          controller.enqueue(result.value)
        },
      }),
    )
    let last: UIMessage | undefined
    for await (const message of readUIMessageStream({
      stream: chunks,
      onError: (error) => observed.errors.push(errorText(error)),
    }))
      last = message
    observed.message = withoutIds(last) ?? null
  } catch (error) {
    observed.errors.push(errorText(error))
  }
  return observed
}

/** AI SDK: `generateText`. */
export async function aiGenerateText(
  baseURL: string,
  chat: ChatCase,
): Promise<{ text: string | null; finishReason: string | null; usage: unknown; error?: string }> {
  try {
    const result = await generateText({
      model: aiModel(baseURL),
      ...aiPrompt(chat),
      maxRetries: 0,
    })
    return { text: result.text, finishReason: result.finishReason, usage: plain(result.usage) }
  } catch (error) {
    return { text: null, finishReason: null, usage: null, error: errorText(error) }
  }
}

export interface RemoteStreamObservation {
  chunks: unknown[]
  error?: string
}

/** LangServe's JS client (`RemoteRunnable` of @langchain/core 0.3): `.stream()`. */
export async function remoteStream(url: string, input: unknown): Promise<RemoteStreamObservation> {
  const observed: RemoteStreamObservation = { chunks: [] }
  try {
    const remote = new RemoteRunnable({ url, options: { headers: AUTHORIZATION } })
    for await (const chunk of await remote.stream(input)) observed.chunks.push(plain(chunk))
  } catch (error) {
    observed.error = errorText(error)
  }
  return observed
}

/** LangServe's JS client: `.invoke()`. */
export async function remoteInvoke(
  url: string,
  input: unknown,
): Promise<{ output: unknown; error?: string }> {
  try {
    return {
      output: plain(
        await new RemoteRunnable({ url, options: { headers: AUTHORIZATION } }).invoke(input),
      ),
    }
  } catch (error) {
    return { output: null, error: errorText(error) }
  }
}

/**
 * curl, as a person runs it: `curl -sN -X POST url -H 'content-type: application/json' -d body`
 * (no Accept-Encoding, no decoding). Returns the bytes it printed, as latin1 so that any byte
 * survives, and the response headers (`-D`), lower-cased.
 */
export function curl(
  url: string,
  body: unknown,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rag-guard-curl-'))
  const headerFile = join(dir, 'headers')
  return new Promise((resolve, reject) => {
    const child = spawn(
      'curl',
      [
        '-sN',
        '-D',
        headerFile,
        '-X',
        'POST',
        url,
        '-H',
        'content-type: application/json',
        '-H',
        `authorization: Bearer ${API_KEY}`,
        '--data-binary',
        JSON.stringify(body),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      let head: string[]
      try {
        if (code !== 0)
          throw new Error(`curl exited ${code ?? signal}: ${Buffer.concat(err).toString()}`)
        head = readFileSync(headerFile, 'latin1').split(/\r?\n/)
      } catch (error) {
        return reject(error)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
      const status = Number(head[0]?.split(' ')[1])
      const headers: Record<string, string> = {}
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':')
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ status, headers, body: Buffer.concat(out).toString('latin1') })
    })
  })
}
