import { readContext, readQuestion, type QuestionReading } from './context'
import {
  parseJsonPointer,
  readJsonPointer,
  replaceAtJsonPointer,
  type JsonPointer,
} from './json-pointer'
import { isRecord } from '../json'
import { eventJson, formatSSE } from './sse'
import type { RouteFormat } from './types'

export interface LangServeFormatOptions {
  /** JSON Pointer to the question in the request body. @default the input, or its `input`, `question` or `query` */
  question?: string
  /** JSON Pointer to the documents in the response body. @default '/output/context' (or '/context' without the LangServe envelope) */
  context?: string
  /** JSON Pointer to the answer in the response body. @default '/output/answer', '/output' when it is a string, or '/answer' */
  answer?: string
}

const QUESTION_KEYS = ['input', 'question', 'query'] as const
const STREAM_PATH = /\/(?:stream|stream_log|stream_events)$/

/**
 * The question of a LangServe `/invoke` request (`{ input }`, input a string or an object with
 * `input`, `question` or `query`) or of a retrieval chain called directly (`{ input: '…' }`).
 */
function defaultQuestion(body: unknown): QuestionReading {
  const input = isRecord(body) ? body.input : undefined
  // A string, nothing, or anything but an object: read as the question itself (and refused if not text).
  if (!isRecord(input)) return readQuestion(input, 'request /input')
  const key = QUESTION_KEYS.find((name) => input[name] !== undefined)
  return key
    ? readQuestion(input[key], `request /input/${key}`)
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

  return {
    name: 'langserve',
    contextIn: 'response',
    readRequest: (body) => ({
      question: question
        ? readQuestion(readJsonPointer(body, question), `request ${question.source}`)
        : defaultQuestion(body),
    }),
    readResponse(body) {
      const where = context ?? pointer(`${chainOutput(body).base}/context`)
      return readContext(readJsonPointer(body, where), `response ${where.source}`)
    },
    isStreaming: (_body, path) => STREAM_PATH.test(path),
    stream: {
      // A LangServe stream sends the output in parts (`event: data`), each relative to the output.
      contextFromEvent(event) {
        if (event.event !== 'data') return undefined
        const value = readJsonPointer(eventJson(event), streamContext)
        return value === undefined
          ? undefined
          : readContext(value, `stream ${streamContext.source}`)
      },
      blockStream(seen, _request, fallback) {
        const metadata =
          seen.find((event) => event.event === 'metadata')?.data ??
          JSON.stringify({ run_id: crypto.randomUUID() })
        const parts = seen.filter((event) => event.event === 'data').map(eventJson)
        const answerPath = answer
          ? answer.tokens.slice(answer.tokens[0] === 'output' ? 1 : 0)
          : ['answer']
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
    blockBody(response, _request, fallback) {
      if (answer) return replaceAtJsonPointer(response, answer, fallback)
      const { output, base } = chainOutput(response)
      if (typeof output === 'string') return replaceAtJsonPointer(response, pointer(base), fallback)
      if (isRecord(output) && 'answer' in output)
        return replaceAtJsonPointer(response, pointer(`${base}/answer`), fallback)
      return undefined
    },
  }
}
