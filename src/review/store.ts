/**
 * The decision store: the guard's decisions written to D1 (`GUARD_DB`) for the review page and
 * its labels export. It is a sink of `onDecision`, which the guard calls after the response has
 * gone out (`waitUntil`): a write is never on the response's path, and a write that fails is
 * counted and logged, never seen by the client.
 *
 * Writes stay bounded: flags and blocks are always stored, passes only at `passRate`; each text
 * is cut at {@link MAX_STORED_CHARS}; one isolate keeps at most {@link MAX_PENDING_WRITES} writes
 * waiting for D1 and drops (and counts) what comes past that.
 *
 * The content policy is explicit: the question, the documents and the answer are stored only
 * with `content` on (`STORE_CONTENT`); otherwise a row holds what the decision log holds without
 * content — scores, verdicts, sizes and SHA-256 hashes.
 *
 * No caller can fill the store with text: each caller's stored text is counted per hour in D1
 * (`content_usage`), and past `contentHourlyBytes` (`STORE_CONTENT_HOURLY_BYTES`) its decisions
 * are stored without their text (`content = 'capped'`), counted and logged. The rows themselves
 * stay bounded by the caller's rate (GUARD_RATE_LIMIT) and the pass rate.
 */
import type { DecisionContent, DecisionRecord } from '../guard/decision-log'
import { checkScore } from './checks'
import { REVIEW_SETTINGS } from './settings'

/** The most writes one isolate keeps waiting for D1; past it, decisions are dropped (counted). */
export const MAX_PENDING_WRITES = 64
/** The most characters stored of the question, of the answer, and of the documents (as JSON). */
export const MAX_STORED_CHARS = 262_144

/**
 * What the store uses of a Workers `D1Database` (typed by that, so that the package's types need
 * no Workers globals in a Node project; a D1 binding fits).
 */
export interface D1DatabaseLike {
  prepare(query: string): { bind(...values: unknown[]): D1BoundStatementLike }
  batch(statements: D1BoundStatementLike[]): Promise<unknown>
}

/** What the store uses of a bound D1 statement. */
export interface D1BoundStatementLike {
  run(): Promise<unknown>
  first(): Promise<unknown>
}

export interface DecisionStoreOptions {
  db: D1DatabaseLike
  /** The share of passes stored, 0 to 1. Flags and blocks are always stored. */
  passRate: number
  /** Store the question, the documents and the answer (else hashes and sizes only). */
  content: boolean
  /**
   * The most bytes of text (question, documents and answer, UTF-8) stored per caller per hour;
   * past it, the caller's decisions are stored without their text. @default 4194304
   */
  contentHourlyBytes?: number
  /** Draws the sample of passes. @default Math.random */
  random?: () => number
  /** Where failures are reported. @default console.error */
  log?: (line: string) => void
}

/**
 * What one isolate's store did: rows written, passes left out, writes failed or dropped, and
 * rows stored without their text because their caller had passed its hourly cap.
 */
export interface StoreCounts {
  stored: number
  sampledOut: number
  failed: number
  dropped: number
  capped: number
}

/** One row of the `decisions` table (migrations/0001_decisions.sql, beside this file). */
export interface DecisionRow {
  id: string
  time: number
  request_id: string
  route: string
  mode: string
  verdict: string
  check_name: string | null
  score: number | null
  sufficiency_score: number | null
  groundedness_score: number | null
  reason: string | null
  sample_rate: number
  question_hash: string | null
  context_hash: string | null
  /** `capped`: the caller had passed its hourly cap of stored text (STORE_CONTENT_HOURLY_BYTES). */
  content: 'stored' | 'not-stored' | 'purged' | 'capped'
  question: string | null
  documents: string | null
  answer: string | null
  record: string
}

const COLUMNS = [
  'id',
  'time',
  'request_id',
  'route',
  'mode',
  'verdict',
  'check_name',
  'score',
  'sufficiency_score',
  'groundedness_score',
  'reason',
  'sample_rate',
  'question_hash',
  'context_hash',
  'content',
  'question',
  'documents',
  'answer',
  'record',
] as const satisfies ReadonlyArray<keyof DecisionRow>

/**
 * Adds a row's bytes to its caller's count for the hour, unless that would pass the cap: a row is
 * returned when the bytes fit (and were counted), none when they do not. One statement, so two
 * isolates writing for the same caller cannot both take the last room.
 */
const RESERVE = `INSERT INTO content_usage (caller, hour, bytes) VALUES (?1, ?2, ?3)
  ON CONFLICT (caller, hour) DO UPDATE SET bytes = bytes + excluded.bytes
  WHERE bytes + excluded.bytes <= ?4
  RETURNING bytes`

const HOUR_MS = 3_600_000
const encoder = new TextEncoder()
/** The bytes of a row's text, as D1 stores it (UTF-8). */
const textBytes = (row: DecisionRow) =>
  [row.question, row.documents, row.answer].reduce(
    (total, text) => total + (text === null ? 0 : encoder.encode(text).byteLength),
    0,
  )

/**
 * Whether a count that went from `before` to `after` passed its first, or another hundred: what
 * is logged once for the first and then every hundredth, so that a flood is not a flood of logs.
 */
const passedHundred = (before: number, after: number) =>
  Math.floor((before + 99) / 100) < Math.floor((after + 99) / 100)

const INSERT = `INSERT INTO decisions (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`

const clip = (text: string) =>
  text.length > MAX_STORED_CHARS ? text.slice(0, MAX_STORED_CHARS) : text

/** The documents as a JSON array of at most MAX_STORED_CHARS characters: whole ones first, then a cut one. */
function storedDocuments(documents: readonly string[]): string {
  const kept: string[] = []
  let room = MAX_STORED_CHARS - 2
  for (const document of documents) {
    const cost = JSON.stringify(document).length + 1
    if (cost <= room) {
      kept.push(document)
      room -= cost
      continue
    }
    // The part of this document that fits (escapes can make the JSON longer than the text).
    if (room > 64) kept.push(document.slice(0, Math.floor((room - 3) / 2)))
    break
  }
  return JSON.stringify(kept)
}

/** A store id: 128 random bits as hex (lower case, as the guard's paths are matched). */
export function decisionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * The row for one decision. The record goes in whole, less the question and the documents that
 * `LOG_CONTENT` may have put in it; the question, the documents and the answer go in their own
 * columns, and only with `content` on.
 */
export function decisionRow(
  record: DecisionRecord,
  content: DecisionContent,
  options: { content: boolean; sampleRate: number; id: string },
): DecisionRow {
  const { question: _question, context: _context, ...rest } = record
  const stored = options.content
  return {
    id: options.id,
    time: Date.parse(record.time),
    request_id: record.requestId,
    route: record.route,
    mode: record.mode,
    verdict: record.verdict,
    check_name: record.check ?? null,
    score: record.score ?? null,
    sufficiency_score: checkScore(record, 'sufficiency') ?? null,
    groundedness_score: checkScore(record, 'groundedness') ?? null,
    reason: record.reason ?? null,
    sample_rate: options.sampleRate,
    question_hash: record.questionHash ?? null,
    context_hash: record.contextHash ?? null,
    content: stored ? 'stored' : 'not-stored',
    question: stored && content.question !== undefined ? clip(content.question) : null,
    documents:
      stored && content.documents !== undefined ? storedDocuments(content.documents) : null,
    answer: stored && content.answer !== undefined ? clip(content.answer) : null,
    record: JSON.stringify(rest),
  }
}

export interface DecisionStore {
  /**
   * The `onDecision` sink: stores the decision when it is kept (every flag and block, passes at
   * the pass rate); a batch's items each as a decision. Resolves when the writes are done;
   * never rejects.
   */
  record(record: DecisionRecord, content: DecisionContent): Promise<void>
  /** What this isolate's store did so far. */
  readonly counts: Readonly<StoreCounts>
}

/**
 * A decision store on a D1 database with the schema of `migrations/` (beside this file).
 *
 * @example
 * ```ts
 * const store = createDecisionStore({ db: env.GUARD_DB, passRate: 0.05, content: false })
 * app.post('/ask', ragGuard({ judge, onDecision: store.record }), handler)
 * ```
 */
export function createDecisionStore(options: DecisionStoreOptions): DecisionStore {
  const { db, passRate, content } = options
  const cap = options.contentHourlyBytes ?? REVIEW_SETTINGS.contentHourlyBytes.default!
  const random = options.random ?? Math.random
  const log = options.log ?? ((line: string) => console.error(line))
  const counts: StoreCounts = { stored: 0, sampledOut: 0, failed: 0, dropped: 0, capped: 0 }
  let pending = 0

  const report = (
    event: 'write-failed' | 'write-dropped' | 'content-capped',
    error?: unknown,
    caller?: string,
  ) =>
    log(
      JSON.stringify({
        message: 'rag-guard store',
        event,
        ...(caller === undefined ? {} : { caller }),
        ...counts,
        // The error names what failed (a missing table, a full database); it never holds the
        // row's values, which are bound parameters.
        ...(error === undefined ? {} : { error: String(error).slice(0, 300) }),
      }),
    )

  /**
   * Keeps the decision, or a batch's items each like a single request. One write whatever the
   * batch's size (a D1 batch), and one count of its text against the caller's cap: a batch's
   * items come from one request, and its text is stored whole or not at all.
   */
  async function record(decision: DecisionRecord, about: DecisionContent): Promise<void> {
    const decisions = about.items?.length ? about.items : [{ record: decision, content: about }]
    const kept = decisions.flatMap((item) => {
      const sampleRate = item.record.verdict === 'pass' ? passRate : 1
      if (sampleRate < 1 && !(random() < sampleRate)) {
        counts.sampledOut++
        return []
      }
      return [{ ...item, sampleRate }]
    })
    if (kept.length === 0) return
    if (pending >= MAX_PENDING_WRITES) {
      counts.dropped += kept.length
      if (passedHundred(counts.dropped - kept.length, counts.dropped)) report('write-dropped')
      return
    }
    pending++
    try {
      const rows = kept.map((item) =>
        decisionRow(item.record, item.content, {
          content,
          sampleRate: item.sampleRate,
          id: decisionId(),
        }),
      )
      const withText = rows.filter(
        (row) => row.question !== null || row.documents !== null || row.answer !== null,
      )
      if (!(await withinCap(withText, decision.caller ?? 'anonymous'))) {
        for (const row of withText) {
          row.question = row.documents = row.answer = null
          row.content = 'capped'
        }
        counts.capped += withText.length
        if (passedHundred(counts.capped - withText.length, counts.capped)) {
          report('content-capped', undefined, decision.caller)
        }
      }
      const inserts = rows.map((row) =>
        db.prepare(INSERT).bind(...COLUMNS.map((column) => row[column])),
      )
      await (inserts.length === 1 ? inserts[0]!.run() : db.batch(inserts))
      counts.stored += rows.length
    } catch (error) {
      counts.failed += kept.length
      report('write-failed', error)
    } finally {
      pending--
    }
  }

  /** Whether the rows' text fits in its caller's room for the hour (then it is counted there). */
  async function withinCap(rows: DecisionRow[], caller: string): Promise<boolean> {
    if (rows.length === 0) return true
    const bytes = rows.reduce((total, row) => total + textBytes(row), 0)
    if (bytes > cap) return false
    const hour = Math.floor(rows[0]!.time / HOUR_MS)
    return (await db.prepare(RESERVE).bind(caller, hour, bytes, cap).first()) !== null
  }

  return { record, counts }
}

type Sink = (record: DecisionRecord, content: DecisionContent) => unknown

/** Several `onDecision` sinks as one (the Worker logs and stores); undefined when there is none. */
export function decisionSinks(...sinks: Array<Sink | undefined | false>): Sink | undefined {
  const active = sinks.filter((sink): sink is Sink => typeof sink === 'function')
  if (active.length <= 1) return active[0]
  return async (record, content) => {
    for (const sink of active) await sink(record, content)
  }
}
