import { readContext, readQuestion, UNLIMITED, type QuestionReading } from './context'
import {
  parseJsonPointer,
  readJsonPointer,
  replaceAtJsonPointer,
  type JsonPointer,
} from './json-pointer'
import { isRecord } from '../json'
import { eventJson, formatSSE } from './sse'
import type { Endpoint, RouteFormat } from './types'

export interface LangServeFormatOptions {
  /** JSON Pointer to the question in the request body. @default the input, or its `input`, `question` or `query` */
  question?: string
  /** JSON Pointer to the documents in the response body. @default '/output/context' (or '/context' without the LangServe envelope) */
  context?: string
  /** JSON Pointer to the answer in the response body. @default '/output/answer', '/output' when it is a string, or '/answer' */
  answer?: string
}

const QUESTION_KEYS = ['input', 'question', 'query'] as const

/**
 * The endpoints of a LangServe route (`add_routes`): `invoke` and `stream` answer one input,
 * `batch` several; `stream_log` and `stream_events` stream JSON patches and run events, which the
 * guard cannot hold or rebuild. A config hash (`/c/<hash>/invoke`) changes nothing here.
 */
function langServeEndpoint(path: string): Endpoint {
  if (/\/batch$/.test(path)) return 'batch'
  if (/\/(?:stream_log|stream_events)$/.test(path)) return 'unsupported'
  return 'single'
}

/**
 * The question of a LangServe `/invoke` request (`{ input }`, input a string or an object with
 * one of `input`, `question` or `query`) or of a retrieval chain called directly
 * (`{ input: '…' }`). An object with more than one of them is ambiguous: the guard cannot know
 * which one the chain answers, so it does not guess.
 */
function defaultQuestion(body: unknown): QuestionReading {
  const input = isRecord(body) ? body.input : undefined
  // A string, nothing, or anything but an object: read as the question itself (and refused if not text).
  if (!isRecord(input)) return readQuestion(input, 'request /input')
  const keys = QUESTION_KEYS.filter((name) => input[name] !== undefined)
  if (keys.length > 1) {
    return {
      ok: false,
      reason: 'ambiguous-question',
      message: `the input has ${keys.map((key) => `"${key}"`).join(' and ')}: set the route's question pointer to the one the chain answers`,
    }
  }
  return keys[0]
    ? readQuestion(input[keys[0]], `request /input/${keys[0]}`)
    : readQuestion(undefined, 'request /input')
}

/** The chain output: LangServe wraps it as `{ output, metadata }`; a chain called directly does not. */
function chainOutput(body: unknown): { output: unknown; base: string } {
  return isRecord(body) && 'output' in body
    ? { output: body.output, base: '/output' }
    : { output: body, base: '' }
}

/**
 * `langserve`: LangServe `/invoke` (`{ input }` → `{ output, metadata }`) and the LangChain
 * retrieval-chain output `{ input, context: Document[], answer }`, JS or Python documents.
 */
export function langServeFormat(
  options: LangServeFormatOptions = {},
  settingPrefix = '',
): RouteFormat {
  const question =
    options.question === undefined
      ? undefined
      : parseJsonPointer(options.question, `${settingPrefix}question`)
  const context =
    options.context === undefined
      ? undefined
      : parseJsonPointer(options.context, `${settingPrefix}context`)
  const answer =
    options.answer === undefined
      ? undefined
      : parseJsonPointer(options.answer, `${settingPrefix}answer`)
  const pointer = (source: string): JsonPointer =>
    parseJsonPointer(source, `${settingPrefix}pointer`)
  const streamContext = pointer(
    context ? context.source.replace(/^\/output(?=\/|$)/, '') : '/context',
  )

  const readQuestionOf = (body: unknown): QuestionReading =>
    question
      ? readQuestion(readJsonPointer(body, question), `request ${question.source}`)
      : defaultQuestion(body)
  const readContextOf = (body: unknown, limits = UNLIMITED) => {
    const where = context ?? pointer(`${chainOutput(body).base}/context`)
    return readContext(readJsonPointer(body, where), `response ${where.source}`, limits.documents)
  }
  /** The answer of a chain output: at the answer pointer, the output itself when a string, or its `answer`. */
  const readAnswerOf = (body: unknown): string | undefined => {
    if (answer) {
      const value = readJsonPointer(body, answer)
      return typeof value === 'string' ? value : undefined
    }
    const { output } = chainOutput(body)
    if (typeof output === 'string') return output
    return isRecord(output) && typeof output.answer === 'string' ? output.answer : undefined
  }
  const answerPath = answer
    ? answer.tokens.slice(answer.tokens[0] === 'output' ? 1 : 0)
    : ['answer']
  const blockBody = (response: unknown, fallback: string): unknown => {
    if (answer) return replaceAtJsonPointer(response, answer, fallback)
    const { output, base } = chainOutput(response)
    if (typeof output === 'string') return replaceAtJsonPointer(response, pointer(base), fallback)
    if (isRecord(output) && 'answer' in output)
      return replaceAtJsonPointer(response, pointer(`${base}/answer`), fallback)
    return undefined
  }

  return {
    name: 'langserve',
    contextIn: 'response',
    readRequest: (body) => ({ question: readQuestionOf(body) }),
    readResponse: readContextOf,
    readAnswer: readAnswerOf,
    isStreaming: (_body, path) => /\/stream$/.test(path),
    endpoint: langServeEndpoint,
    // `/batch`: `{ inputs: [...] }` → `{ output: [...], metadata }`; each input and output is read
    // as the `input` and `output` of an `/invoke`, with the same pointers.
    batch: {
      questions(body) {
        const inputs = isRecord(body) ? body.inputs : undefined
        return Array.isArray(inputs) ? inputs.map((input) => readQuestionOf({ input })) : undefined
      },
      contexts(body, limits) {
        const outputs = isRecord(body) ? body.output : undefined
        return Array.isArray(outputs)
          ? outputs.map((output) => readContextOf({ output }, limits))
          : undefined
      },
      answers(body) {
        const outputs = isRecord(body) ? body.output : undefined
        return Array.isArray(outputs)
          ? outputs.map((output) => readAnswerOf({ output }))
          : undefined
      },
      blockItems(response, blocked, fallback) {
        if (!isRecord(response) || !Array.isArray(response.output)) return undefined
        const output = [...(response.output as unknown[])]
        for (const index of blocked) {
          const replaced = blockBody({ output: output[index] }, fallback)
          output[index] = isRecord(replaced) && 'output' in replaced ? replaced.output : fallback
        }
        return { ...response, output }
      },
    },
    stream: {
      // A LangServe stream sends the output in parts (`event: data`), each relative to the output.
      // The answer streams as `data` parts: strings (a string output), or `{ answer: "…" }` pieces.
      answerPiece(event) {
        if (event.event !== 'data') return undefined
        const part = eventJson(event)
        if (typeof part === 'string') return part
        const value = readJsonPointer(part, { source: '', tokens: answerPath })
        return typeof value === 'string' ? value : undefined
      },
      contextFromEvent(event, limits = UNLIMITED) {
        if (event.event !== 'data') return undefined
        const value = readJsonPointer(eventJson(event), streamContext)
        return value === undefined
          ? undefined
          : readContext(value, `stream ${streamContext.source}`, limits.documents)
      },
      blockStream(seen, _request, fallback) {
        const metadata =
          seen.find((event) => event.event === 'metadata')?.data ??
          JSON.stringify({ run_id: crypto.randomUUID() })
        const parts = seen.filter((event) => event.event === 'data').map(eventJson)
        const stringOutput =
          answerPath.length === 0 || parts.some((part) => typeof part === 'string')
        // Keep what was already said that is not the answer (input, documents), then the fallback.
        const kept = stringOutput
          ? []
          : parts.filter((part) => isRecord(part) && !(answerPath[0]! in part))
        const fallbackPart = stringOutput
          ? fallback
          : answerPath.reduceRight<unknown>((value, key) => ({ [key]: value }), fallback)
        return [
          formatSSE({ event: 'metadata', data: metadata }),
          ...[...kept, fallbackPart].map((part) =>
            formatSSE({ event: 'data', data: JSON.stringify(part) }),
          ),
          'event: end\n\n',
        ].join('')
      },
    },
    blockBody: (response, _request, fallback) => blockBody(response, fallback),
  }
}
