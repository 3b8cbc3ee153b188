/**
 * The review page's reads and writes of the decision store, as SQL with bound parameters. The
 * list is newest first and paginated by key on (time, id): a page is one index range, however
 * deep, and the filters each have an index that keeps that order (migrations/0001_decisions.sql).
 */
import type { Verdict } from '../guard/policy'
import { isCheck, type Check } from './checks'

export const PAGE_SIZE = 50
const VERDICTS = ['pass', 'flag', 'block'] as const
const DAY_MS = 86_400_000

export interface ListFilters {
  verdict?: Verdict
  route?: string
  /** The check that decided; `none` for decisions no check made (a refused request). */
  check?: Check | 'none'
  /** From the start of this day (UTC), in milliseconds. */
  from?: number
  /** Up to the end of this day (UTC), exclusive, in milliseconds. */
  to?: number
  minScore?: number
  maxScore?: number
  labeled?: 'yes' | 'no'
}

/** A position in the list: the (time, id) of a row. */
export interface Cursor {
  time: number
  id: string
}

export interface ListRequest {
  filters: ListFilters
  /** Rows older than this (the next page), or newer (the previous one). */
  before?: Cursor
  after?: Cursor
}

const DATE = /^\d{4}-\d{2}-\d{2}$/

function day(value: string | undefined): number | undefined {
  if (!value || !DATE.test(value)) return undefined
  const time = Date.parse(`${value}T00:00:00Z`)
  return Number.isNaN(time) ? undefined : time
}

function score(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const number = Number(value)
  return Number.isFinite(number) && number >= 0 && number <= 1 ? number : undefined
}

export function parseCursor(value: string | undefined): Cursor | undefined {
  const match = value && /^(\d{1,16})-([0-9a-f]{32})$/.exec(value)
  return match ? { time: Number(match[1]), id: match[2]! } : undefined
}

export const cursorText = (cursor: Cursor) => `${cursor.time}-${cursor.id}`

/** The list request in a query string; values that are not valid are left out. */
export function parseListQuery(query: Record<string, string | undefined>): ListRequest {
  const filters: ListFilters = {}
  if ((VERDICTS as readonly string[]).includes(query.verdict ?? '')) {
    filters.verdict = query.verdict as Verdict
  }
  if (query.route && query.route.startsWith('/') && query.route.length <= 500) {
    filters.route = query.route
  }
  if (isCheck(query.check) || query.check === 'none') filters.check = query.check
  const from = day(query.from)
  const to = day(query.to)
  if (from !== undefined) filters.from = from
  if (to !== undefined) filters.to = to + DAY_MS
  const minScore = score(query.min)
  const maxScore = score(query.max)
  if (minScore !== undefined) filters.minScore = minScore
  if (maxScore !== undefined) filters.maxScore = maxScore
  if (query.labeled === 'yes' || query.labeled === 'no') filters.labeled = query.labeled
  const before = parseCursor(query.before)
  const after = before ? undefined : parseCursor(query.after)
  return { filters, ...(before ? { before } : {}), ...(after ? { after } : {}) }
}

/** The filters as a query string (for links that keep them), without the page position. */
export function filterQuery(filters: ListFilters): URLSearchParams {
  const query = new URLSearchParams()
  const date = (time: number) => new Date(time).toISOString().slice(0, 10)
  if (filters.verdict) query.set('verdict', filters.verdict)
  if (filters.route) query.set('route', filters.route)
  if (filters.check) query.set('check', filters.check)
  if (filters.from !== undefined) query.set('from', date(filters.from))
  if (filters.to !== undefined) query.set('to', date(filters.to - DAY_MS))
  if (filters.minScore !== undefined) query.set('min', String(filters.minScore))
  if (filters.maxScore !== undefined) query.set('max', String(filters.maxScore))
  if (filters.labeled) query.set('labeled', filters.labeled)
  return query
}

/** The columns a list row shows. */
export interface ListRow {
  id: string
  time: number
  route: string
  mode: string
  verdict: Verdict
  check_name: string | null
  score: number | null
  sufficiency_score: number | null
  groundedness_score: number | null
  reason: string | null
  content: string
  /** The question's first characters, when content is stored. */
  question: string | null
  sufficient: number | null
  grounded: number | null
}

/**
 * One page of the list: at most `limit` rows (the caller asks for one more than it shows, to know
 * whether there is a next page). Rows come newest first, also for a page before a cursor.
 */
export function listStatement(
  request: ListRequest,
  limit: number,
): { sql: string; params: unknown[] } {
  const { filters } = request
  const where: string[] = []
  const params: unknown[] = []
  const add = (condition: string, ...values: unknown[]) => {
    where.push(condition)
    params.push(...values)
  }
  if (filters.verdict) add('d.verdict = ?', filters.verdict)
  if (filters.route) add('d.route = ?', filters.route)
  if (filters.check === 'none') add('d.check_name IS NULL')
  else if (filters.check) add('d.check_name = ?', filters.check)
  if (filters.from !== undefined) add('d.time >= ?', filters.from)
  if (filters.to !== undefined) add('d.time < ?', filters.to)
  if (filters.minScore !== undefined) add('d.score >= ?', filters.minScore)
  if (filters.maxScore !== undefined) add('d.score <= ?', filters.maxScore)
  if (filters.labeled === 'yes') add('r.decision_id IS NOT NULL')
  if (filters.labeled === 'no') add('r.decision_id IS NULL')
  if (request.before) add('(d.time, d.id) < (?, ?)', request.before.time, request.before.id)
  if (request.after) add('(d.time, d.id) > (?, ?)', request.after.time, request.after.id)
  // A page after a cursor (the newer one) is read oldest first from the cursor, then reversed.
  const order = request.after ? 'ASC' : 'DESC'
  const sql = `SELECT d.id, d.time, d.route, d.mode, d.verdict, d.check_name, d.score,
      d.sufficiency_score, d.groundedness_score, d.reason, d.content,
      substr(d.question, 1, 100) AS question, r.sufficient, r.grounded
    FROM decisions d LEFT JOIN reviews r ON r.decision_id = d.id
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY d.time ${order}, d.id ${order} LIMIT ?`
  return { sql, params: [...params, limit] }
}

/** One page of the list, newest first, and the cursors of the pages around it. */
export async function listDecisions(
  db: D1Database,
  request: ListRequest,
  pageSize = PAGE_SIZE,
): Promise<{ rows: ListRow[]; older?: Cursor; newer?: Cursor }> {
  const { sql, params } = listStatement(request, pageSize + 1)
  const { results } = await db
    .prepare(sql)
    .bind(...params)
    .all<ListRow>()
  const more = results.length > pageSize
  let rows = results.slice(0, pageSize)
  if (request.after) rows = rows.reverse()
  const first = rows[0]
  const last = rows[rows.length - 1]
  // Older rows exist past the last one when this page was cut short, or when it was read
  // towards newer rows from a cursor (the cursor's own row, at least, is older).
  const hasOlder = request.after ? true : more
  const hasNewer = request.after ? more : request.before !== undefined
  return {
    rows,
    ...(hasOlder && last ? { older: { time: last.time, id: last.id } } : {}),
    ...(hasNewer && first ? { newer: { time: first.time, id: first.id } } : {}),
  }
}

/**
 * The routes that have decisions, for the filter: one index seek per route (a skip scan), so it
 * costs as many reads as there are routes, not rows.
 */
export async function listRoutes(db: D1Database, max = 100): Promise<string[]> {
  const { results } = await db
    .prepare(
      `WITH RECURSIVE routes(route, n) AS (
        SELECT MIN(route), 1 FROM decisions
        UNION ALL
        SELECT (SELECT MIN(route) FROM decisions WHERE route > routes.route), n + 1
          FROM routes WHERE routes.route IS NOT NULL AND n < ?
      )
      SELECT route FROM routes WHERE route IS NOT NULL`,
    )
    .bind(max)
    .all<{ route: string }>()
  return results.map((row) => row.route)
}

/** A decision with its labels, as the detail view shows it. */
export interface DecisionDetail extends Omit<ListRow, 'question'> {
  request_id: string
  sample_rate: number
  question_hash: string | null
  context_hash: string | null
  question: string | null
  documents: string | null
  answer: string | null
  record: string
  note: string | null
  reviewer: string | null
  reviewed_at: number | null
}

export async function getDecision(db: D1Database, id: string): Promise<DecisionDetail | null> {
  return db
    .prepare(
      `SELECT d.*, r.sufficient, r.grounded, r.note, r.reviewer, r.reviewed_at
        FROM decisions d LEFT JOIN reviews r ON r.decision_id = d.id WHERE d.id = ?`,
    )
    .bind(id)
    .first<DecisionDetail>()
}

/** A change of labels: a check's label set (true, false), cleared (null), or left as it is (undefined). */
export interface LabelChange {
  sufficient?: boolean | null
  grounded?: boolean | null
  /** The note, when the form sent one ('' clears it). */
  note?: string
}

const dbLabel = (value: boolean | null | undefined) =>
  value === undefined || value === null ? null : value ? 1 : 0

/** Saves an operator's labels of one decision; what the change leaves out stays as it was. */
export async function saveLabels(
  db: D1Database,
  id: string,
  change: LabelChange,
  reviewer: string,
  now: number,
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO reviews (decision_id, sufficient, grounded, note, reviewer, reviewed_at)
        VALUES (?1, ?2, ?4, ?6, ?8, ?9)
        ON CONFLICT (decision_id) DO UPDATE SET
          sufficient = CASE WHEN ?3 THEN excluded.sufficient ELSE reviews.sufficient END,
          grounded = CASE WHEN ?5 THEN excluded.grounded ELSE reviews.grounded END,
          note = CASE WHEN ?7 THEN excluded.note ELSE reviews.note END,
          reviewer = excluded.reviewer,
          reviewed_at = excluded.reviewed_at`,
    )
    .bind(
      id,
      dbLabel(change.sufficient),
      change.sufficient !== undefined ? 1 : 0,
      dbLabel(change.grounded),
      change.grounded !== undefined ? 1 : 0,
      change.note ? change.note : null,
      change.note !== undefined ? 1 : 0,
      reviewer,
      now,
    )
    .run()
}

/** One labeled decision, as the export reads it. */
export interface LabeledRow {
  decision_id: string
  sufficient: number | null
  grounded: number | null
  note: string | null
  reviewer: string
  reviewed_at: number
  record: string
}

/**
 * A page of labeled decisions in the order they were labeled, after `after` (by key on
 * (reviewed_at, decision_id)). Only decisions with a label of `check` (any label without one).
 */
export async function labeledPage(
  db: D1Database,
  check: Check | undefined,
  after: { time: number; id: string } | undefined,
  limit: number,
): Promise<LabeledRow[]> {
  const where = [
    check === 'sufficiency'
      ? 'r.sufficient IS NOT NULL'
      : check === 'groundedness'
        ? 'r.grounded IS NOT NULL'
        : '(r.sufficient IS NOT NULL OR r.grounded IS NOT NULL)',
  ]
  const params: unknown[] = []
  if (after) {
    where.push('(r.reviewed_at, r.decision_id) > (?, ?)')
    params.push(after.time, after.id)
  }
  const { results } = await db
    .prepare(
      `SELECT r.decision_id, r.sufficient, r.grounded, r.note, r.reviewer, r.reviewed_at, d.record
        FROM reviews r JOIN decisions d ON d.id = r.decision_id
        WHERE ${where.join(' AND ')}
        ORDER BY r.reviewed_at, r.decision_id LIMIT ?`,
    )
    .bind(...params, limit)
    .all<LabeledRow>()
  return results
}
