/**
 * Hourly rollups of every decision the guard makes — passes included, whatever STORE_PASS_RATE
 * keeps of them — for the overview page (migrations/0003_rollups.sql, beside this file).
 *
 * A request only adds to counters held in the isolate: one or two map lookups and a few
 * increments (no I/O, no allocation beyond a new cell for a combination not seen this window).
 * The counters go to D1 in one batch of two statements every `flushMs` (`ROLLUP_FLUSH_SECONDS`),
 * or sooner when the isolate holds {@link MAX_ROLLUP_CELLS} combinations. The rows are passed as
 * one JSON parameter and upserted with `json_each`, so a flush is two statements whatever its
 * size, under D1's limit of 100 bound parameters.
 *
 * What is lost: an isolate evicted between two flushes takes up to `flushMs` of its counts with
 * it (the flush runs inside the `waitUntil` of the request that opened the window), and a flush
 * that fails is counted and logged, not retried. The overview is for shapes and rates; the
 * decision store and the decision log stay the record of each decision.
 */
import type { DecisionRecord } from '../guard/decision-log'
import type { Thresholds } from '../guard/policy'
import { CHECKS, type Check } from './checks'

/** Scores fall in this many buckets of equal width over [0, 1]. */
export const SCORE_BUCKETS = 20
/** Upper bounds (ms) of the judge latency buckets; one more bucket holds what is above. */
export const LATENCY_BOUNDS_MS = [
  25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000,
]
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1
/** The most combinations one isolate holds before it flushes early (each is ~40 numbers). */
export const MAX_ROLLUP_CELLS = 1000
/** Longer texts (a model name, a prompt version) are cut: they are keys, not content. */
const MAX_KEY_CHARS = 200
export const HOUR_MS = 3_600_000

const pad = (index: number) => String(index).padStart(2, '0')
export const SCORE_COLUMNS = Array.from({ length: SCORE_BUCKETS }, (_, index) => `s${pad(index)}`)
export const LATENCY_COLUMNS = Array.from(
  { length: LATENCY_BUCKETS },
  (_, index) => `l${pad(index)}`,
)

/** The bucket of a score in [0, 1]; 1 goes in the last bucket. */
export const scoreBucket = (score: number) =>
  Math.min(SCORE_BUCKETS - 1, Math.max(0, Math.floor(score * SCORE_BUCKETS)))

/** The bucket of a latency in ms: the first whose upper bound it does not exceed. */
export function latencyBucket(ms: number): number {
  for (let index = 0; index < LATENCY_BOUNDS_MS.length; index++) {
    if (ms <= LATENCY_BOUNDS_MS[index]!) return index
  }
  return LATENCY_BOUNDS_MS.length
}

/**
 * A percentile (0 to 1) from latency bucket counts: found in its bucket, and placed by linear
 * interpolation between the bucket's bounds (the last bucket, unbounded, reads as its lower
 * bound). Undefined without counts. Its error is at most the width of the bucket it falls in.
 */
export function latencyPercentile(counts: readonly number[], quantile: number): number | undefined {
  const total = counts.reduce((sum, count) => sum + count, 0)
  if (total === 0) return undefined
  const rank = quantile * total
  let below = 0
  for (let index = 0; index < counts.length; index++) {
    const count = counts[index]!
    if (count > 0 && below + count >= rank) {
      const lower = index === 0 ? 0 : LATENCY_BOUNDS_MS[index - 1]!
      const upper = LATENCY_BOUNDS_MS[index]
      if (upper === undefined) return lower
      return lower + ((upper - lower) * Math.max(0, rank - below)) / count
    }
    below += count
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]
}

/** What a rollup reads of one check's outcome: a `CheckRecord`, or a record's own fields. */
type CheckRecordLike = Pick<
  DecisionRecord,
  'verdict' | 'score' | 'reason' | 'cache' | 'judgeLatencyMs'
> & { promptVersion?: string }

/** Thresholds as a key's text, made once per thresholds object (one per route and check). */
const thresholdTexts = new WeakMap<Thresholds, string>()
function thresholdText(limits: Thresholds): string {
  let known = thresholdTexts.get(limits)
  if (known === undefined) {
    known = `${limits.blockBelow}\u0000${limits.flagBelow}`
    thresholdTexts.set(limits, known)
  }
  return known
}

/** The thresholds of each check on the route that made a decision. */
export type RouteThresholds = Record<Check, Thresholds>

interface DecisionCell {
  key: [number, string, string, string, string, string]
  n: number
}

interface CheckCell {
  key: [number, string, string, string, string, string, string, string, string, number, number]
  n: number
  cacheHits: number
  cacheMisses: number
  scores: number[]
  latencies: number[]
}

const text = (value: unknown) => (typeof value === 'string' ? value.slice(0, MAX_KEY_CHARS) : '')

/** One check's outcome as a rollup counts it. */
interface CheckOutcome {
  check: Check
  verdict: string
  score?: number
  reason?: string
  cache?: 'hit' | 'miss'
  judgeLatencyMs?: number
  promptVersion?: string
}

/** The outcome of each check a decision has: its `checks`, else its own top-level fields. */
export function checkOutcomes(record: DecisionRecord): CheckOutcome[] {
  if (record.checks) {
    return CHECKS.flatMap((check) => {
      const part = record.checks![check]
      return part ? [{ ...part, check }] : []
    })
  }
  if (record.check !== 'sufficiency' && record.check !== 'groundedness') return []
  return [{ ...record, check: record.check }]
}

export interface RollupCounts {
  /** Flushes written, flushes that failed, and decisions counted so far. */
  flushes: number
  failed: number
  decisions: number
}

export interface RollupOptions {
  db: D1Database
  /** How long an isolate adds up before it writes. */
  flushMs: number
  /** Where a failed flush is reported. @default console.error */
  log?: (line: string) => void
  /** Waits `ms`; a test may make it resolve at once. @default setTimeout */
  wait?: (ms: number) => Promise<void>
}

export interface Rollups {
  /**
   * Adds one decision. Returns the pending flush for the request that opens a window (the host
   * keeps it alive with `waitUntil`), or for a flush the cell limit forced; otherwise nothing.
   */
  add(record: DecisionRecord, thresholds: RouteThresholds): Promise<void> | undefined
  /** Writes what is held now (tests; a host that wants to flush on its own schedule). */
  flush(): Promise<void>
  readonly counts: Readonly<RollupCounts>
}

const DECISION_COLUMNS = ['hour', 'route', 'mode', 'verdict', 'check_name', 'reason']
const CHECK_KEY_COLUMNS = [
  'hour',
  'route',
  'check_name',
  'mode',
  'verdict',
  'reason',
  'estimator',
  'model',
  'prompt_version',
  'block_below',
  'flag_below',
]
const CHECK_SUM_COLUMNS = ['n', 'cache_hits', 'cache_misses', ...SCORE_COLUMNS, ...LATENCY_COLUMNS]

/** An upsert of every row of a JSON array (one array per row, in `columns` order). */
function upsert(table: string, keys: string[], sums: string[]): string {
  const columns = [...keys, ...sums]
  const values = columns.map((_, index) => `json_extract(value, '$[${index}]')`)
  // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT, not to the join.
  return `INSERT INTO ${table} (${columns.join(', ')})
    SELECT ${values.join(', ')} FROM json_each(?1) WHERE true
    ON CONFLICT (${keys.join(', ')}) DO UPDATE SET
    ${sums.map((column) => `${column} = ${column} + excluded.${column}`).join(', ')}`
}

export const UPSERT_DECISIONS = upsert('rollup_decisions', DECISION_COLUMNS, ['n'])
export const UPSERT_CHECKS = upsert('rollup_checks', CHECK_KEY_COLUMNS, CHECK_SUM_COLUMNS)

/**
 * The rollups of one isolate on a D1 database with the schema of `migrations/`.
 *
 * @example
 * ```ts
 * const rollups = createRollups({ db: env.GUARD_DB, flushMs: 10_000 })
 * const thresholds = { sufficiency: { blockBelow: 0.2, flagBelow: 0.8 }, groundedness: … }
 * app.post('/ask', ragGuard({ judge, onDecision: (record) => rollups.add(record, thresholds) }))
 * ```
 */
export function createRollups(options: RollupOptions): Rollups {
  const { db, flushMs } = options
  const log = options.log ?? ((line: string) => console.error(line))
  const wait =
    options.wait ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const counts: RollupCounts = { flushes: 0, failed: 0, decisions: 0 }
  let decisions = new Map<string, DecisionCell>()
  let checks = new Map<string, CheckCell>()
  let timer: Promise<void> | undefined

  // The hour of the last decision: records are ISO times (`2026-12-01T10:02:11.512Z`), so the
  // hour is known from their first 13 characters without parsing a date each time.
  let hourText = ''
  let hour = Number.NaN
  function hourOf(time: string): number {
    const prefix = time.slice(0, 13)
    if (prefix !== hourText) {
      hourText = prefix
      hour = Math.floor(Date.parse(time) / HOUR_MS) * HOUR_MS
    }
    return hour
  }

  /** Adds one check's outcome to its cell; `common` is the hour, route and mode as key text. */
  function count(
    record: DecisionRecord,
    check: Check,
    outcome: CheckRecordLike,
    limits: Thresholds,
    common: string,
    hour: number,
  ) {
    const checkVerdict = text(outcome.verdict)
    const checkReason = text(outcome.reason)
    const estimator = text(record.estimator)
    const model = text(record.model)
    const version = text(outcome.promptVersion ?? record.promptVersion)
    const checkId = `${common}\u0000${check}\u0000${checkVerdict}\u0000${checkReason}\u0000${estimator}\u0000${model}\u0000${version}\u0000${thresholdText(limits)}`
    let sums = checks.get(checkId)
    if (!sums) {
      sums = {
        key: [
          hour,
          text(record.route),
          check,
          text(record.mode),
          checkVerdict,
          checkReason,
          estimator,
          model,
          version,
          limits.blockBelow,
          limits.flagBelow,
        ],
        n: 0,
        cacheHits: 0,
        cacheMisses: 0,
        scores: new Array<number>(SCORE_BUCKETS).fill(0),
        latencies: new Array<number>(LATENCY_BUCKETS).fill(0),
      }
      checks.set(checkId, sums)
    }
    sums.n++
    if (outcome.cache === 'hit') sums.cacheHits++
    else if (outcome.cache === 'miss') sums.cacheMisses++
    if (typeof outcome.score === 'number' && Number.isFinite(outcome.score)) {
      sums.scores[scoreBucket(outcome.score)]!++
    }
    // A cache hit made no judge call: its 0 ms would pull the percentiles down.
    if (outcome.cache !== 'hit' && typeof outcome.judgeLatencyMs === 'number') {
      sums.latencies[latencyBucket(outcome.judgeLatencyMs)]!++
    }
  }

  // Keys are plain string concatenations of a few short texts: cheaper than joining arrays.
  function add(record: DecisionRecord, thresholds: RouteThresholds) {
    const hour = hourOf(String(record.time))
    if (!Number.isFinite(hour)) return undefined
    counts.decisions++
    const route = text(record.route)
    const mode = text(record.mode)
    const verdict = text(record.verdict)
    const deciding = text(record.check)
    const reason = text(record.reason)
    const common = `${hourText}\u0000${route}\u0000${mode}`
    const id = `${common}\u0000${verdict}\u0000${deciding}\u0000${reason}`
    const cell = decisions.get(id)
    if (cell) cell.n++
    else decisions.set(id, { key: [hour, route, mode, verdict, deciding, reason], n: 1 })

    if (record.checks) {
      for (const check of CHECKS) {
        const part = record.checks[check]
        if (part) count(record, check, part, thresholds[check], common, hour)
      }
    } else if (record.check === 'sufficiency' || record.check === 'groundedness') {
      count(record, record.check, record, thresholds[record.check], common, hour)
    }

    if (decisions.size + checks.size >= MAX_ROLLUP_CELLS) return flush()
    if (timer) return undefined
    timer = wait(flushMs).then(() => {
      timer = undefined
      return flush()
    })
    return timer
  }

  async function flush(): Promise<void> {
    if (decisions.size === 0 && checks.size === 0) return
    const decisionRows = [...decisions.values()].map((cell) => [...cell.key, cell.n])
    const checkRows = [...checks.values()].map((cell) => [
      ...cell.key,
      cell.n,
      cell.cacheHits,
      cell.cacheMisses,
      ...cell.scores,
      ...cell.latencies,
    ])
    decisions = new Map()
    checks = new Map()
    const statements = [db.prepare(UPSERT_DECISIONS).bind(JSON.stringify(decisionRows))]
    if (checkRows.length > 0) {
      statements.push(db.prepare(UPSERT_CHECKS).bind(JSON.stringify(checkRows)))
    }
    try {
      await db.batch(statements)
      counts.flushes++
    } catch (error) {
      counts.failed++
      // Once for the first, then every hundredth: a store without the table is not a log flood.
      if (counts.failed % 100 === 1) {
        log(
          JSON.stringify({
            message: 'rag-guard rollups',
            event: 'flush-failed',
            ...counts,
            error: String(error).slice(0, 300),
          }),
        )
      }
    }
  }

  return { add, flush, counts }
}

/** Deletes rollup rows older than `retentionDays` before `now`, in batches; returns how many. */
export async function purgeRollups(
  db: D1Database,
  retentionDays: number,
  now: number,
  batch = 5000,
  maxBatches = 50,
): Promise<number> {
  const cutoff = now - retentionDays * 86_400_000
  let deleted = 0
  for (const table of ['rollup_decisions', 'rollup_checks']) {
    for (let round = 0; round < maxBatches; round++) {
      const result = await db
        .prepare(
          `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE hour < ?1 LIMIT ?2)`,
        )
        .bind(cutoff, batch)
        .run()
      const changes = result.meta.changes ?? 0
      deleted += changes
      if (changes < batch) break
    }
  }
  return deleted
}
