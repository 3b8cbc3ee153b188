/**
 * Reading one check's score and label out of a decision record, the same way wherever records
 * are read: the decision store, the review page, the labels export and `rag-guard calibrate`.
 * Pure, and lenient: records come back from JSON (logs, exports) and may be of any shape.
 */
import { CHECKS, type Check } from '../judge/prompt'

export { CHECKS, type Check }

/** The field of a labels line (and of the export) that holds each check's label. */
export const LABEL_FIELD = { sufficiency: 'sufficient', groundedness: 'grounded' } as const

/** The words for a check's two labels: what the page's buttons and the CLI's report say. */
export const LABEL_WORDS = {
  sufficiency: { yes: 'sufficient', no: 'insufficient' },
  groundedness: { yes: 'grounded', no: 'hallucinated' },
} as const satisfies Record<Check, { yes: string; no: string }>

export const isCheck = (value: unknown): value is Check =>
  typeof value === 'string' && (CHECKS as readonly string[]).includes(value)

type Loose = Record<string, unknown>

/**
 * The check a record's top-level score is of: its `check`, else the check of its prompt version
 * (`groundedness-…`), else sufficiency (records from before there were several checks).
 */
export function recordCheck(value: object): Check {
  const record = value as Loose
  if (isCheck(record.check)) return record.check
  const version = record.promptVersion
  return typeof version === 'string' && version.startsWith('groundedness')
    ? 'groundedness'
    : 'sufficiency'
}

const finite = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined

/**
 * A check's score in a record: its own entry in `checks` (a route with several checks), else the
 * top-level score when that is the check's. Undefined when the check gave no score.
 */
export function checkScore(value: object, check: Check): number | undefined {
  const record = value as Loose
  const checks = record.checks
  if (typeof checks === 'object' && checks !== null && !Array.isArray(checks)) {
    const own = (checks as Loose)[check]
    if (own !== undefined) {
      return typeof own === 'object' && own !== null ? finite((own as Loose).score) : undefined
    }
  }
  return recordCheck(record) === check ? finite(record.score) : undefined
}
