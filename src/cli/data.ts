/**
 * Labeled examples and score records, as JSON Lines. Node-only (the CLI); the parsing itself is
 * pure and takes text.
 */
import { CHECKS, LABEL_FIELD, LABEL_WORDS, type Check } from '../review/checks'

/** One example to judge. */
export interface Example {
  id: string
  question: string
  context: string[]
  /** The answer to check, for the groundedness check. */
  answer?: string
  /** The truth of the sufficiency check, when the line has it. */
  sufficient?: boolean
  /** The truth of the groundedness check, when the line has it. */
  grounded?: boolean
}

/**
 * Accepted label spellings per check (any case), the first of each the review page's word
 * ({@link LABEL_WORDS}). Sufficiency: `sufficient` (or `label`); groundedness: `grounded`.
 * Booleans and the numbers 1 and 0 are accepted in every field.
 */
export const CHECK_LABEL_VALUES = {
  sufficiency: {
    yes: [LABEL_WORDS.sufficiency.yes, 'answerable', 'true', 'yes', '1'],
    no: [LABEL_WORDS.sufficiency.no, 'unanswerable', 'false', 'no', '0'],
  },
  groundedness: {
    yes: [LABEL_WORDS.groundedness.yes, 'supported', 'true', 'yes', '1'],
    no: [LABEL_WORDS.groundedness.no, 'ungrounded', 'unsupported', 'false', 'no', '0'],
  },
} as const satisfies Record<Check, { yes: readonly string[]; no: readonly string[] }>

/** The sufficiency spellings, by their earlier name. */
export const LABEL_VALUES = {
  sufficient: CHECK_LABEL_VALUES.sufficiency.yes,
  insufficient: CHECK_LABEL_VALUES.sufficiency.no,
} as const

/** A label of `check` (true: sufficient, grounded), or undefined when `value` is none of its spellings. */
export function parseLabel(value: unknown, check: Check = 'sufficiency'): boolean | undefined {
  if (typeof value === 'boolean') return value
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined
  if (typeof value !== 'string') return undefined
  const word = value.trim().toLowerCase()
  const words = CHECK_LABEL_VALUES[check]
  if ((words.yes as readonly string[]).includes(word)) return true
  if ((words.no as readonly string[]).includes(word)) return false
  return undefined
}

const spellings = (check: Check) =>
  [...CHECK_LABEL_VALUES[check].yes, ...CHECK_LABEL_VALUES[check].no].join(', ')

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

export interface ReadOptions {
  /** Every line must carry a label of some check. @default true */
  requireLabel?: boolean
  /**
   * The checks to run. Default: the checks the lines have labels for (sufficiency when none
   * has any). Groundedness needs an `answer` on every line.
   */
  checks?: readonly Check[]
}

export interface ReadExamples {
  examples: Example[]
  /** The checks to run, in the order of {@link CHECKS}. */
  checks: Check[]
  /** How many examples carry a label of each check. */
  labeled: Record<Check, number>
}

/**
 * Parses a JSONL file of examples: `question` (string), `context` (a string, strings, or
 * documents), an optional `answer` (string), labels — `sufficient` (or `label`) for sufficiency,
 * `grounded` for groundedness; at least one unless `requireLabel` is false — and an optional
 * `id` (the line number otherwise). Every problem is reported, by line, at once.
 */
export function readExamples(
  text: string,
  source: string,
  options: ReadOptions = {},
): ReadExamples {
  const requireLabel = options.requireLabel ?? true
  const examples: Example[] = []
  /** Each example's place, and whether it has an answer, for the checks decided at the end. */
  const places: Array<{ where: string; answered: boolean; reported: boolean }> = []
  const problems: string[] = []
  const ids = new Set<string>()
  const labeled: Record<Check, number> = { sufficiency: 0, groundedness: 0 }
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
    const answer = value.answer
    const answered = typeof answer === 'string' && answer.trim() !== ''
    if (answer !== undefined && answer !== null && !answered)
      problems.push(`${where}: "answer" must be a non-empty string`)

    const labelField =
      value[LABEL_FIELD.sufficiency] !== undefined
        ? LABEL_FIELD.sufficiency
        : value.label !== undefined
          ? 'label'
          : undefined
    const sufficient = labelField ? parseLabel(value[labelField], 'sufficiency') : undefined
    if (labelField && sufficient === undefined) {
      const groundednessWord =
        labelField === 'label' && parseLabel(value.label, 'groundedness') !== undefined
      problems.push(
        `${where}: "${labelField}" is ${JSON.stringify(value[labelField])}; use true/false, or one of ${spellings('sufficiency')}${groundednessWord ? ` (a groundedness label goes in "${LABEL_FIELD.groundedness}")` : ''}`,
      )
    }
    const groundedValue = value[LABEL_FIELD.groundedness]
    const grounded =
      groundedValue === undefined ? undefined : parseLabel(groundedValue, 'groundedness')
    if (groundedValue !== undefined && grounded === undefined)
      problems.push(
        `${where}: "${LABEL_FIELD.groundedness}" is ${JSON.stringify(groundedValue)}; use true/false, or one of ${spellings('groundedness')}`,
      )
    if (grounded !== undefined && !answered && (answer === undefined || answer === null))
      problems.push(`${where}: "${LABEL_FIELD.groundedness}" labels an answer: add the "answer"`)
    if (!labelField && groundedValue === undefined && requireLabel) {
      problems.push(
        `${where}: no label; add "sufficient": true|false (or "label": "sufficient"|"insufficient"), or "grounded": true|false with the "answer"`,
      )
    }
    if (sufficient !== undefined) labeled.sufficiency++
    if (grounded !== undefined) labeled.groundedness++
    if (typeof value.question === 'string' && context) {
      examples.push({
        id,
        question: value.question,
        context,
        ...(answered ? { answer: answer as string } : {}),
        ...(sufficient === undefined ? {} : { sufficient }),
        ...(grounded === undefined ? {} : { grounded }),
      })
      places.push({
        where,
        answered,
        reported: grounded !== undefined || (!answered && answer != null),
      })
    }
  })

  const checks = options.checks
    ? CHECKS.filter((check) => options.checks!.includes(check))
    : CHECKS.filter((check) => labeled[check] > 0)
  if (checks.length === 0) checks.push('sufficiency')
  if (checks.includes('groundedness')) {
    for (const { where, answered, reported } of places)
      if (!answered && !reported)
        problems.push(`${where}: no "answer", which the groundedness check judges`)
  }
  if (problems.length) {
    const shown = problems.slice(0, 20)
    throw new DataError(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${source}:\n  ${shown.join('\n  ')}${problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : ''}`,
    )
  }
  if (examples.length === 0) throw new DataError(`${source} holds no examples`)
  return { examples, checks, labeled }
}

/** {@link readExamples}, for the examples alone. */
export function parseExamples(text: string, source: string, requireLabel = true): Example[] {
  return readExamples(text, source, { requireLabel }).examples
}

/** One line of `scores.jsonl`, as `rag-guard eval` writes it. */
export interface ScoreRecord {
  id: string
  /** The check scored; absent: sufficiency (and in files written before there were two). */
  check?: Check
  sufficient?: boolean
  grounded?: boolean
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
  /** The Batch API batch the result came from (`eval --batch`). */
  batch?: string
  /** Groundedness asked per sentence (`--granularity sentence`): as judged, or `answer` past the limit. */
  granularity?: 'answer' | 'sentence'
  /** Each sentence's score (or reason), beside the answer-level (lowest) `score`. */
  sentences?: Array<{ sentence: number; score?: number; reason?: string }>
  /** Past the sentence limit: the answer's sentence count (it was judged whole). */
  sentenceCount?: number
}
