import type { ConversationTurn } from '../judge/prompt'
import { isRecord } from '../json'

/**
 * Retrieved context as it appears in RAG payloads: one string, an array of strings, or an array
 * of documents — LangChain's (`pageContent` in JS, `page_content` in Python) or citations with
 * `content` (Azure OpenAI "On Your Data") — mixed freely.
 */
export type ContextReading =
  /** The documents; none when nothing was retrieved. `truncated`: there were more than the limit. */
  | { ok: true; documents: string[]; truncated?: boolean }
  | { ok: false; reason: 'invalid-context'; message: string }

/** Bounds on what a reader builds from a request or an answer, whatever it holds. */
export interface ReadLimits {
  /** The most documents kept; the rest are not read. */
  documents: number
  /** The most earlier turns of a conversation kept with its question. */
  turns: number
}

export const UNLIMITED: ReadLimits = Object.freeze({ documents: Infinity, turns: Infinity })

/** Keys that hold a document's text: LangChain JS, LangChain Python, OpenAI/Azure citations. */
const TEXT_KEYS = ['pageContent', 'page_content', 'content'] as const

function documentText(item: unknown): string | undefined {
  if (typeof item === 'string') return item
  if (isRecord(item)) {
    for (const key of TEXT_KEYS) {
      const text = item[key]
      if (typeof text === 'string') return text
    }
  }
  return undefined
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object'
    ? 'an object without pageContent, page_content or content'
    : `a ${typeof value}`
}

/**
 * Normalizes context to a list of non-empty document texts, at most `maxDocuments` of them.
 * Nothing there (undefined, null, an empty list, only empty documents) is no documents, not an
 * error: nothing was retrieved. `where` names the source for messages.
 */
export function readContext(
  value: unknown,
  where: string,
  maxDocuments = Infinity,
): ContextReading {
  if (value === undefined || value === null) return { ok: true, documents: [] }
  const items = Array.isArray(value) ? value : [value]
  const documents: string[] = []
  for (let index = 0; index < items.length; index++) {
    const item: unknown = items[index]
    const text = documentText(item)
    if (text === undefined) {
      const position = Array.isArray(value) ? `${where}/${index}` : where
      return {
        ok: false,
        reason: 'invalid-context',
        message: `context at ${position} is ${describe(item)}; expected a string, an array of strings, or documents with pageContent, page_content or content`,
      }
    }
    if (text.trim() === '') continue
    if (documents.length === maxDocuments) return { ok: true, documents, truncated: true }
    documents.push(text)
  }
  return { ok: true, documents }
}

export type QuestionReading =
  /** The question, and the earlier turns of its conversation when the format has them. */
  | { ok: true; question: string; history?: ConversationTurn[] }
  | {
      ok: false
      reason: 'no-question' | 'invalid-question' | 'ambiguous-question'
      message: string
    }

export function readQuestion(value: unknown, where: string): QuestionReading {
  if (value === undefined || value === null)
    return { ok: false, reason: 'no-question', message: `no question at ${where}` }
  if (typeof value !== 'string') {
    return {
      ok: false,
      reason: 'invalid-question',
      message: `the question at ${where} is ${describe(value)}; expected a string`,
    }
  }
  if (value.trim() === '')
    return { ok: false, reason: 'no-question', message: `the question at ${where} is empty` }
  return { ok: true, question: value }
}

/** A request's stream flag: absent, null or false is no stream; anything but a boolean is invalid. */
export function streamFlag(value: unknown): boolean | 'invalid' {
  if (value === undefined || value === null) return false
  return typeof value === 'boolean' ? value : 'invalid'
}
