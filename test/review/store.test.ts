/**
 * Issue 18, the decision store: every decision written to D1 (Miniflare's local D1, the schema of
 * src/review/migrations/) after the response, with the decision log's fields; content only when the operator
 * allows it; passes sampled; a store that fails never seen by the client.
 */
import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DecisionRecord } from '../../src/guard/decision-log'
import {
  createDecisionStore,
  decisionRow,
  MAX_PENDING_WRITES,
  MAX_STORED_CHARS,
} from '../../src/review/store'
import { judgeSays } from '../guard-helpers'
import { documentsHash, secureGuard, sha256Hex } from '../security/helpers'
import { ask, emptyStore, recordOf, STORE_ENV, storedRows, storeGuard } from './helpers'

const DOCUMENTS = ['A day pass costs $12.', 'Helmets are required for riders under 18.']
const ANSWER = 'A day pass costs $12. ANSWER-MARK'
const upstream = { json: { answer: ANSWER } }

/** The judge: P(True) by the question it is asked about. */
const judge = {
  rules: [
    // Only the groundedness prompt holds the answer.
    { contains: 'ANSWER-MARK', step: judgeSays(0.9) },
    { contains: 'passes?', step: judgeSays(0.95) },
    { contains: 'flags?', step: judgeSays(0.5) },
    { contains: 'blocks?', step: judgeSays(0.05) },
  ],
  otherwise: judgeSays(0.9),
}

/** A decision record as the guard makes it, for the store on its own. */
function record(verdict: 'pass' | 'flag' | 'block', extra: Partial<DecisionRecord> = {}) {
  return {
    message: 'rag-guard decision',
    time: '2026-11-24T10:02:11.512Z',
    requestId: `req-${crypto.randomUUID()}`,
    route: '/ask',
    path: '/ask',
    method: 'POST',
    format: 'json',
    mode: 'shadow',
    verdict,
    applied: false,
    score: verdict === 'pass' ? 0.9 : 0.3,
    check: 'sufficiency',
    addedLatencyMs: 0,
    status: 200,
    promptVersion: 'sufficiency-2026-12-v2',
    ...extra,
  } satisfies DecisionRecord
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('the decision store', () => {
  it('stores each decision after the response, with the decision log’s fields and hashes, and no content by default', async () => {
    const setup = await storeGuard(upstream, judge)
    for (const question of ['Which one passes?', 'Which one flags?', 'Which one blocks?']) {
      const response = await setup.send('/ask', ask(question, DOCUMENTS))
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({ answer: ANSWER })
    }
    await setup.settle()

    const rows = await storedRows(setup.db)
    // Scores computed from logprobs: equal to 4 decimals (the last bit depends on the runtime's Math.exp).
    expect(rows.map((row) => [row.verdict, Number(row.score!.toFixed(4))])).toEqual(
      expect.arrayContaining([
        ['pass', 0.95],
        ['flag', 0.5],
        ['block', 0.05],
      ]),
    )
    expect(rows).toHaveLength(3)
    const flagged = rows.find((row) => row.verdict === 'flag')!
    expect(flagged.id).toMatch(/^[0-9a-f]{32}$/)
    expect(flagged.route).toBe('/ask')
    expect(flagged.mode).toBe('shadow')
    expect(flagged.check_name).toBe('sufficiency')
    expect(flagged.sufficiency_score).toBe(0.5)
    expect(flagged.groundedness_score).toBeNull()
    expect(flagged.sample_rate).toBe(1)
    expect(flagged.question_hash).toBe(await sha256Hex('Which one flags?'))
    expect(flagged.context_hash).toBe(await documentsHash(DOCUMENTS))
    expect(flagged.content).toBe('not-stored')
    expect([flagged.question, flagged.documents, flagged.answer]).toEqual([null, null, null])
    expect(Math.abs(flagged.time - Date.now())).toBeLessThan(60_000)

    const stored = recordOf(flagged)
    expect(stored).toMatchObject({
      message: 'rag-guard decision',
      route: '/ask',
      verdict: 'flag',
      score: 0.5,
      check: 'sufficiency',
      promptVersion: 'sufficiency-2026-12-v2',
      questionChars: 'Which one flags?'.length,
      contextDocuments: 2,
      questionHash: flagged.question_hash,
      contextHash: flagged.context_hash,
    })
    expect(stored.requestId).toBe(flagged.request_id)
    expect(stored.caller).toMatch(/^token:[0-9a-f]{12}$/)
    expect(JSON.stringify(stored)).not.toContain('day pass')
  })

  it('stores the question, the documents and the answer only with STORE_CONTENT on', async () => {
    const setup = await storeGuard(upstream, judge, {
      STORE_CONTENT: true,
      GUARD_ROUTES: [
        {
          path: '/ask',
          format: 'json',
          answer: '/answer',
          checks: ['sufficiency', 'groundedness'],
        },
      ],
    })
    await setup.send('/ask', ask('Which one flags?', DOCUMENTS))
    await setup.settle()

    const [row] = await storedRows(setup.db)
    expect(row!.content).toBe('stored')
    expect(row!.question).toBe('Which one flags?')
    expect(JSON.parse(row!.documents!)).toEqual(DOCUMENTS)
    expect(row!.answer).toBe(ANSWER)
    // Each check's score has its own column; the record keeps no content even so.
    expect(row!.sufficiency_score).toBe(0.5)
    expect(row!.groundedness_score).toBe(0.9)
    expect(row!.record).not.toContain('day pass')
  })

  it('stores no answer where the guard never reads one (sufficiency alone, context in the request)', async () => {
    const setup = await storeGuard(upstream, judge, { STORE_CONTENT: true })
    await setup.send('/ask', ask('Which one flags?', DOCUMENTS))
    await setup.settle()

    const [row] = await storedRows(setup.db)
    expect(row!.question).toBe('Which one flags?')
    expect(row!.answer).toBeNull()
  })

  it('keeps content out of the store when only LOG_CONTENT is on', async () => {
    const logged: string[] = []
    vi.spyOn(console, 'log').mockImplementation((line: string) => void logged.push(line))
    const setup = await storeGuard(upstream, judge, { LOG_CONTENT: true, LOG_DECISIONS: true })
    await setup.send('/ask', ask('Which one flags?', DOCUMENTS))
    await setup.settle()

    // The log has the content (LOG_CONTENT), the store does not (STORE_CONTENT is off).
    expect(logged.some((line) => line.includes('"question":"Which one flags?"'))).toBe(true)
    const [row] = await storedRows(setup.db)
    expect(row!.content).toBe('not-stored')
    expect([row!.question, row!.documents, row!.answer]).toEqual([null, null, null])
    expect(row!.record).not.toContain('Which one flags?')
    expect(row!.record).not.toContain('day pass')
  })

  it('always stores flags and blocks, and no pass at STORE_PASS_RATE 0', async () => {
    const setup = await storeGuard(upstream, judge, { STORE_PASS_RATE: 0 })
    for (const question of ['passes?', 'passes? again', 'flags?', 'blocks?']) {
      expect((await setup.send('/ask', ask(question, DOCUMENTS))).status).toBe(200)
    }
    await setup.settle()

    const rows = await storedRows(setup.db)
    expect(rows.map((row) => row.verdict).sort()).toEqual(['block', 'flag'])
    expect(rows.every((row) => row.sample_rate === 1)).toBe(true)
  })

  it('stores a refused request as a block with its reason and no check', async () => {
    const setup = await storeGuard(upstream, judge, { GUARD_MODE: 'enforce' })
    const response = await setup.send('/ask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"question": 42}',
    })
    expect(response.status).toBe(400)
    await setup.settle()

    const [row] = await storedRows(setup.db)
    expect(row).toMatchObject({
      verdict: 'block',
      reason: 'invalid-question',
      check_name: null,
      mode: 'enforce',
    })
  })
})

describe('pass sampling', () => {
  it('keeps passes at the pass rate, by the draw, and records the rate with each', async () => {
    const db = await emptyStore()
    const draws = [0.1, 0.3, 0.2, 0.9, 0.24, 0.26]
    const store = createDecisionStore({
      db,
      passRate: 0.25,
      content: false,
      random: () => draws.shift()!,
    })
    for (let index = 0; index < 6; index++) await store.record(record('pass'), {})
    // Flags and blocks take no draw.
    await store.record(record('flag'), {})
    await store.record(record('block'), {})

    expect(draws).toEqual([])
    expect(store.counts).toEqual({ stored: 5, sampledOut: 3, failed: 0, dropped: 0, capped: 0 })
    const rows = await storedRows(db)
    expect(rows.filter((row) => row.verdict === 'pass').map((row) => row.sample_rate)).toEqual([
      0.25, 0.25, 0.25,
    ])
    expect(rows.filter((row) => row.verdict !== 'pass').map((row) => row.sample_rate)).toEqual([
      1, 1,
    ])
  })
})

describe('a store that fails', () => {
  it('is invisible to the client: the same status, headers and body as without a store', async () => {
    const errors: string[] = []
    vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line))
    const withoutStore = await secureGuard(upstream, judge, STORE_ENV)
    // EMPTY_DB has no tables: every write fails.
    const broken = await secureGuard(upstream, judge, { ...STORE_ENV, GUARD_DB: env.EMPTY_DB })

    for (const question of ['Which one flags?', 'Which one blocks?']) {
      const expected = await withoutStore.send('/ask', ask(question, DOCUMENTS), 'operator')
      const actual = await broken.send('/ask', ask(question, DOCUMENTS), 'operator')
      expect(actual.status).toBe(expected.status)
      expect(Object.fromEntries(actual.headers)).toEqual(Object.fromEntries(expected.headers))
      expect(await actual.text()).toBe(await expected.text())
    }
    await broken.settle()

    const failures = errors
      .filter((line) => line.includes('"message":"rag-guard store"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(failures).toHaveLength(2)
    expect(failures[1]).toMatchObject({ event: 'write-failed', failed: 2, stored: 0 })
    expect(String(failures[1]!.error)).toContain('no such table')
  })

  it('never rejects, and counts what failed', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const throwing = {
      prepare() {
        throw new Error('D1 is down')
      },
    } as unknown as D1Database
    const store = createDecisionStore({ db: throwing, passRate: 1, content: true })
    await expect(store.record(record('flag'), { question: 'q' })).resolves.toBeUndefined()
    expect(store.counts.failed).toBe(1)
  })

  it('does not hold up the response: a write that has not finished does not delay it', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let writes = 0
    const slow = {
      prepare: () => ({
        bind: () => ({
          run: async () => {
            writes++
            await gate
            return { success: true, meta: {} }
          },
        }),
      }),
      // The rollups' flush (a batch of upserts) succeeds at once: only the decision's write waits.
      batch: async () => [],
    } as unknown as D1Database
    const setup = await secureGuard(upstream, judge, { ...STORE_ENV, GUARD_DB: slow })

    const response = await setup.send('/ask', ask('Which one flags?', DOCUMENTS))
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ answer: ANSWER })
    // The write was started, and is still waiting, while the client already has its answer.
    await vi.waitFor(() => expect(writes).toBe(1))
    release()
    await setup.settle()
  })

  it('keeps at most MAX_PENDING_WRITES writes waiting, and drops (and counts) the rest', async () => {
    const lines: string[] = []
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const slow = {
      prepare: () => ({ bind: () => ({ run: () => gate.then(() => ({ meta: {} })) }) }),
    } as unknown as D1Database
    const store = createDecisionStore({
      db: slow,
      passRate: 1,
      content: false,
      log: (line) => void lines.push(line),
    })
    const writes = Array.from({ length: MAX_PENDING_WRITES + 5 }, () =>
      store.record(record('block'), {}),
    )
    expect(store.counts.dropped).toBe(5)
    release()
    await Promise.all(writes)
    expect(store.counts).toEqual({
      stored: MAX_PENDING_WRITES,
      sampledOut: 0,
      failed: 0,
      dropped: 5,
      capped: 0,
    })
    // One line for the first drop, not one per drop.
    expect(lines.map((line) => JSON.parse(line).event)).toEqual(['write-dropped'])
  })
})

describe('decisionRow', () => {
  it('cuts each text to MAX_STORED_CHARS, keeping whole documents first', () => {
    const long = 'x'.repeat(MAX_STORED_CHARS + 100)
    const documents = ['first', 'y'.repeat(MAX_STORED_CHARS)]
    const row = decisionRow(
      record('flag'),
      { question: long, documents, answer: long },
      { content: true, sampleRate: 1, id: '0'.repeat(32) },
    )
    expect(row.question).toHaveLength(MAX_STORED_CHARS)
    expect(row.answer).toHaveLength(MAX_STORED_CHARS)
    expect(row.documents!.length).toBeLessThanOrEqual(MAX_STORED_CHARS)
    const stored = JSON.parse(row.documents!) as string[]
    expect(stored[0]).toBe('first')
    expect(stored[1]!.length).toBeGreaterThan(MAX_STORED_CHARS / 3)
  })

  it('reads each check’s score from a record of several checks', () => {
    const row = decisionRow(
      record('block', {
        score: 0.1,
        check: 'groundedness',
        checks: {
          sufficiency: { verdict: 'pass', score: 0.93 },
          groundedness: { verdict: 'block', score: 0.1 },
        },
      }),
      {},
      { content: false, sampleRate: 1, id: '1'.repeat(32) },
    )
    expect([row.check_name, row.score, row.sufficiency_score, row.groundedness_score]).toEqual([
      'groundedness',
      0.1,
      0.93,
      0.1,
    ])
  })
})
