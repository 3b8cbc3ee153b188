/**
 * What a chain's input and output give the judge, and the output of a blocked chain: the
 * question from the input, the documents from the input or the output (or from a streamed
 * chunk), and the output with its answer replaced. Pure.
 */
import {
  readContext,
  readQuestion,
  type ContextReading,
  type QuestionReading,
} from '../formats/context'
import { readJsonPointer, replaceAtJsonPointer, type JsonPointer } from '../formats/json-pointer'
import { langServeFormat } from '../formats/langserve'
import type { ReadLimits } from '../formats/context'
import { isRecord } from '../json'
import type { RunnableSettings } from './options'

/**
 * Reads a chain input as LangServe reads `{ input }`: a string is the question, an object gives
 * its `input`, `question` or `query` (more than one of them is ambiguous, never guessed).
 */
const langServe = langServeFormat()

export function chainQuestion(settings: RunnableSettings, input: unknown): QuestionReading {
  const pointer = settings.question
  if (!pointer) return langServe.readRequest({ input }).question
  return readQuestion(readJsonPointer(input, pointer), `input ${pointer.source}`)
}

/** The documents at the context pointer of `value` (the input or the output); none when absent. */
export function chainContext(
  settings: RunnableSettings,
  value: unknown,
  limits: ReadLimits,
): ContextReading {
  const { in: side, pointer } = settings.context
  return readContext(readJsonPointer(value, pointer), `${side} ${pointer.source}`, limits.documents)
}

/** Whether a streamed chunk carries the documents (context in the output). */
export function chunkHasContext(settings: RunnableSettings, chunk: unknown): boolean {
  return readJsonPointer(chunk, settings.context.pointer) !== undefined
}

/** Where the answer is in an output like `sample`: the option, else the output itself or `/answer`. */
function answerPath(settings: RunnableSettings, sample: unknown): readonly string[] {
  if (settings.answer) return settings.answer.tokens
  return typeof sample === 'string' ? [] : ['answer']
}

const pointerOf = (tokens: readonly string[]): JsonPointer => ({
  source: tokens.map((token) => `/${token.replace(/~/g, '~0').replace(/\//g, '~1')}`).join(''),
  tokens,
})

/**
 * The answer's text in an output (or the piece of it a streamed chunk carries): the text at the
 * answer's place, or the text of a message there; undefined when there is none.
 */
export function answerText(settings: RunnableSettings, value: unknown): string | undefined {
  const found = readJsonPointer(value, pointerOf(answerPath(settings, value)))
  if (typeof found === 'string') return found
  if (isRecord(found) && typeof found.content === 'string') return found.content
  return undefined
}

/** The output with its answer replaced by `fallback`; undefined when it has no answer there. */
export function blockedOutput(
  settings: RunnableSettings,
  output: unknown,
  fallback: string,
): unknown {
  return replaceAtJsonPointer(output, pointerOf(answerPath(settings, output)), fallback)
}

/**
 * A blocked stream's chunks, shaped after those already seen: the parts that are not the answer
 * (the input, the documents), then the fallback where the answer goes. A stream of strings is
 * the fallback alone.
 */
export function blockedChunks(
  settings: RunnableSettings,
  seen: readonly unknown[],
  fallback: string,
): unknown[] {
  const path = answerPath(settings, seen[0])
  if (path.length === 0 || seen.some((chunk) => typeof chunk === 'string')) return [fallback]
  const kept = seen.filter((chunk) => isRecord(chunk) && !(path[0]! in chunk))
  return [...kept, path.reduceRight<unknown>((value, key) => ({ [key]: value }), fallback)]
}

/** Whether an output like `sample` is the answer's text itself (no room for a verdict in it). */
export function isTextOutput(settings: RunnableSettings, sample: unknown): boolean {
  return answerPath(settings, sample).length === 0 || typeof sample === 'string'
}

/** The output with the verdict under `key`, when it is an object; a string has no room for it. */
export function withVerdictAt(output: unknown, key: string, verdict: unknown): unknown {
  return isRecord(output) ? { ...output, [key]: verdict } : output
}
