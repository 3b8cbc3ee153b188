/**
 * Issue 29, the overview page (REVIEW_PATH/overview): charts of all traffic drawn from the hourly
 * rollups as server-rendered SVG, their numbers in tables, links into the review list — for
 * traffic the Worker made, and for a store seeded with 30 days of rollups at 1,000 requests per
 * second, where every statement's query plan is a range of an index and never a scan of
 * `decisions`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DecisionRecord } from '../../src/guard/decision-log'
import {
  overviewStatements,
  readOverview,
  timeAxis,
  type OverviewRequest,
} from '../../src/review/overview'
import { saveLabels } from '../../src/review/queries'
import { createRollups, HOUR_MS, UPSERT_CHECKS, UPSERT_DECISIONS } from '../../src/review/rollups'
import { judgeSays } from '../guard-helpers'
import { ask, decisionRecord, pageText, storedRows, storeGuard } from './helpers'
import { seedRows } from './seed'

const DOCUMENTS = ['A day pass costs $12.', 'Helmets are required for riders under 18.']
const upstream = { json: { answer: 'A day pass costs $12.' } }
const judge = {
  rules: [
    { contains: 'passes?', step: judgeSays(0.95) },
    { contains: 'flags?', step: judgeSays(0.5) },
    { contains: 'blocks?', step: judgeSays(0.05) },
    { contains: 'fails?', step: { status: 500 } },
  ],
  otherwise: judgeSays(0.9),
}

afterEach(() => {
  vi.restoreAllMocks()
})

/** The text of an element with this attribute value, e.g. `data-table="verdicts"`. */
function section(html: string, attribute: string): string {
  const start = html.indexOf(attribute)
  expect(start, attribute).toBeGreaterThan(-1)
  const end = html.indexOf('</section>', start)
  return html.slice(start, end === -1 ? undefined : end)
}

/** The cells of each body row of the table with `data-table="<name>"`, as text. */
function tableRows(html: string, name: string): string[][] {
  const start = html.indexOf(`data-table="${name}"`)
  expect(start, name).toBeGreaterThan(-1)
  const table = html.slice(start, html.indexOf('</table>', start))
  const body = table.slice(table.indexOf('<tbody>'))
  return [...body.matchAll(/<tr>(.*?)<\/tr>/gs)].map((row) =>
    [...row[1]!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((cell) =>
      cell[1]!.replace(/<[^>]+>/g, '').trim(),
    ),
  )
}

describe('the overview page, of traffic the Worker made', () => {
  it('draws verdicts, scores, latency, cache and unjudged decisions as SVG, with their numbers and links into the list', async () => {
    const setup = await storeGuard(upstream, judge, { STORE_PASS_RATE: 0 })
    const asked = [
      ...Array<string>(4).fill('Which one passes?'),
      ...Array<string>(2).fill('Which one flags?'),
      'Which one blocks?',
      'Which one fails?',
    ]
    for (const question of asked) {
      expect((await setup.send('/ask', ask(question, DOCUMENTS))).status).toBe(200)
    }
    await setup.settle()

    const { status, text, response } = await pageText(setup, '/_guard/overview?window=24h')
    expect(status).toBe(200)
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(text).not.toContain('<script')
    expect(text).toContain('8 decisions in this window')
    for (const chart of ['verdicts', 'scores-sufficiency', 'latency', 'unjudged']) {
      expect(section(text, `data-chart="${chart}"`)).toContain('<svg class="chart"')
    }

    // Verdicts per hour: 24 rows, this hour's holds every decision (passes were not stored).
    const verdicts = tableRows(text, 'verdicts')
    expect(verdicts).toHaveLength(24)
    expect(verdicts[23]!.slice(1)).toEqual(['4', '3', '0', '1', '8'])
    // Shadow mode: the block is one that would have been applied, drawn as its own series.
    expect(text).toContain('would have been blocked (shadow)')
    // Each bar links to the list, filtered by its verdict and its day.
    const today = new Date().toISOString().slice(0, 10)
    expect(text).toContain(`href="/_guard/review?from=${today}&amp;to=${today}&amp;verdict=block"`)

    // The sufficiency histogram: 4 at 0.95, 2 at 0.5, 1 at 0.05; the thresholds drawn.
    const scores = tableRows(text, 'scores-sufficiency')
    expect(scores).toHaveLength(20)
    expect(scores.map((row) => Number(row[1]))).toEqual(
      Array.from({ length: 20 }, (_, bucket) => ({ 19: 4, 10: 2, 1: 1 })[bucket] ?? 0),
    )
    expect(scores[10]![0]).toBe('0.50–0.55')
    const histogram = section(text, 'data-chart="scores-sufficiency"')
    expect(histogram).toContain('block below 0.2')
    expect(histogram).toContain('flag below 0.8')
    expect(histogram).toContain('href="/_guard/review?from=')
    expect(histogram).toContain('check=sufficiency&amp;min=0.5&amp;max=0.55')

    // Judge calls: seven answered, one failed — all eight timed.
    const latency = tableRows(text, 'latency')
    expect(latency[23]![1]).toBe('8')
    expect(latency[23]![2]).toMatch(/^\d+ ms$/)
    // Unjudged: the failed judge call, under its reason.
    const reason = (await storedRows(setup.db)).find((row) => row.score === null)!.reason!
    expect(section(text, 'data-chart="unjudged"')).toContain(`<th>${reason}</th>`)
    expect(tableRows(text, 'unjudged')[23]).toEqual([expect.any(String), '1'])
    // Numbers are one click away: in a <details> under each chart.
    expect(text.match(/<details class="numbers">/g)).toHaveLength(4)
  })

  it('splits a check’s histogram by label where operators labeled decisions', async () => {
    const setup = await storeGuard(upstream, judge)
    for (const question of ['Which one flags?', 'Which one blocks?', 'Which one passes?']) {
      expect((await setup.send('/ask', ask(question, DOCUMENTS))).status).toBe(200)
    }
    await setup.settle()
    const rows = await storedRows(setup.db)
    // Scores from logprobs: equal to many decimals (the last bit is the runtime's Math.exp).
    const by = (score: number) => rows.find((row) => Math.abs(row.score! - score) < 1e-9)!.id
    await saveLabels(setup.db, by(0.5), { sufficient: true }, 'token:operator', Date.now())
    await saveLabels(setup.db, by(0.05), { sufficient: false }, 'token:operator', Date.now())

    const { text } = await pageText(setup, '/_guard/overview?window=7d&check=sufficiency')
    expect(text).toContain('sufficiency: labeled decisions')
    const scores = tableRows(text, 'scores-sufficiency')
    // score, decisions, share, labeled sufficient, labeled insufficient
    expect(scores[10]!.slice(1)).toEqual(['1', '33.3%', '1', '0'])
    expect(scores[1]!.slice(1)).toEqual(['1', '33.3%', '0', '1'])
    expect(scores[19]!.slice(1)).toEqual(['1', '33.3%', '0', '0'])
  })

  it('keeps to the route and check chosen, and to the window', async () => {
    const setup = await storeGuard(upstream, judge)
    expect((await setup.send('/ask', ask('Which one flags?', DOCUMENTS))).status).toBe(200)
    await setup.settle()
    const other = await pageText(setup, '/_guard/overview?window=30d&route=/ask-late')
    expect(other.status).toBe(200)
    expect(other.text).toContain('0 decisions in this window')
    expect(tableRows(other.text, 'verdicts')).toHaveLength(30)
    expect(other.text).toContain('<option value="/ask-late" selected="">')
    const mine = await pageText(setup, '/_guard/overview?window=30d&route=/ask&check=sufficiency')
    expect(mine.text).toContain('1 decisions in this window')
    expect(mine.text).toContain('<option value="/ask" selected="">')
    const none = await pageText(setup, '/_guard/overview?check=groundedness')
    expect(none.text).toContain('0 decisions in this window')
    expect(none.text).toContain('No scores in this window.')
  })
})

/** A decision record for the rollups on their own. */
const record = (time: number, extra: Partial<DecisionRecord> = {}) =>
  decisionRecord({
    time: new Date(time).toISOString(),
    model: 'gpt-4o-mini',
    promptVersion: 'sufficiency-2026-12-v2',
    ...extra,
  })

describe('changes of settings on the time axis', () => {
  it('marks the first hour a new judge model, prompt version or threshold was seen, once for all routes', async () => {
    const setup = await storeGuard(upstream, judge)
    const rollups = createRollups({ db: setup.db, flushMs: 0 })
    const now = Date.now()
    const before = { blockBelow: 0.2, flagBelow: 0.8 }
    const thresholds = { sufficiency: before, groundedness: before }
    const after = { sufficiency: { blockBelow: 0.3, flagBelow: 0.8 }, groundedness: before }
    for (const route of ['/ask', '/v1/chat/completions']) {
      await rollups.add(record(now - 20 * 86_400_000, { route }), thresholds)
      await rollups.add(record(now - 10 * HOUR_MS, { route, model: 'gpt-4.1-mini' }), thresholds)
    }
    await rollups.add(record(now - 2 * HOUR_MS, { model: 'gpt-4.1-mini' }), after)

    const week = await pageText(setup, '/_guard/overview?window=7d')
    const changes = [...section(week.text, 'data-table="changes"').matchAll(/<li>(.*?)<\/li>/gs)]
    expect(changes.map((match) => match[1]!.replace(/<!-- -->/g, ''))).toEqual([
      `${new Date(Math.floor((now - 10 * HOUR_MS) / HOUR_MS) * HOUR_MS).toISOString().replace('T', ' ').slice(0, 16)} UTC · sufficiency on /ask, /v1/chat/completions: judge model gpt-4o-mini → gpt-4.1-mini`,
      `${new Date(Math.floor((now - 2 * HOUR_MS) / HOUR_MS) * HOUR_MS).toISOString().replace('T', ' ').slice(0, 16)} UTC · sufficiency on /ask: block below 0.2 → 0.3`,
    ])
    // Each is a dashed line, numbered, on every chart over time.
    expect(section(week.text, 'data-chart="verdicts"').match(/class="change-label"/g)).toHaveLength(
      2,
    )
    // The window before the change shows none.
    const older = await pageText(setup, '/_guard/overview?window=30d&route=/v1/chat/completions')
    expect(older.text).toContain('judge model gpt-4o-mini → gpt-4.1-mini')
    expect(older.text).not.toContain('block below 0.2 → 0.3')
  })
})

/**
 * 30 days of rollups at 1,000 requests per second (test/review/seed.ts), with a change of judge
 * model ten days ago, written with the rollups' own upserts, a day per statement.
 */
async function seedThirtyDays(db: D1Database, now: number): Promise<number> {
  const end = Math.floor(now / HOUR_MS) * HOUR_MS + HOUR_MS
  const first = end - 30 * 24 * HOUR_MS
  let rows = 0
  for (let day = first; day < end; day += 24 * HOUR_MS) {
    const seeded = seedRows({
      first: day,
      end: day + 24 * HOUR_MS,
      changeAt: end - 10 * 24 * HOUR_MS,
    })
    await db.batch([
      db.prepare(UPSERT_DECISIONS).bind(JSON.stringify(seeded.decisions)),
      db.prepare(UPSERT_CHECKS).bind(JSON.stringify(seeded.checks)),
    ])
    rows += seeded.decisions.length + seeded.checks.length
  }
  return rows
}

describe('the overview of a store with 30 days of 1,000 requests per second', () => {
  it('reads every chart from index ranges of the rollups, never a scan, in one batch', async () => {
    const setup = await storeGuard(upstream, judge)
    const now = Date.now()
    const seeded = await seedThirtyDays(setup.db, now)
    // 720 hours × 3 routes × (9 outcomes + 9 check rows)
    expect(seeded).toBe(720 * 3 * 18)

    const requests: OverviewRequest[] = [
      { window: '24h' },
      { window: '7d' },
      { window: '30d' },
      { window: '30d', route: '/rag' },
      { window: '30d', check: 'groundedness' },
      { window: '30d', route: '/ask', check: 'sufficiency' },
    ]
    for (const request of requests) {
      const axis = timeAxis(request.window, now)
      const statements = overviewStatements(request, axis)
      let rowsRead = 0
      for (const [name, { sql, params }] of Object.entries(statements)) {
        const { results } = await setup.db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .bind(...params)
          .all<{ detail: string }>()
        const plan = results.map((row) => row.detail)
        if (request.window === '30d' && !request.route && !request.check) {
        }
        const label = `${JSON.stringify(request)} ${name}: ${plan.join(' | ')}`
        // A rollup table is only ever searched through an index; decisions only by primary key.
        for (const step of plan) {
          expect(step, label).not.toMatch(/^SCAN (rollup_decisions|rollup_checks|decisions|d)\b/)
          if (/\b(rollup_decisions|rollup_checks)\b/.test(step) && step.startsWith('SEARCH')) {
            expect(step, label).toMatch(
              /USING (COVERING )?INDEX rollup_(decisions|checks)_(key|route)/,
            )
          }
          if (/^SEARCH d\b/.test(step))
            expect(step, label).toContain('sqlite_autoindex_decisions_1')
        }
        const run = await setup.db
          .prepare(sql)
          .bind(...params)
          .all()
        rowsRead += run.meta.rows_read ?? 0
      }
      // Far below D1's limits: tens of thousands of rows, a fraction of one second of D1's time.
      expect(rowsRead, JSON.stringify(request)).toBeLessThan(3 * seeded)
    }

    // The page itself: 30 days of 3.6 M decisions an hour.
    const { status, text } = await pageText(setup, '/_guard/overview?window=30d')
    expect(status).toBe(200)
    const hours = (await readOverview(setup.db, { window: '30d' }, timeAxis('30d', now))).decisions
    const total = hours.reduce((sum, row) => sum + row.n, 0)
    expect(total).toBeGreaterThan(2.5e9)
    expect(text).toMatch(/2\.[56]G decisions in this window/)
    expect(text).toContain('judge model gpt-4.1-mini → gpt-4o-mini')
  }, 60_000)
})
