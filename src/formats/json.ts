import { readContext, readQuestion, streamFlag, UNLIMITED } from './context'
import { parseJsonPointer, readJsonPointer, replaceAtJsonPointer } from './json-pointer'
import type { ContextSource, RouteFormat } from './types'

/** Where the context is: a request pointer (`'/context'`), or either side explicitly. */
export type ContextLocation = string | { in: ContextSource; pointer: string }

export interface JsonFormatOptions {
  /** JSON Pointer to the question in the request body. @default '/question' */
  question?: string
  /** The context: a pointer into the request body, or `{ in, pointer }`. @default '/context' */
  context?: ContextLocation
  /** JSON Pointer to the answer in the response body; on block it is replaced by the fallback. */
  answer?: string
  /** JSON Pointer to a boolean that asks for streaming. @default '/stream' */
  stream?: string
}

/** `json`: JSON Pointers (RFC 6901) into the request and response bodies. */
export function jsonFormat(options: JsonFormatOptions = {}, settingPrefix = ''): RouteFormat {
  const question = parseJsonPointer(options.question ?? '/question', `${settingPrefix}question`)
  const location = options.context ?? '/context'
  const contextIn: ContextSource = typeof location === 'string' ? 'request' : location.in
  const context = parseJsonPointer(
    typeof location === 'string' ? location : location.pointer,
    `${settingPrefix}context`,
  )
  const answer =
    options.answer === undefined
      ? undefined
      : parseJsonPointer(options.answer, `${settingPrefix}answer`)
  const stream = parseJsonPointer(options.stream ?? '/stream', `${settingPrefix}stream`)
  const where = (side: ContextSource) => `${side} ${context.source}`

  return {
    name: 'json',
    contextIn,
    readRequest(body, limits = UNLIMITED) {
      const reading = {
        question: readQuestion(readJsonPointer(body, question), `request ${question.source}`),
      }
      if (contextIn !== 'request') return reading
      const value = readJsonPointer(body, context)
      return { ...reading, context: readContext(value, where('request'), limits.documents) }
    },
    readResponse: (body, limits = UNLIMITED) =>
      readContext(readJsonPointer(body, context), where('response'), limits.documents),
    isStreaming: (body) => streamFlag(readJsonPointer(body, stream)),
    ...(answer
      ? {
          readAnswer: (body: unknown) => {
            const value = readJsonPointer(body, answer)
            return typeof value === 'string' ? value : undefined
          },
        }
      : {}),
    blockBody: (response, _request, fallback) =>
      answer ? replaceAtJsonPointer(response, answer, fallback) : undefined,
  }
}
