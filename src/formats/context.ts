import { isRecord } from '../json'

/**
 * Retrieved context as it appears in RAG payloads: one string, an array of strings, or an array
 * of documents — LangChain's (`pageContent` in JS, `page_content` in Python) or citations with
 * `content` (Azure OpenAI "On Your Data") — mixed freely.
 */
export type ContextReading =
  | { ok: true; documents: string[] }
  | { ok: false; reason: 'no-context' | 'invalid-context'; message: string }

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

/** Normalizes context to a list of non-empty document texts. `where` names the source for messages. */
export function readContext(value: unknown, where: string): ContextReading {
  if (value === undefined)
    return { ok: false, reason: 'no-context', message: `no context at ${where}` }
  const items = Array.isArray(value) ? value : [value]
  const documents: string[] = []
  for (const [index, item] of items.entries()) {
    const text = documentText(item)
    if (text === undefined) {
      const position = Array.isArray(value) ? `${where}/${index}` : where
      return {
        ok: false,
        reason: 'invalid-context',
        message: `context at ${position} is ${describe(item)}; expected a string, an array of strings, or documents with pageContent, page_content or content`,
      }
    }
    if (text.trim() !== '') documents.push(text)
  }
  if (documents.length === 0)
    return { ok: false, reason: 'no-context', message: `the context at ${where} is empty` }
  return { ok: true, documents }
}

export type QuestionReading =
  | { ok: true; question: string }
  | { ok: false; reason: 'no-question' | 'invalid-question'; message: string }

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
