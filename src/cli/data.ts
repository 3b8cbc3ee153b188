/**
 * Labeled examples and score records, as JSON Lines. Node-only (the CLI); the parsing itself is
 * pure and takes text.
 */

/** One example to judge. */
export interface Example {
  id: string
  question: string
  context: string[]
  /** The truth, when the line is labeled. */
  sufficient?: boolean
}

/**
 * Accepted label spellings. `sufficient: true|false`, or `label` with one of these (any case).
 * Numbers 1 and 0 and booleans are accepted in both fields.
 */
export const LABEL_VALUES = {
  sufficient: ['sufficient', 'answerable', 'true', 'yes', '1'],
  insufficient: ['insufficient', 'unanswerable', 'false', 'no', '0'],
} as const

export function parseLabel(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined
  if (typeof value !== 'string') return undefined
  const word = value.trim().toLowerCase()
  if ((LABEL_VALUES.sufficient as readonly string[]).includes(word)) return true
  if ((LABEL_VALUES.insufficient as readonly string[]).includes(word)) return false
  return undefined
}

function contextOf(value: unknown): string[] | undefined {
  const items = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined
  if (!items) return undefined
  const texts: string[] = []
  for (const item of items) {
    if (typeof item === 'string') texts.push(item)
    else if (typeof item === 'object' && item !== null) {
      const text =
        (item as { pageContent?: unknown; page_content?: unknown; content?: unknown })
          .pageContent ??
        (item as { page_content?: unknown }).page_content ??
        (item as { content?: unknown }).content
      if (typeof text !== 'string') return undefined
      texts.push(text)
    } else return undefined
  }
  return texts
}

export class DataError extends Error {
  override readonly name = 'DataError'
}

/**
 * Parses a JSONL file of examples: `question` (string), `context` (a string, strings, or
 * documents), a label (`sufficient` or `label`; required unless `requireLabel` is false) and an
 * optional `id` (the line number otherwise). Every problem is reported, by line, at once.
 */
export function parseExamples(text: string, source: string, requireLabel = true): Example[] {
  const examples: Example[] = []
  const problems: string[] = []
  const ids = new Set<string>()
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return
    const where = `${source}:${index + 1}`
    let value: Record<string, unknown>
    try {
      const parsed: unknown = JSON.parse(line)
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object')
      value = parsed as Record<string, unknown>
    } catch {
      problems.push(`${where}: not a JSON object`)
      return
    }
    const id = value.id === undefined ? `line-${index + 1}` : String(value.id)
    if (ids.has(id)) problems.push(`${where}: id ${JSON.stringify(id)} appears twice`)
    ids.add(id)
    if (typeof value.question !== 'string' || value.question.trim() === '')
      problems.push(`${where}: "question" must be a non-empty string`)
    const context = contextOf(value.context)
    if (!context)
      problems.push(
        `${where}: "context" must be a string, an array of strings, or documents with pageContent / page_content / content`,
      )
    const labelField =
      value.sufficient !== undefined
        ? 'sufficient'
        : value.label !== undefined
          ? 'label'
          : undefined
    const sufficient = labelField ? parseLabel(value[labelField]) : undefined
    if (labelField && sufficient === undefined) {
      problems.push(
        `${where}: "${labelField}" is ${JSON.stringify(value[labelField])}; use true/false, or one of ${[...LABEL_VALUES.sufficient, ...LABEL_VALUES.insufficient].join(', ')}`,
      )
    } else if (!labelField && requireLabel) {
      problems.push(
        `${where}: no label; add "sufficient": true|false (or "label": "sufficient"|"insufficient")`,
      )
    }
    if (typeof value.question === 'string' && context)
      examples.push({
        id,
        question: value.question,
        context,
        ...(sufficient === undefined ? {} : { sufficient }),
      })
  })
  if (problems.length) {
    const shown = problems.slice(0, 20)
    throw new DataError(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${source}:\n  ${shown.join('\n  ')}${problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : ''}`,
    )
  }
  if (examples.length === 0) throw new DataError(`${source} holds no examples`)
  return examples
}

/** One line of `scores.jsonl`, as `rag-guard eval` writes it. */
export interface ScoreRecord {
  id: string
  sufficient?: boolean
  score: number | null
  pTrue?: number
  pFalse?: number
  mass?: number
  token?: string
  /** How the score was estimated (lines written before estimators existed are `logprobs`). */
  estimator?: 'logprobs' | 'sampling'
  /** Sampling: answers read, how many said True and False, and the requests they took. */
  samples?: number
  trueCount?: number
  falseCount?: number
  requests?: number
  reason?: string
  message?: string
  latencyMs: number
  inputTokens?: number
  outputTokens?: number
  model: string
  promptVersion: string
}
