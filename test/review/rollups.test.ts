/**
 * Issue 29, the hourly rollups: every decision the Worker makes — passes included, whatever
 * STORE_PASS_RATE keeps — adds to hourly totals in D1 (Miniflare's local D1, the schema of
 * src/review/migrations/), added up in the isolate and written in one batch per window; the
 * totals are checked against the decisions the same Worker made and stored.
 */
import { env } from 'cloudflare:workers'
import {
  createScheduledController,
  createExecutionContext,
  waitOnExecutionContext,
} from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createRollups,
  HOUR_MS,
  LATENCY_BOUNDS_MS,
  LATENCY_COLUMNS,
  latencyBucket,
  latencyPercentile,
  MAX_ROLLUP_CELLS,
  SCORE_COLUMNS,
  scoreBucket,
} from '../../src/review/rollups'
import worker from '../../src/worker'
import { judgeSays } from '../guard-helpers'
import { ask, decisionRecord, emptyStore, recordOf, storedRows, storeGuard } from './helpers'

const DOCUMENTS = ['A day pass costs $12.', 'Helmets are required for riders under 18.']
const upstream = { json: { answer: 'A day pass costs $12. ANSWER-MARK' } }

type Row = Record<string, number | string>

async function rollupRows(db: D1Database, table: 'rollup_decisions' | 'rollup_checks') {
  const { results } = await db.prepare(`SELECT * FROM ${table}`).all<Row>()
  return results
}

/** Sum of `column` over the rows that match `where`. */
const total = (rows: Row[], column: string, where: (row: Row) => boolean = () => true) =>
  rows.filter(where).reduce((sum, row) => sum + Number(row[column]), 0)

/** A decision record as the guard makes it, for the rollups on their own. */
const record = decisionRecord

const THRESHOLDS = {
  sufficiency: { blockBelow: 0.2, flagBelow: 0.8 },
  groundedness: { blockBelow: 0.3, flagBelow: 0.7 },
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('the hourly rollups of the Worker’s decisions', () => {
  it('count every decision, passes included, even when no pass is stored', async () => {
    const setup = await storeGuard(
      upstream,
      {
        rules: [
          { contains: 'passes?', step: judgeSays(0.95) },
          { contains: 'flags?', step: judgeSays(0.5) },
          { contains: 'blocks?', step: judgeSays(0.05) },
          { contains: 'fails?', step: { status: 500 } },
        ],
        otherwise: judgeSays(0.9),
      },
      { STORE_PASS_RATE: 0, BLOCK_BELOW: 0.3, FLAG_BELOW: 0.7 },
    )
    const asked = [
      ...Array<string>(5).fill('Which one passes?'),
      ...Array<string>(3).fill('Which one flags?'),
      'Which one blocks?',
    ]
    for (const question of asked) {
      expect((await setup.send('/ask', ask(question, DOCUMENTS))).status).toBe(200)
    }
    // The judge fails: a decision without a score, with its reason (ON_ERROR: flag).
    expect((await setup.send('/ask', ask('Which one fails?', DOCUMENTS))).status).toBe(200)
    await setup.settle()

    // The store kept flags and blocks only; the rollups have all ten.
    const stored = await storedRows(setup.db)
    expect(stored.map((row) => row.verdict).sort()).toEqual([
      'block',
      'flag',
      'flag',
      'flag',
      'flag',
    ])
    const decisions = await rollupRows(setup.db, 'rollup_decisions')
    expect(total(decisions, 'n')).toBe(10)
    expect(total(decisions, 'n', (row) => row.verdict === 'pass')).toBe(5)
    expect(total(decisions, 'n', (row) => row.verdict === 'flag')).toBe(4)
    expect(total(decisions, 'n', (row) => row.verdict === 'block')).toBe(1)
    // The unscored decision's reason is the stored one's.
    const unscored = stored.find((row) => row.score === null)!
    expect(unscored.reason).toBeTruthy()
    expect(decisions.filter((row) => row.reason !== '')).toEqual([
      expect.objectContaining({ reason: unscored.reason, verdict: 'flag', n: 1 }),
    ])
    for (const row of decisions) {
      expect(row).toMatchObject({ route: '/ask', mode: 'shadow' })
      expect(row.hour).toBe(Math.floor(Number(row.hour) / HOUR_MS) * HOUR_MS)
      expect(Math.abs(Number(row.hour) - Date.now())).toBeLessThan(2 * HOUR_MS)
    }

    // The score histogram: 0.95 in [0.95, 1], 0.5 in [0.5, 0.55), 0.05 in [0.05, 0.1).
    const checks = await rollupRows(setup.db, 'rollup_checks')
    expect(new Set(checks.map((row) => row.check_name))).toEqual(new Set(['sufficiency']))
    const histogram = SCORE_COLUMNS.map((column) => total(checks, column))
    const expected = new Array<number>(20).fill(0)
    expected[19] = 5
    expected[10] = 3
    expected[1] = 1
    expect(histogram).toEqual(expected)
    expect(total(checks, 'n')).toBe(10)
    for (const row of checks) {
      expect(row).toMatchObject({
        estimator: row.reason === '' ? 'logprobs' : row.estimator,
        block_below: 0.3,
        flag_below: 0.7,
      })
      expect(row.prompt_version).toMatch(/^sufficiency-/)
    }
  })

  it('hold each judge call’s latency in its bucket, and give percentiles within a bucket of the true ones', async () => {
    const delays = [0, 0, 10, 40, 40, 80, 150, 150, 260, 400]
    const setup = await storeGuard(upstream, {
      rules: delays.map((delayMs, index) => ({
        contains: `question ${index}?`,
        step: judgeSays(0.9, { delayMs }),
      })),
      otherwise: judgeSays(0.9),
    })
    for (const index of delays.keys()) {
      const response = await setup.send('/ask', ask(`question ${index}?`, DOCUMENTS))
      expect(response.status).toBe(200)
    }
    await setup.settle()

    // Every pass is stored here: the latencies the Worker measured are in the records.
    const latencies = (await storedRows(setup.db)).map(
      (row) => recordOf(row).judgeLatencyMs as number,
    )
    expect(latencies).toHaveLength(delays.length)
    const checks = await rollupRows(setup.db, 'rollup_checks')
    const counts = LATENCY_COLUMNS.map((column) => total(checks, column))
    const expected = new Array<number>(LATENCY_COLUMNS.length).fill(0)
    for (const latency of latencies) expected[latencyBucket(latency)]!++
    expect(counts).toEqual(expected)

    const sorted = [...latencies].sort((a, b) => a - b)
    for (const quantile of [0.5, 0.95]) {
      const exact = sorted[Math.ceil(quantile * sorted.length) - 1]!
      const estimate = latencyPercentile(counts, quantile)!
      const bucket = latencyBucket(exact)
      const lower = bucket === 0 ? 0 : LATENCY_BOUNDS_MS[bucket - 1]!
      const upper = LATENCY_BOUNDS_MS[bucket] ?? Infinity
      expect(estimate, `p${quantile * 100}`).toBeGreaterThanOrEqual(lower)
      expect(estimate, `p${quantile * 100}`).toBeLessThanOrEqual(upper)
    }
  })

  it('count cache hits and misses, and leave cache hits out of the latencies', async () => {
    const setup = await storeGuard(upstream, judgeSays(0.9), {
      CACHE_TTL_SECONDS: 60,
      GUARD_CACHE: env.TEST_CACHE,
    })
    const question = `Cached ${crypto.randomUUID()}?`
    for (let round = 0; round < 3; round++) {
      expect((await setup.send('/ask', ask(question, DOCUMENTS))).status).toBe(200)
      await setup.settle()
    }
    const checks = await rollupRows(setup.db, 'rollup_checks')
    expect(total(checks, 'cache_misses')).toBe(1)
    expect(total(checks, 'cache_hits')).toBe(2)
    expect(LATENCY_COLUMNS.reduce((sum, column) => sum + total(checks, column), 0)).toBe(1)
  })

  it('count each check of a route with two, and each decision once, under the check that decided', async () => {
    const setup = await storeGuard(
      upstream,
      {
        rules: [{ contains: 'ANSWER-MARK', step: judgeSays(0.1) }],
        otherwise: judgeSays(0.9),
      },
      {
        GUARD_ROUTES: [
          {
            path: '/ask',
            format: 'json',
            answer: '/answer',
            checks: ['sufficiency', 'groundedness'],
          },
        ],
        GROUNDEDNESS_BLOCK_BELOW: 0.3,
        GROUNDEDNESS_FLAG_BELOW: 0.7,
      },
    )
    for (let index = 0; index < 4; index++) {
      expect((await setup.send('/ask', ask(`Two checks ${index}?`, DOCUMENTS))).status).toBe(200)
    }
    await setup.settle()
    const decisions = await rollupRows(setup.db, 'rollup_decisions')
    expect(decisions).toEqual([
      expect.objectContaining({ verdict: 'block', check_name: 'groundedness', n: 4 }),
    ])
    const checks = await rollupRows(setup.db, 'rollup_checks')
    const of = (check: string) => checks.filter((row) => row.check_name === check)
    expect(of('sufficiency')).toEqual([
      expect.objectContaining({ verdict: 'pass', n: 4, s18: 4, block_below: 0.2, flag_below: 0.8 }),
    ])
    expect(of('groundedness')).toEqual([
      expect.objectContaining({
        verdict: 'block',
        n: 4,
        s02: 4,
        block_below: 0.3,
        flag_below: 0.7,
      }),
    ])
    expect(of('groundedness')[0]!.prompt_version).toMatch(/^groundedness-/)
  })
})

/** TEST_DB, with every batch and statement counted on the way (the calls go through unchanged). */
function countingDb(db: D1Database) {
  const calls = { batches: 0, statements: 0, runs: 0 }
  const counted = {
    prepare: (sql: string) => db.prepare(sql),
    batch: (statements: D1PreparedStatement[]) => {
      calls.batches++
      calls.statements += statements.length
      return db.batch(statements)
    },
  } as unknown as D1Database
  return { db: counted, calls }
}

describe('the rollups in one isolate', () => {
  it('add up in memory until the window closes, then write in one batch of two statements', async () => {
    const { db, calls } = countingDb(await emptyStore())
    let close!: () => void
    const window = new Promise<void>((resolve) => (close = resolve))
    const rollups = createRollups({ db, flushMs: 10_000, wait: () => window })

    const first = rollups.add(record(), THRESHOLDS)
    expect(first).toBeInstanceOf(Promise)
    for (let index = 1; index < 500; index++) {
      const verdict = index % 10 === 0 ? 'block' : index % 5 === 0 ? 'flag' : 'pass'
      const score = verdict === 'block' ? 0.1 : verdict === 'flag' ? 0.5 : 0.9
      // Only the request that opened the window holds a pending write.
      expect(
        rollups.add(record({ verdict, score, judgeLatencyMs: index }), THRESHOLDS),
      ).toBeUndefined()
    }
    expect(calls.batches).toBe(0)
    expect(await rollupRows(db, 'rollup_decisions')).toEqual([])

    close()
    await first
    expect(calls).toMatchObject({ batches: 1, statements: 2 })
    const decisions = await rollupRows(db, 'rollup_decisions')
    expect(decisions.map((row) => [row.verdict, row.n]).sort()).toEqual([
      ['block', 49],
      ['flag', 50],
      ['pass', 401],
    ])
    const checks = await rollupRows(db, 'rollup_checks')
    expect(checks).toHaveLength(3)
    expect(total(checks, 's18')).toBe(401)
    expect(total(checks, 's10')).toBe(50)
    expect(total(checks, 's02')).toBe(49)
    // 120 ms (the first) and 1…499 ms: each in its bucket.
    const latencies = [120, ...Array.from({ length: 499 }, (_, index) => index + 1)]
    LATENCY_COLUMNS.forEach((column, bucket) => {
      expect(total(checks, column), column).toBe(
        latencies.filter((latency) => latencyBucket(latency) === bucket).length,
      )
    })
    expect(rollups.counts).toMatchObject({ flushes: 1, failed: 0, decisions: 500 })
  })

  it('add to the rows already written for the same hour (an upsert), across flushes and isolates', async () => {
    const db = await emptyStore()
    const one = createRollups({ db, flushMs: 0 })
    const two = createRollups({ db, flushMs: 0 })
    await Promise.all([one.add(record(), THRESHOLDS), two.add(record(), THRESHOLDS)])
    await one.add(record({ time: '2026-11-24T10:59:59.999Z' }), THRESHOLDS)
    await one.add(record({ time: '2026-11-24T11:00:00.000Z' }), THRESHOLDS)
    const decisions = await rollupRows(db, 'rollup_decisions')
    expect(decisions.map((row) => [new Date(Number(row.hour)).toISOString(), row.n])).toEqual([
      ['2026-11-24T10:00:00.000Z', 3],
      ['2026-11-24T11:00:00.000Z', 1],
    ])
  })

  it('write early when the isolate holds as many combinations as it may, so memory stays bounded', async () => {
    const { db, calls } = countingDb(await emptyStore())
    const rollups = createRollups({ db, flushMs: 10_000, wait: () => new Promise(() => {}) })
    void rollups.add(record(), THRESHOLDS)
    let forced: Promise<void> | undefined
    let added = 1
    // A new hour each time: one decision row and one check row per decision.
    while (!forced) {
      forced = rollups.add(
        record({ time: new Date(Date.UTC(2026, 0, 1) + added * HOUR_MS).toISOString() }),
        THRESHOLDS,
      )
      added++
    }
    expect(added).toBe(MAX_ROLLUP_CELLS / 2)
    await forced
    expect(calls.batches).toBe(1)
    expect(total(await rollupRows(db, 'rollup_decisions'), 'n')).toBe(added)
  })

  it('report a flush that fails once, with no values of the traffic, and never reject', async () => {
    const lines: string[] = []
    const rollups = createRollups({ db: env.EMPTY_DB, flushMs: 0, log: (line) => lines.push(line) })
    await rollups.add(record({ route: '/secret-route' }), THRESHOLDS)
    await rollups.add(record(), THRESHOLDS)
    expect(rollups.counts).toMatchObject({ flushes: 0, failed: 2 })
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({
      message: 'rag-guard rollups',
      event: 'flush-failed',
    })
    expect(lines[0]).not.toContain('/secret-route')
  })

  it('puts a score of exactly 1 in the last bucket and a threshold score in the bucket it opens', () => {
    expect(scoreBucket(1)).toBe(19)
    expect(scoreBucket(0)).toBe(0)
    expect(scoreBucket(0.2)).toBe(4)
    expect(scoreBucket(0.8)).toBe(16)
    expect(latencyBucket(25)).toBe(0)
    expect(latencyBucket(26)).toBe(1)
    expect(latencyBucket(60_000)).toBe(LATENCY_BOUNDS_MS.length)
  })

  it('interpolates percentiles within the bucket they fall in', () => {
    const counts = new Array<number>(LATENCY_COLUMNS.length).fill(0)
    expect(latencyPercentile(counts, 0.5)).toBeUndefined()
    counts[2] = 10 // 50 to 100 ms
    counts[4] = 10 // 200 to 300 ms
    expect(latencyPercentile(counts, 0.5)).toBe(100)
    expect(latencyPercentile(counts, 0.25)).toBe(75)
    expect(latencyPercentile(counts, 0.95)).toBe(290)
    counts[LATENCY_COLUMNS.length - 1] = 80 // above 10 s: read as 10 s
    expect(latencyPercentile(counts, 0.95)).toBe(10_000)
  })
})

describe('the retention of the rollups', () => {
  it('the scheduled purge deletes rollup rows older than STORE_RETENTION_DAYS and keeps the rest', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => {})
    const setup = await storeGuard(upstream, judgeSays(0.9), { STORE_RETENTION_DAYS: 30 })
    const rollups = createRollups({ db: setup.db, flushMs: 0 })
    const now = Date.now()
    for (const age of [45, 31, 29, 1]) {
      await rollups.add(
        record({ time: new Date(now - age * 86_400_000).toISOString() }),
        THRESHOLDS,
      )
    }
    const ctx = createExecutionContext()
    worker.scheduled(createScheduledController({ scheduledTime: now }), setup.env, ctx)
    await waitOnExecutionContext(ctx)
    for (const table of ['rollup_decisions', 'rollup_checks'] as const) {
      const ages = (await rollupRows(setup.db, table)).map((row) =>
        Math.floor((now - Number(row.hour)) / 86_400_000),
      )
      expect(
        ages.sort((a, b) => a - b),
        table,
      ).toEqual([1, 29])
    }
  })
})
