/**
 * Issue 24, findings 8 and 9: what the decision store keeps of batch traffic, and how much of
 * one caller's content it keeps. A LangServe `/batch` stores each judged item as its own
 * decision, with its question, documents and answer (STORE_CONTENT), reviewable like a single
 * request. The content one caller can put in the store is capped per hour
 * (STORE_CONTENT_HOURLY_BYTES): past it, decisions are still stored, without their text, and the
 * drop is counted and logged.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DecisionRecord } from '../../src/guard/decision-log'
import { createDecisionStore } from '../../src/review/store'
import { judgeSays } from '../guard-helpers'
import { CALLER_TOKEN_2, post } from '../security/helpers'
import { ask, emptyStore, pageText, recordOf, storedRows, storeGuard } from './helpers'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('finding 8: a batch is stored item by item', () => {
  const inputs = [
    'Q-PASS What does a day pass cost?',
    'Q-BLOCK Who makes the bikes?',
    'Q-FLAG How long?',
  ]
  const output = inputs.map((input, index) => ({
    input,
    context: [{ page_content: `DOCUMENT-${index} of the batch`, metadata: {}, type: 'Document' }],
    answer: `ANSWER-${index} of the batch`,
  }))
  const judge = {
    rules: [
      { contains: 'Q-BLOCK', step: judgeSays(0.05) },
      { contains: 'Q-FLAG', step: judgeSays(0.5) },
    ],
    otherwise: judgeSays(0.95),
  }

  it('each judged item is a row with its own question, documents, answer, verdict and score', async () => {
    const setup = await storeGuard({ json: { output, metadata: {} } }, judge, {
      STORE_CONTENT: true,
      GUARD_ROUTES: [{ path: '/rag', format: 'langserve' }],
    })
    const response = await setup.send('/rag/batch', post({ inputs, config: {}, kwargs: {} }))
    expect(response.status).toBe(200)
    await response.body?.cancel()
    await setup.settle()

    const rows = await storedRows(setup.db)
    expect(rows).toHaveLength(3)
    const byQuestion = new Map(rows.map((row) => [row.question, row]))
    for (const [index, input] of inputs.entries()) {
      const row = byQuestion.get(input)
      expect(row, input).toBeDefined()
      expect(row!.content).toBe('stored')
      expect(JSON.parse(row!.documents!)).toEqual([`DOCUMENT-${index} of the batch`])
      expect(row!.answer).toBe(`ANSWER-${index} of the batch`)
      expect(recordOf(row!).batchItem).toEqual({ index, size: 3 })
    }
    expect(byQuestion.get(inputs[0]!)!.verdict).toBe('pass')
    expect(byQuestion.get(inputs[1]!)!.verdict).toBe('block')
    expect(byQuestion.get(inputs[1]!)!.score).toBeCloseTo(0.05, 9)
    expect(byQuestion.get(inputs[2]!)!.verdict).toBe('flag')

    // Reviewable like a single request: the detail page shows the item's own text.
    const blocked = byQuestion.get(inputs[1]!)!
    const { status, text } = await pageText(setup, `/_guard/review/${blocked.id}`)
    expect(status).toBe(200)
    expect(text).toContain('Q-BLOCK Who makes the bikes?')
    expect(text).toContain('DOCUMENT-1 of the batch')
    expect(text).toContain('ANSWER-1 of the batch')
    expect(text).not.toContain('ANSWER-0 of the batch')
    expect(text).toContain('item 2 of 3')
  })
})

describe('finding 9: the content one caller can store is capped per hour', () => {
  const DOCUMENTS = ['D'.repeat(400)]
  const judge = { rules: [], otherwise: judgeSays(0.05) }

  it('past the cap, decisions are stored without their text; another caller still has its own room', async () => {
    const logs: string[] = []
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => {
      logs.push(String(line))
    })
    const setup = await storeGuard({ json: { answer: 'An answer.' } }, judge, {
      STORE_CONTENT: true,
      STORE_CONTENT_HOURLY_BYTES: 1000,
    })
    // About 420 bytes each: two fit under 1,000, the third does not.
    for (const question of ['first?', 'second?', 'third?', 'fourth?']) {
      const response = await setup.send('/ask', ask(question, DOCUMENTS))
      expect(response.status).toBe(200)
      await setup.settle()
    }
    const other = await setup.send('/ask', ask('other caller?', DOCUMENTS), {
      token: CALLER_TOKEN_2,
    })
    expect(other.status).toBe(200)
    await setup.settle()

    const rows = await storedRows(setup.db)
    expect(rows.map((row) => [row.question, row.content])).toEqual([
      ['first?', 'stored'],
      ['second?', 'stored'],
      [null, 'capped'],
      [null, 'capped'],
      ['other caller?', 'stored'],
    ])
    for (const row of rows.filter((row) => row.content === 'capped')) {
      // The decision itself is all there: verdict, score, hashes, the record.
      expect(row.verdict).toBe('block')
      expect(row.score).toBeCloseTo(0.05, 9)
      expect(row.question_hash).toMatch(/^[0-9a-f]{64}$/)
      expect([row.documents, row.answer]).toEqual([null, null])
      expect(row.record).not.toContain('DDDD')
    }
    const capped = logs.filter((line) => line.includes('"content-capped"'))
    expect(capped.length).toBeGreaterThanOrEqual(1)
    expect(capped[0]).toContain('token:')
    expect(capped.join('\n')).not.toContain('DDDD')
  })

  it('counts a batch’s text together: stored whole while it fits, else every item without text', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const inputs = ['first item?', 'second item?']
    const output = inputs.map((input) => ({
      input,
      context: [{ page_content: 'D'.repeat(300), metadata: {}, type: 'Document' }],
      answer: 'An answer.',
    }))
    const setup = await storeGuard({ json: { output, metadata: {} } }, judge, {
      STORE_CONTENT: true,
      STORE_CONTENT_HOURLY_BYTES: 1000,
      GUARD_ROUTES: [{ path: '/rag', format: 'langserve' }],
    })
    // About 330 bytes an item, 660 a batch: the first batch fits under 1,000, the second does not.
    for (let batch = 0; batch < 2; batch++) {
      const response = await setup.send('/rag/batch', post({ inputs, config: {}, kwargs: {} }))
      expect(response.status).toBe(200)
      await response.body?.cancel()
      await setup.settle()
    }
    const rows = await storedRows(setup.db)
    expect(rows.map((row) => row.content).sort()).toEqual(['capped', 'capped', 'stored', 'stored'])
    for (const row of rows) expect(row.verdict).toBe('block')
  })

  it('counts the capped decisions, per isolate', async () => {
    const db = await emptyStore()
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const store = createDecisionStore({ db, passRate: 1, content: true, contentHourlyBytes: 100 })
    const record = (question: string): DecisionRecord => ({
      message: 'rag-guard decision',
      time: new Date().toISOString(),
      requestId: `req-${question}`,
      route: '/ask',
      path: '/ask',
      method: 'POST',
      format: 'json',
      mode: 'shadow',
      verdict: 'block',
      applied: false,
      score: 0.05,
      caller: 'token:abcdefabcdef',
      addedLatencyMs: 0,
      status: 200,
      promptVersion: 'v',
    })
    await store.record(record('a'), { question: 'a', documents: ['x'.repeat(60)] })
    await store.record(record('b'), { question: 'b', documents: ['x'.repeat(60)] })
    expect(store.counts).toMatchObject({ stored: 2, capped: 1 })
    const rows = await storedRows(db)
    expect(rows.map((row) => row.content).sort()).toEqual(['capped', 'stored'])
  })
})
