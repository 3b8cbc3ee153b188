/**
 * Issue 18, labels: an operator opens a decision, labels each check with the form (which needs
 * its token: CSRF), and the labels come out of the export in the format `rag-guard calibrate`
 * reads — checked here by calibrate's own reader.
 */
import { describe, expect, it } from 'vitest'
import { calibrate, formatCalibration, loadScores } from '../../src/cli/calibrate'
import type { DecisionRecord } from '../../src/guard/decision-log'
import { saveLabels } from '../../src/review/queries'
import { checkFormToken, formToken, reviewKey, SESSION_HOURS } from '../../src/review/session'
import { createDecisionStore } from '../../src/review/store'
import { judgeSays } from '../guard-helpers'
import { OPERATOR_TOKEN_2 } from '../security/helpers'
import {
  ask,
  formPost,
  formTokenOf,
  ORIGIN,
  pageText,
  recordOf,
  storedRows,
  storeGuard,
  utf8,
} from './helpers'

const DOCUMENTS = ['A day pass costs $12.', 'Helmets are required for riders under 18.']
const ANSWER = 'A family day pass costs $30.'
const ROUTES = [
  { path: '/ask', format: 'json', answer: '/answer', checks: ['sufficiency', 'groundedness'] },
]
const judge = {
  rules: [
    { contains: 'family day pass costs', step: judgeSays(0.3) },
    { contains: 'blocks?', step: judgeSays(0.05) },
  ],
  otherwise: judgeSays(0.9),
}

/** A guard with a store, content on, both checks, and one flagged decision in it. */
async function withDecision() {
  const setup = await storeGuard({ json: { answer: ANSWER } }, judge, {
    STORE_CONTENT: true,
    GUARD_ROUTES: ROUTES,
  })
  await setup.send('/ask', ask('What does a day pass cost for a family?', DOCUMENTS))
  await setup.settle()
  const [row] = await storedRows(setup.db)
  return { ...setup, id: row!.id, row: row! }
}

async function reviewRow(db: D1Database, id: string) {
  return db.prepare('SELECT * FROM reviews WHERE decision_id = ?').bind(id).first()
}

describe('labeling a decision', () => {
  it('shows the question, the documents, the answer and each check’s score and reason', async () => {
    const setup = await withDecision()
    const { status, text } = await pageText(setup, `/_guard/review/${setup.id}`)
    expect(status).toBe(200)
    expect(text).toContain('What does a day pass cost for a family?')
    expect(text).toContain('Helmets are required for riders under 18.')
    expect(text).toContain(ANSWER)
    expect(text).toMatch(/<tr data-check="sufficiency">.*0\.9000/s)
    expect(text).toMatch(/<tr data-check="groundedness">.*0\.3000/s)
    expect(text).toContain('groundedness-2026-12-v1')
    expect(text).toContain('Context sufficient')
    expect(text).toContain('Answer hallucinated')
  })

  it('says "content not stored" when STORE_CONTENT is off', async () => {
    const setup = await storeGuard({ json: { answer: ANSWER } }, judge, { GUARD_ROUTES: ROUTES })
    await setup.send('/ask', ask('What does a day pass cost for a family?', DOCUMENTS))
    await setup.settle()
    const [row] = await storedRows(setup.db)
    const { text } = await pageText(setup, `/_guard/review/${row!.id}`)
    expect(text).toContain('Content not stored (STORE_CONTENT is off).')
    expect(text).not.toContain('What does a day pass cost for a family?')
    expect(text).not.toContain(ANSWER)
  })

  it('saves each check’s label and the note from the form, and shows them', async () => {
    const setup = await withDecision()
    const page = await pageText(setup, `/_guard/review/${setup.id}?verdict=flag`)
    const csrf = formTokenOf(page.text)

    const first = await setup.send(
      `/_guard/review/${setup.id}`,
      formPost({
        csrf,
        back: 'verdict=flag',
        sufficient: 'yes',
        note: 'The documents give the price per person.',
      }),
      'operator',
    )
    expect(first.status).toBe(303)
    expect(first.headers.get('location')).toBe(`/_guard/review/${setup.id}?verdict=flag&saved=1`)
    expect(await reviewRow(setup.db, setup.id)).toMatchObject({
      sufficient: 1,
      grounded: null,
      note: 'The documents give the price per person.',
      reviewer: expect.stringMatching(/^token:[0-9a-f]{12}$/),
    })

    // The other check, later: the first label and the note stay.
    const second = await setup.send(
      `/_guard/review/${setup.id}`,
      formPost({ csrf, grounded: 'no', note: 'The documents give the price per person.' }),
      'operator',
    )
    expect(second.status).toBe(303)
    expect(await reviewRow(setup.db, setup.id)).toMatchObject({ sufficient: 1, grounded: 0 })

    const shown = await pageText(setup, `/_guard/review/${setup.id}?saved=1`)
    expect(shown.text).toContain('Labels saved.')
    expect(shown.text).toMatch(/value="yes" class="yes" aria-pressed="true">Context sufficient/)
    expect(shown.text).toMatch(/value="no" class="no" aria-pressed="true">Answer hallucinated/)
    expect(shown.text).toContain('The documents give the price per person.</textarea>')
    const list = await pageText(setup, '/_guard/review')
    expect(list.text).toMatch(/<tr data-id="[0-9a-f]{32}">.*>sufficient<.*>hallucinated</s)

    // Clearing a label, and the note.
    await setup.send(
      `/_guard/review/${setup.id}`,
      formPost({ csrf, sufficient: 'clear', note: '' }),
      'operator',
    )
    expect(await reviewRow(setup.db, setup.id)).toMatchObject({
      sufficient: null,
      grounded: 0,
      note: null,
    })
  })

  it('refuses a value that is not a label, and a decision that does not exist', async () => {
    const setup = await withDecision()
    const csrf = formTokenOf((await pageText(setup, `/_guard/review/${setup.id}`)).text)
    const bad = await setup.send(
      `/_guard/review/${setup.id}`,
      formPost({ csrf, sufficient: 'maybe' }),
      'operator',
    )
    expect(bad.status).toBe(400)
    for (const id of ['0'.repeat(32), 'not-an-id']) {
      const missing = await setup.send(
        `/_guard/review/${id}`,
        formPost({ csrf, sufficient: 'yes' }),
        'operator',
      )
      expect(missing.status).toBe(404)
    }
    expect(await reviewRow(setup.db, setup.id)).toBeNull()
  })
})

describe('CSRF: a label form that is not this operator’s own', () => {
  it('is refused without its token, with another operator’s, or from another site, and nothing is saved', async () => {
    const setup = await withDecision()
    const path = `/_guard/review/${setup.id}`
    const mine = formTokenOf((await pageText(setup, path)).text)
    const theirs = formTokenOf((await pageText(setup, path, { token: OPERATOR_TOKEN_2 })).text)
    expect(theirs).not.toBe(mine)

    const attempts: Array<[string, RequestInit]> = [
      ['no token', formPost({ sufficient: 'no' })],
      ['an empty token', formPost({ csrf: '', sufficient: 'no' })],
      [
        'a forged token',
        formPost({ csrf: `${mine.split('.')[0]}.${'0'.repeat(64)}`, sufficient: 'no' }),
      ],
      ['another operator’s token', formPost({ csrf: theirs, sufficient: 'no' })],
      [
        'another origin',
        formPost({ csrf: mine, sufficient: 'no' }, { origin: 'https://evil.example' }),
      ],
      [
        'a cross-site request',
        formPost({ csrf: mine, sufficient: 'no' }, { 'sec-fetch-site': 'cross-site' }),
      ],
    ]
    for (const [what, init] of attempts) {
      const response = await setup.send(path, init, 'operator')
      expect(response.status, what).toBe(403)
      expect(await response.text(), what).toContain('Nothing was saved')
    }
    expect(await reviewRow(setup.db, setup.id)).toBeNull()

    // The same form from the page itself goes through.
    const own = await setup.send(
      path,
      formPost(
        { csrf: mine, sufficient: 'no' },
        { origin: ORIGIN, 'sec-fetch-site': 'same-origin' },
      ),
      'operator',
    )
    expect(own.status).toBe(303)
    expect(await reviewRow(setup.db, setup.id)).toMatchObject({ sufficient: 0 })
  })

  it('form tokens expire after the session’s hours, and are bound to one operator', async () => {
    const key = await reviewKey('secret')
    const now = Date.UTC(2026, 10, 24, 10)
    const token = await formToken(key, 'token:aaaaaaaaaaaa', now)
    expect(await checkFormToken(key, 'token:aaaaaaaaaaaa', token, now)).toBe(true)
    const later = now + (SESSION_HOURS - 1) * 3_600_000
    expect(await checkFormToken(key, 'token:aaaaaaaaaaaa', token, later)).toBe(true)
    const tooLate = now + (SESSION_HOURS + 1) * 3_600_000
    expect(await checkFormToken(key, 'token:aaaaaaaaaaaa', token, tooLate)).toBe(false)
    expect(await checkFormToken(key, 'token:bbbbbbbbbbbb', token, now)).toBe(false)
    const otherKey = await reviewKey('another secret')
    expect(await checkFormToken(otherKey, 'token:aaaaaaaaaaaa', token, now)).toBe(false)
  })
})

/** A decision of a route with both checks, as the guard records it. */
function record(index: number, sufficiency: number, groundedness: number): DecisionRecord {
  const worst = Math.min(sufficiency, groundedness)
  return {
    message: 'rag-guard decision',
    time: new Date(Date.UTC(2026, 10, 24, 10, 0, index)).toISOString(),
    requestId: `req-${index}`,
    route: '/ask',
    path: '/ask',
    method: 'POST',
    format: 'json',
    mode: 'shadow',
    verdict: worst < 0.2 ? 'block' : worst < 0.8 ? 'flag' : 'pass',
    applied: false,
    score: worst,
    check: sufficiency <= groundedness ? 'sufficiency' : 'groundedness',
    checks: {
      sufficiency: {
        verdict: 'pass',
        score: sufficiency,
        promptVersion: 'sufficiency-2026-12-v2',
      },
      groundedness: {
        verdict: 'pass',
        score: groundedness,
        promptVersion: 'groundedness-2026-12-v1',
      },
    },
    addedLatencyMs: 0,
    status: 200,
    model: 'gpt-4o-mini-2024-07-18',
    promptVersion: 'sufficiency-2026-12-v2',
    questionHash: `q${index}`,
    contextHash: `c${index}`,
  }
}

describe('the labels export', () => {
  /** Forty decisions with both scores; sufficiency labeled on all, groundedness on twelve. */
  async function labeledStore() {
    const setup = await storeGuard({ json: { answer: ANSWER } }, judge, { GUARD_ROUTES: ROUTES })
    const store = createDecisionStore({ db: setup.db, passRate: 1, content: false })
    for (let index = 0; index < 40; index++) {
      const sufficient = index % 2 === 0
      await store.record(record(index, sufficient ? 0.6 + index / 100 : index / 100, 0.5), {})
    }
    const rows = await storedRows(setup.db)
    for (const [index, row] of rows.entries()) {
      const sufficient = (recordOf(row).requestId as string).match(/\d+$/)![0]
      await saveLabels(
        setup.db,
        row.id,
        {
          sufficient: Number(sufficient) % 2 === 0,
          ...(index < 12 ? { grounded: index % 3 !== 0 } : {}),
        },
        'token:operator',
        Date.UTC(2026, 10, 25) + index,
      )
    }
    return { ...setup, rows }
  }

  it('has one line per labeled decision: its record and labels, never its content', async () => {
    const setup = await withDecision()
    const csrf = formTokenOf((await pageText(setup, `/_guard/review/${setup.id}`)).text)
    await setup.send(
      `/_guard/review/${setup.id}`,
      formPost({ csrf, grounded: 'no', note: 'private note' }),
      'operator',
    )
    const response = await setup.send('/_guard/labels.jsonl', {}, 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('application/jsonl; charset=utf-8')
    expect(response.headers.get('cache-control')).toBe('no-store')
    const text = await utf8(response)
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(lines).toHaveLength(1)
    const stored = recordOf(setup.row)
    expect(lines[0]).toEqual({
      ...stored,
      id: setup.id,
      grounded: false,
      labeledBy: expect.stringMatching(/^token:/),
      labeledAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    })
    expect(lines[0].checks.groundedness.score).toBe(0.3)
    expect(text).not.toContain('day pass')
    expect(text).not.toContain('private note')
  })

  it('gives each check’s labels apart with ?check=', async () => {
    const setup = await labeledStore()
    const count = async (query: string) => {
      const response = await setup.send(`/_guard/labels.jsonl${query}`, {}, 'operator')
      expect(response.status).toBe(200)
      return (await utf8(response)).trim().split('\n').filter(Boolean).length
    }
    expect(await count('')).toBe(40)
    expect(await count('?check=sufficiency')).toBe(40)
    expect(await count('?check=groundedness')).toBe(12)
    expect((await setup.send('/_guard/labels.jsonl?check=other', {}, 'operator')).status).toBe(400)
  })

  it('is read by `rag-guard calibrate`, per check, with the production labels counted and too few said', async () => {
    const setup = await labeledStore()
    const text = await utf8(await setup.send('/_guard/labels.jsonl', {}, 'operator'))

    const sufficiency = loadScores(text, 'labels.jsonl')
    expect(sufficiency.source).toBe('decision-log')
    expect(sufficiency.examples).toHaveLength(40)
    expect(sufficiency.production).toEqual({
      sufficiency: { labeled: 40, yes: 20, no: 20 },
      groundedness: { labeled: 12, yes: 8, no: 4 },
    })
    const report = calibrate(sufficiency, { passPrecision: 0.95, blockPrecision: 0.9 })
    // Twenty of each: enough for 95% (20) and for 90% (10).
    expect(report.tooFew).toEqual([])
    expect(report.thresholds).toBeDefined()
    const output = formatCalibration(report)
    expect(output).toContain(
      'production labels: sufficiency 40 (20 sufficient, 20 insufficient) · groundedness 12 (8 grounded, 4 hallucinated)',
    )
    expect(output).toMatch(/\nBLOCK_BELOW = [\d.]+\nFLAG_BELOW = [\d.]+$/)

    const groundedness = loadScores(text, 'labels.jsonl', undefined, undefined, 'groundedness')
    expect(groundedness.examples).toHaveLength(12)
    const few = calibrate(groundedness, { passPrecision: 0.95, blockPrecision: 0.9 })
    expect(few.tooFew).toEqual([
      'only 8 production groundedness labels are "grounded": a pass precision of 95% needs at least 20 (label 12 more)',
      'only 4 production groundedness labels are "hallucinated": a block precision of 90% needs at least 10 (label 6 more)',
    ])
    const fewOutput = formatCalibration(few)
    expect(fewOutput).toContain('RAG Guard calibration of groundedness: 12 labeled examples')
    expect(fewOutput).toContain('WARNING: only 8 production groundedness labels')
    expect(fewOutput).toContain('GROUNDEDNESS_FLAG_BELOW')
  })

  it('also serves as the labels file of a decision log from Workers Logs (joined by request id)', async () => {
    const setup = await labeledStore()
    const labels = await utf8(await setup.send('/_guard/labels.jsonl', {}, 'operator'))
    const log = setup.rows.map((row) => row.record).join('\n')
    const loaded = loadScores(log, 'decisions.log', labels)
    expect(loaded.examples).toHaveLength(40)
    expect(loaded.production?.sufficiency.labeled).toBe(40)
  })
})
