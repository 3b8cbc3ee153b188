/**
 * Issue 18, the review list: newest first, filtered by verdict, route, check, date, score and
 * label, paginated by key on (time, id) — and at 100,000 rows every page of every filter is one
 * index range (the query plans say so; no timing is asserted).
 */
import { describe, expect, it } from 'vitest'
import type { DecisionRecord } from '../../src/guard/decision-log'
import {
  listDecisions,
  listRoutes,
  listStatement,
  parseListQuery,
  saveLabels,
  type ListRequest,
} from '../../src/review/queries'
import { createDecisionStore } from '../../src/review/store'
import { judgeSays } from '../guard-helpers'
import { emptyStore, pageText, storedRows, storeGuard } from './helpers'

const DAY = Date.UTC(2026, 10, 24)

function record(
  time: number,
  verdict: 'pass' | 'flag' | 'block',
  route: string,
  check: 'sufficiency' | 'groundedness',
  score: number,
): DecisionRecord {
  return {
    message: 'rag-guard decision',
    time: new Date(time).toISOString(),
    requestId: `${route}-${time}-${score}`,
    route,
    path: route,
    method: 'POST',
    format: 'json',
    mode: 'shadow',
    verdict,
    applied: false,
    score,
    check,
    addedLatencyMs: 0,
    status: 200,
    promptVersion: `${check}-v`,
  }
}

/** Ids of the rows of a list page, in order, and its page links. */
function listed(html: string) {
  const ids = [...html.matchAll(/<tr data-id="([0-9a-f]{32})">/g)].map((match) => match[1]!)
  const link = (rel: string) =>
    new RegExp(`<a href="([^"]+)" rel="${rel}">`).exec(html)?.[1]?.replace(/&amp;/g, '&')
  return { ids, older: link('next'), newer: link('prev') }
}

describe('the list of decisions', () => {
  it('pages newest first by key, through rows of the same millisecond, with no row twice or missed', async () => {
    const setup = await storeGuard({ json: { answer: 'a' } }, judgeSays(0.9))
    const store = createDecisionStore({ db: setup.db, passRate: 1, content: false })
    // 120 decisions over 40 distinct times: three share each millisecond.
    for (let index = 0; index < 120; index++) {
      await store.record(
        record(DAY + Math.floor(index / 3), 'flag', '/ask', 'sufficiency', 0.5),
        {},
      )
    }
    const expected = (await storedRows(setup.db))
      .sort((a, b) => b.time - a.time || (a.id < b.id ? 1 : -1))
      .map((row) => row.id)

    const seen: string[] = []
    let path: string | undefined = '/_guard/review'
    const pages: string[] = []
    while (path) {
      const page = listed((await pageText(setup, path)).text)
      seen.push(...page.ids)
      pages.push(path)
      path = page.older
    }
    expect(pages).toHaveLength(3)
    expect(seen).toEqual(expected)

    // And back: the newer page of the last one is the middle one.
    const last = listed((await pageText(setup, pages[2]!)).text)
    expect(listed((await pageText(setup, last.newer!)).text).ids).toEqual(expected.slice(50, 100))
    expect(listed((await pageText(setup, '/_guard/review')).text).newer).toBeUndefined()
  })

  it('filters by verdict, route, check, date, score and label, and keeps the filters across pages', async () => {
    const setup = await storeGuard({ json: { answer: 'a' } }, judgeSays(0.9))
    const store = createDecisionStore({ db: setup.db, passRate: 1, content: false })
    const hour = 3_600_000
    const rows: Array<Parameters<typeof record>> = [
      [DAY + 1 * hour, 'block', '/ask', 'sufficiency', 0.05],
      [DAY + 2 * hour, 'flag', '/ask', 'groundedness', 0.4],
      [DAY + 3 * hour, 'pass', '/v1/chat/completions', 'sufficiency', 0.95],
      [DAY + 26 * hour, 'flag', '/v1/chat/completions', 'sufficiency', 0.6],
      [DAY + 50 * hour, 'block', '/rag/invoke', 'groundedness', 0.15],
    ]
    for (const row of rows) await store.record(record(...row), {})
    const byTime = new Map((await storedRows(setup.db)).map((row) => [row.time, row.id]))
    const ids = (...hours: number[]) => hours.map((at) => byTime.get(DAY + at * hour))
    await saveLabels(setup.db, byTime.get(DAY + 2 * hour)!, { grounded: false }, 'token:x', DAY)

    const cases: Array<[string, Array<string | undefined>]> = [
      ['', ids(50, 26, 3, 2, 1)],
      ['?verdict=block', ids(50, 1)],
      ['?verdict=flag&route=%2Fv1%2Fchat%2Fcompletions', ids(26)],
      ['?check=groundedness', ids(50, 2)],
      ['?from=2026-11-25&to=2026-11-25', ids(26)],
      ['?from=2026-11-25', ids(50, 26)],
      ['?min=0.1&max=0.6', ids(50, 26, 2)],
      ['?labeled=yes', ids(2)],
      ['?labeled=no&verdict=flag', ids(26)],
      // Values that are not valid are left out, not an error.
      ['?verdict=maybe&min=2&from=yesterday', ids(50, 26, 3, 2, 1)],
    ]
    for (const [query, expected] of cases) {
      const { status, text } = await pageText(setup, `/_guard/review${query}`)
      expect(status, query).toBe(200)
      expect(listed(text).ids, query).toEqual(expected)
    }

    // The filter form shows what is applied, and lists the routes that have decisions.
    const { text } = await pageText(setup, '/_guard/review?verdict=block&check=groundedness')
    expect(text).toContain('<option value="block" selected="">block</option>')
    expect(text).toContain('<option value="groundedness" selected="">groundedness</option>')
    for (const route of ['/ask', '/rag/invoke', '/v1/chat/completions']) {
      expect(text).toContain(`<option value="${route}">${route}</option>`)
    }
    // A decision opened from a filtered list links back to that list.
    const detail = await pageText(
      setup,
      `/_guard/review/${ids(50)[0]}?verdict=block&check=groundedness`,
    )
    expect(detail.text).toContain('href="/_guard/review?verdict=block&amp;check=groundedness"')
  })

  it('names the check that decided a flag or a block, and none for a pass (no check stopped it)', async () => {
    const setup = await storeGuard({ json: { answer: 'a' } }, judgeSays(0.9))
    const store = createDecisionStore({ db: setup.db, passRate: 1, content: false })
    await store.record(record(DAY + 1, 'pass', '/ask', 'groundedness', 0.95), {})
    await store.record(record(DAY + 2, 'flag', '/ask', 'groundedness', 0.4), {})
    const byVerdict = new Map((await storedRows(setup.db)).map((row) => [row.verdict, row.id]))
    const { text } = await pageText(setup, '/_guard/review')
    const decidedBy = (id: string) =>
      new RegExp(`<tr data-id="${id}">[\\s\\S]*?<td data-field="decided-by">([^<]*)</td>`).exec(
        text,
      )?.[1]
    expect(decidedBy(byVerdict.get('flag')!)).toBe('groundedness')
    expect(decidedBy(byVerdict.get('pass')!)).toBe('–')
    // The heading of the decision's own page says the same.
    const heading = async (id: string) =>
      /<h2>([\s\S]*?)<\/h2>/
        .exec((await pageText(setup, `/_guard/review/${id}`)).text)?.[1]
        ?.replace(/<[^>]+>/g, '')
    expect(await heading(byVerdict.get('pass')!)).toBe('pass · 0.9500 (shadow mode: not applied)')
    expect(await heading(byVerdict.get('flag')!)).toBe(
      'flag groundedness · 0.4000 (shadow mode: not applied)',
    )
  })

  it('says so when nothing matches', async () => {
    const setup = await storeGuard({ json: { answer: 'a' } }, judgeSays(0.9))
    const { text } = await pageText(setup, '/_guard/review?verdict=block')
    expect(text).toContain('No decisions match.')
  })
})

describe('the list at 100,000 rows', () => {
  /** Every filter the page offers, alone and together, on a first and a deep page. */
  const QUERIES: Array<Record<string, string>> = [
    {},
    { verdict: 'block' },
    { route: '/route-3' },
    { check: 'groundedness' },
    { check: 'none' },
    { from: '2026-11-20', to: '2026-11-22' },
    { min: '0.2', max: '0.4' },
    { labeled: 'no' },
    { labeled: 'yes' },
    { verdict: 'flag', route: '/route-1', check: 'sufficiency', min: '0.1' },
  ]

  it('reads every page through an index that keeps the order: no sort, no table scan', async () => {
    const db = await emptyStore()
    await db
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
        INSERT INTO decisions (id, time, request_id, route, mode, verdict, check_name, score,
          sample_rate, content, record)
        SELECT printf('%032x', i), ?1 + i * 6000, 'r' || i, '/route-' || (i % 5), 'shadow',
          CASE i % 10 WHEN 0 THEN 'block' WHEN 1 THEN 'flag' WHEN 2 THEN 'flag' ELSE 'pass' END,
          CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN 'groundedness' ELSE 'sufficiency' END,
          (i % 100) / 100.0, 1, 'not-stored', '{}' FROM n`,
      )
      .bind(Date.UTC(2026, 10, 1))
      .run()
    await db
      .prepare(
        `INSERT INTO reviews (decision_id, sufficient, reviewer, reviewed_at)
        SELECT id, 1, 'token:x', 0 FROM decisions WHERE time % 7 = 0`,
      )
      .run()

    for (const query of QUERIES) {
      const first = parseListQuery(query)
      const page = await listDecisions(db, first)
      // Newest first, each row matching.
      const times = page.rows.map((row) => row.time)
      expect(times, JSON.stringify(query)).toEqual([...times].sort((a, b) => b - a))
      if (query.verdict) expect(page.rows.every((row) => row.verdict === query.verdict)).toBe(true)
      if (query.route) expect(page.rows.every((row) => row.route === query.route)).toBe(true)

      const deep: ListRequest = {
        ...first,
        before: { time: Date.UTC(2026, 10, 2), id: 'f'.repeat(32) },
      }
      for (const request of [first, deep]) {
        const { sql, params } = listStatement(request, 51)
        const plan = await db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .bind(...params)
          .all<{ detail: string }>()
        const steps = plan.results.map((step) => step.detail)
        const where = `${JSON.stringify(query)}: ${steps.join(' | ')}`
        expect(
          steps.some((step) => /^(SCAN|SEARCH) d USING (COVERING )?INDEX decisions_/.test(step)),
          where,
        ).toBe(true)
        expect(
          steps.some((step) => step.includes('TEMP B-TREE')),
          where,
        ).toBe(false)
        expect(
          steps.some((step) => /^SCAN d$/.test(step)),
          where,
        ).toBe(false)
        expect(
          steps.some((step) => /^SCAN r/.test(step)),
          where,
        ).toBe(false)
        // What D1 bills and waits for: rows read, a few pages' worth, not the table.
        const read = await db
          .prepare(sql)
          .bind(...params)
          .all()
        expect(read.meta.rows_read, where).toBeLessThan(5_000)
      }
    }

    // The routes of the filter: one index seek each, not a scan of the rows.
    expect(await listRoutes(db)).toEqual([
      '/route-0',
      '/route-1',
      '/route-2',
      '/route-3',
      '/route-4',
    ])
  })
})
