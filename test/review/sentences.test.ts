/**
 * Groundedness per sentence in the decision store and on the review page: the stored record keeps
 * each sentence's score and verdict, the answer-level (lowest) score stays in its column and in
 * the labels export (which `rag-guard calibrate` reads), and the page shows each sentence with its
 * score, the unsupported ones marked in words as well as colour, with no script.
 */
import { describe, expect, it } from 'vitest'
import { loadScores } from '../../src/cli/calibrate'
import { overviewView, timeAxis } from '../../src/review/overview'
import { judgeLine } from '../guard-helpers'
import {
  ask,
  formPost,
  formTokenOf,
  pageText,
  recordOf,
  storedRows,
  storeGuard,
  utf8,
} from './helpers'

const DOCUMENTS = ['A day pass costs $12 and includes rides of up to 45 minutes.']
const ANSWER = 'A day pass costs $12. It includes rides of up to 45 minutes. Children ride free.'

async function withDecision(content = true) {
  const setup = await storeGuard(
    { json: { answer: ANSWER } },
    { lines: [judgeLine(0.95), judgeLine(0.3), judgeLine(0.02)] },
    {
      STORE_CONTENT: content,
      GUARD_CHECKS: 'groundedness',
      GROUNDEDNESS_GRANULARITY: 'sentence',
      ON_UNGROUNDED: 'repair',
      GUARD_ROUTES: [{ path: '/ask', format: 'json', answer: '/answer' }],
    },
  )
  await setup.send('/ask', ask('What does a day pass cost?', DOCUMENTS))
  await setup.settle()
  const [row] = await storedRows(setup.db)
  return { ...setup, row: row! }
}

describe('per-sentence groundedness in the store and on the review page', () => {
  it('the stored record keeps each sentence’s score and verdict; the column keeps the lowest', async () => {
    const { row } = await withDecision()
    expect(row.groundedness_score).toBeCloseTo(0.02, 9)
    expect(row.reason).toBe('repaired')
    const record = recordOf(row)
    expect(record).toMatchObject({
      granularity: 'sentence',
      repaired: { removed: [3], sentences: 3 },
      sentences: [
        { sentence: 1, verdict: 'pass', score: expect.closeTo(0.95, 9) },
        { sentence: 2, verdict: 'flag', score: expect.closeTo(0.3, 9) },
        { sentence: 3, verdict: 'block', score: expect.closeTo(0.02, 9) },
      ],
    })
    // The answer stored is the one the upstream wrote (what was judged), not the repaired one.
    expect(row.answer).toBe(ANSWER)
  })

  it('the page shows each sentence with its score, the unsupported one tagged in words, no script', async () => {
    const setup = await withDecision()
    const { status, text } = await pageText(setup, `/_guard/review/${setup.row.id}`)
    expect(status).toBe(200)
    expect(text).not.toContain('<script')
    expect(text).toMatch(
      /<span class="sentence pass" data-sentence="1">A day pass costs \$12\. <span class="tag">\[1: 0\.9500 supported\]<\/span>/,
    )
    expect(text).toContain('[2: 0.3000 doubtful]')
    expect(text).toMatch(
      /<span class="sentence block" data-sentence="3">Children ride free\. <span class="tag">\[3: 0\.0200 unsupported, removed\]<\/span>/,
    )
  })

  it('without the answer’s text, the page lists the sentences’ scores', async () => {
    const setup = await withDecision(false)
    const { text } = await pageText(setup, `/_guard/review/${setup.row.id}`)
    expect(text).toContain('Content not stored')
    expect(text).toContain('<li>[3: 0.0200 unsupported, removed]</li>')
  })

  it('the labels export keeps the answer-level label and score (the lowest), which calibrate reads', async () => {
    const setup = await withDecision()
    const csrf = formTokenOf((await pageText(setup, `/_guard/review/${setup.row.id}`)).text)
    await setup.send(
      `/_guard/review/${setup.row.id}`,
      formPost({ csrf, grounded: 'no' }),
      'operator',
    )
    const text = await utf8(await setup.send('/_guard/labels.jsonl', {}, 'operator'))
    const [exported] = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(exported!.score).toBeCloseTo(0.02, 9)
    expect(exported!.grounded).toBe(false)
    expect((exported!.sentences as unknown[]).length).toBe(3)
    const scores = loadScores(text, 'labels.jsonl', undefined, undefined, 'groundedness')
    expect(scores.examples).toEqual([
      { id: expect.any(String), score: expect.closeTo(0.02, 9), sufficient: false },
    ])
  })

  it('the overview counts a repaired answer as the flag it is, not as unjudged', () => {
    const view = overviewView(
      {
        decisions: [
          { slot: 0, verdict: 'flag', mode: 'enforce', reason: 'repaired', n: 3 },
          { slot: 0, verdict: 'block', mode: 'enforce', reason: 'judge-timeout', n: 1 },
        ],
        checks: [],
        earlier: [],
        labels: [],
        routes: [],
      },
      timeAxis('24h', Date.now()),
    )
    expect(view.reasons.map((series) => series.name)).toEqual(['judge-timeout'])
    expect(view.verdicts.find((series) => series.kind === 'flag')!.values[0]).toBe(3)
  })
})
