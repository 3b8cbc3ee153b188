/**
 * Issue 18, retention: the Worker's scheduled handler (the cron trigger of wrangler.toml) purges
 * what is older than STORE_RETENTION_DAYS — decisions nobody labeled go whole, labeled ones keep
 * their scores and labels but lose their text — in bounded batches.
 */
import {
  createExecutionContext,
  createScheduledController,
  waitOnExecutionContext,
} from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DecisionRecord } from '../../src/guard/decision-log'
import { PURGE_BATCH, PURGE_MAX_BATCHES, purgeDecisions } from '../../src/review/purge'
import { saveLabels } from '../../src/review/queries'
import { createDecisionStore } from '../../src/review/store'
import worker from '../../src/worker'
import { judgeSays } from '../guard-helpers'
import { storedRows, storeGuard } from './helpers'

const DAY_MS = 86_400_000

function record(time: number, question: string): DecisionRecord {
  return {
    message: 'rag-guard decision',
    time: new Date(time).toISOString(),
    requestId: question,
    route: '/ask',
    path: '/ask',
    method: 'POST',
    format: 'json',
    mode: 'shadow',
    verdict: 'flag',
    applied: false,
    score: 0.4,
    check: 'sufficiency',
    addedLatencyMs: 0,
    status: 200,
    promptVersion: 'sufficiency-2026-12-v2',
  }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('the scheduled retention purge', () => {
  it('deletes old unlabeled decisions, strips the text of old labeled ones, and keeps recent ones', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => {})
    const setup = await storeGuard({ json: { answer: 'x' } }, judgeSays(0.9), {
      STORE_RETENTION_DAYS: 30,
    })
    const now = Date.now()
    const store = createDecisionStore({ db: setup.db, passRate: 1, content: true })
    const content = (question: string) => ({ question, documents: ['doc'], answer: 'answer' })
    for (const [age, question] of [
      [41, 'old, unlabeled'],
      [40, 'old, labeled'],
      [29, 'recent, unlabeled'],
      [28, 'recent, labeled'],
    ] as const) {
      await store.record(record(now - age * DAY_MS, question), content(question))
    }
    for (const row of await storedRows(setup.db)) {
      if (row.request_id.endsWith(', labeled')) {
        await saveLabels(setup.db, row.id, { sufficient: false, note: 'n' }, 'token:x', now)
      }
    }

    const ctx = createExecutionContext()
    await worker.scheduled!(
      createScheduledController({ scheduledTime: now, cron: '23 * * * *' }),
      setup.env,
      ctx,
    )
    await waitOnExecutionContext(ctx)

    const rows = await storedRows(setup.db)
    expect(rows.map((row) => [row.request_id, row.content, row.question])).toEqual([
      ['old, labeled', 'purged', null],
      ['recent, unlabeled', 'stored', 'recent, unlabeled'],
      ['recent, labeled', 'stored', 'recent, labeled'],
    ])
    const old = rows[0]!
    expect([old.documents, old.answer, old.score, old.question_hash]).toEqual([
      null,
      null,
      0.4,
      old.question_hash,
    ])
    const labels = await setup.db
      .prepare('SELECT decision_id, sufficient FROM reviews ORDER BY decision_id')
      .all()
    expect(labels.results).toHaveLength(2)
  })

  it('does nothing without a store', async () => {
    const logged = vi.spyOn(console, 'log').mockImplementation(() => {})
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    const setup = await storeGuard({ json: { answer: 'x' } }, judgeSays(0.9), {
      GUARD_DB: undefined,
    })
    const ctx = createExecutionContext()
    await worker.scheduled!(
      createScheduledController({ scheduledTime: Date.now() }),
      setup.env,
      ctx,
    )
    await waitOnExecutionContext(ctx)
    expect(logged).not.toHaveBeenCalled()
    expect(errors).not.toHaveBeenCalled()
  })

  it('works in bounded batches: a run that cannot finish leaves the rest to the next', async () => {
    const setup = await storeGuard({ json: { answer: 'x' } }, judgeSays(0.9))
    const now = Date.now()
    const rows = PURGE_BATCH * PURGE_MAX_BATCHES + 1
    await setup.db
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO decisions (id, time, request_id, route, mode, verdict, sample_rate, content, record)
        SELECT printf('%032x', i), ?, 'r', '/ask', 'shadow', 'pass', 1, 'not-stored', '{}' FROM n`,
      )
      .bind(rows, now - 90 * DAY_MS)
      .run()

    expect(await purgeDecisions(setup.db, 30, now)).toEqual({
      deleted: PURGE_BATCH * PURGE_MAX_BATCHES,
      contentPurged: 0,
      complete: false,
    })
    expect(await purgeDecisions(setup.db, 30, now)).toEqual({
      deleted: 1,
      contentPurged: 0,
      complete: true,
    })
    expect(await storedRows(setup.db)).toEqual([])
  })
})
