/**
 * Issue 16 in the command line: `rag-guard eval` with an answer and a label per check, one score
 * per check; `rag-guard calibrate` per check and for the combined verdict (the most severe of
 * both). The figures are checked against tiny datasets computed by hand in the comments.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStandInModel, STAND_IN_MODEL, type StandInServer } from '../../samples/stand-in-model'
import { calibrate, formatCalibration, loadChecks, loadScores } from '../../src/cli/calibrate'
import {
  combine,
  formatCombined,
  pairStats,
  recommendPair,
  type CombinedExample,
} from '../../src/cli/combined'
import { DataError, parseLabel, readExamples } from '../../src/cli/data'
import { alreadyJudged, runEval } from '../../src/cli/eval'
import { CALIBRATE_OPTIONS, EVAL_OPTIONS, USAGE } from '../../src/cli/main'
import { lineLabel } from '../../src/cli/production'
import { renderReports } from '../../src/cli/report'
import { createJudge } from '../../src/judge/judge'
import { startOpenAIStub, type OpenAIStub, type RecordedRequest } from '../stub/openai-stub'

const ROOT = join(import.meta.dirname, '../..')
const HALUEVAL = join(ROOT, 'samples/data/halueval-qa-sample.jsonl')
const SQUAD = join(ROOT, 'samples/data/squad2-sample.jsonl')
const temporary = () => mkdtempSync(join(tmpdir(), 'rag-guard-checks-'))
const jsonl = (rows: object[]) => rows.map((row) => JSON.stringify(row)).join('\n')

function problems(text: string, checks?: Array<'sufficiency' | 'groundedness'>): string {
  try {
    readExamples(text, 'data.jsonl', { checks })
  } catch (error) {
    expect(error).toBeInstanceOf(DataError)
    return (error as Error).message
  }
  throw new Error('no problem reported')
}

describe('eval input: an answer and a label per check', () => {
  it('reads the HaluEval sample as it is: 200 answers labeled for groundedness, so that is the check run', () => {
    const read = readExamples(readFileSync(HALUEVAL, 'utf8'), 'halueval')
    expect(read.examples).toHaveLength(200)
    expect(read.checks).toEqual(['groundedness'])
    expect(read.labeled).toEqual({ sufficiency: 0, groundedness: 200 })
    expect(read.examples.filter((example) => example.grounded)).toHaveLength(100)
    expect(read.examples.every((example) => typeof example.answer === 'string')).toBe(true)
  })

  it('runs the checks the lines have labels for (sufficiency when none has any), or those asked for', () => {
    const both = jsonl([
      { question: 'q', context: 'c', answer: 'a', sufficient: true },
      { question: 'q', context: 'c', answer: 'a', grounded: 'hallucinated' },
    ])
    expect(readExamples(both, 'x').checks).toEqual(['sufficiency', 'groundedness'])
    expect(readExamples(both, 'x', { checks: ['groundedness', 'sufficiency'] }).checks).toEqual([
      'sufficiency',
      'groundedness',
    ])
    expect(readExamples(readFileSync(SQUAD, 'utf8'), 'squad').checks).toEqual(['sufficiency'])
    const unlabeled = jsonl([{ question: 'q', context: 'c' }])
    expect(readExamples(unlabeled, 'x', { requireLabel: false }).checks).toEqual(['sufficiency'])
  })

  it('takes the review page’s words for groundedness, in "grounded", with the same definition calibrate reads', () => {
    const text = jsonl([
      { id: 'g1', question: 'q', context: 'c', answer: 'a', grounded: 'Grounded' },
      { id: 'g2', question: 'q', context: 'c', answer: 'a', grounded: 'hallucinated' },
      { id: 'g3', question: 'q', context: 'c', answer: 'a', grounded: 0, label: 'answerable' },
      { id: 'g4', question: 'q', context: 'c', answer: 'a', grounded: true },
    ])
    expect(readExamples(text, 'x').examples).toEqual([
      { id: 'g1', question: 'q', context: ['c'], answer: 'a', grounded: true },
      { id: 'g2', question: 'q', context: ['c'], answer: 'a', grounded: false },
      { id: 'g3', question: 'q', context: ['c'], answer: 'a', grounded: false, sufficient: true },
      { id: 'g4', question: 'q', context: ['c'], answer: 'a', grounded: true },
    ])
    // One definition: the labels calibrate reads from eval output and from the review export.
    expect(lineLabel({ grounded: 'hallucinated' }, 'groundedness')).toBe(false)
    expect(lineLabel({ grounded: 'supported' }, 'groundedness')).toBe(true)
    expect(parseLabel('grounded', 'sufficiency')).toBeUndefined()
    expect(parseLabel('insufficient', 'groundedness')).toBeUndefined()
  })

  it('reports bad labels and answers by line, and refuses groundedness on a line without an answer', () => {
    const message = problems(
      [
        JSON.stringify({ question: 'q', context: 'c', answer: 'a', grounded: 'maybe' }),
        JSON.stringify({ question: 'q', context: 'c', answer: 'a', label: 'hallucinated' }),
        JSON.stringify({ question: 'q', context: 'c', grounded: false }),
        JSON.stringify({ question: 'q', context: 'c', answer: 5, sufficient: true }),
        JSON.stringify({ question: 'q', context: 'c', sufficient: true }),
      ].join('\n'),
    )
    expect(message).toContain('5 problems in data.jsonl')
    expect(message).toContain(
      'data.jsonl:1: "grounded" is "maybe"; use true/false, or one of grounded, supported, true, yes, 1, hallucinated, ungrounded, unsupported, false, no, 0',
    )
    expect(message).toContain(
      'data.jsonl:2: "label" is "hallucinated"; use true/false, or one of sufficient, answerable, true, yes, 1, insufficient, unanswerable, false, no, 0 (a groundedness label goes in "grounded")',
    )
    expect(message).toContain('data.jsonl:3: "grounded" labels an answer: add the "answer"')
    expect(message).toContain('data.jsonl:4: "answer" must be a non-empty string')
    // Line 5 has no answer, and the groundedness labels elsewhere make groundedness a check run.
    expect(message).toContain('data.jsonl:5: no "answer", which the groundedness check judges')

    // Asked for explicitly, on data without answers: every line is named.
    const squad = problems(readFileSync(SQUAD, 'utf8'), ['groundedness'])
    expect(squad).toContain('120 problems in data.jsonl')
    expect(squad).toContain('data.jsonl:1: no "answer", which the groundedness check judges')
  })
})

describe('the per-check figures, by hand', () => {
  /**
   * Four answers, both checks, eval output as `rag-guard eval --checks sufficiency,groundedness`
   * writes it (a sufficiency line without `check`, as before there were two):
   *
   *   id  sufficiency  sufficient   groundedness  grounded   bad (either label false)
   *   a   0.9          true         0.95          true       no
   *   b   0.7          false        0.35          true       yes
   *   c   0.45         true         0.15          false      yes
   *   d   0.25         false        0.55          false      yes
   */
  const rows = [
    ['a', 0.9, true, 0.95, true],
    ['b', 0.7, false, 0.35, true],
    ['c', 0.45, true, 0.15, false],
    ['d', 0.25, false, 0.55, false],
  ] as const
  const line = (id: string, check: string | undefined, score: number, labels: object) => ({
    id,
    ...(check ? { check } : {}),
    ...labels,
    score,
    model: 'm',
    promptVersion: check ? `${check}-v1` : 'sufficiency-v1',
    estimator: 'logprobs',
    latencyMs: 1,
  })
  const text = jsonl(
    rows.flatMap(([id, s, sufficient, g, grounded]) => [
      line(id, undefined, s, { sufficient, grounded }),
      line(id, 'groundedness', g, { sufficient, grounded }),
    ]),
  )
  const targets = { passPrecision: 0.5, blockPrecision: 0.9, minCount: 1 }

  it('AUROC, Brier and ECE of each check', () => {
    const loaded = loadChecks(text, 'scores.jsonl')
    expect(loaded.checks.map((one) => one.check)).toEqual(['sufficiency', 'groundedness'])
    const [sufficiency, groundedness] = loaded.checks.map((one) => calibrate(one, targets))
    // Sufficiency. Sufficient a 0.9, c 0.45; insufficient b 0.7, d 0.25. Pairs (sufficient
    // above insufficient): a>b 1, a>d 1, c>b 0, c>d 1 → AUROC 3/4.
    expect(sufficiency!.auroc).toBeCloseTo(0.75, 12)
    // Brier: (0.9−1)² + (0.7−0)² + (0.45−1)² + (0.25−0)² = 0.01 + 0.49 + 0.3025 + 0.0625
    // = 0.865, / 4 = 0.21625.
    expect(sufficiency!.brier).toBeCloseTo(0.21625, 12)
    // ECE, 10 bins, one example in each of bins 9, 7, 4, 2: (|1−0.9| + |0−0.7| + |1−0.45|
    // + |0−0.25|) / 4 = (0.1 + 0.7 + 0.55 + 0.25) / 4 = 0.4.
    expect(sufficiency!.ece).toBeCloseTo(0.4, 12)
    // Groundedness. Grounded a 0.95, b 0.35; hallucinated c 0.15, d 0.55: a>c 1, a>d 1, b>c 1,
    // b>d 0 → 3/4.
    expect(groundedness!.auroc).toBeCloseTo(0.75, 12)
    // Brier: 0.0025 + 0.4225 + 0.0225 + 0.3025 = 0.75, / 4 = 0.1875.
    expect(groundedness!.brier).toBeCloseTo(0.1875, 12)
    // ECE, bins 9, 3, 1, 5: (0.05 + 0.65 + 0.15 + 0.55) / 4 = 0.35.
    expect(groundedness!.ece).toBeCloseTo(0.35, 12)
    expect(groundedness!.counts).toEqual({ total: 4, sufficient: 2, insufficient: 2 })
    expect(formatCalibration(groundedness!)).toContain(
      'RAG Guard calibration of groundedness: 4 labeled examples (2 grounded, 2 hallucinated)',
    )
    // The same file calibrated one check at a time gives the same figures.
    expect(loadScores(text, 's', undefined, undefined, 'groundedness').examples).toEqual(
      loaded.checks[1]!.examples,
    )
  })

  it('the combined verdict: bad answers stopped and good answers lost, per pair of thresholds', () => {
    const loaded = loadChecks(text, 'scores.jsonl')
    const examples = loaded.combined!.examples
    expect(examples.map((example) => [example.id, example.bad])).toEqual([
      ['a', false],
      ['b', true],
      ['c', true],
      ['d', true],
    ])
    // (0.5, 0.5): a passes both; b g 0.35 < 0.5; c both; d s 0.25 < 0.5 → stopped 3 of 3, lost
    // 0 of 1, block precision 3/3.
    expect(pairStats(examples, { sufficiency: 0.5, groundedness: 0.5 })).toMatchObject({
      bad: 3,
      good: 1,
      blocked: 3,
      stopped: 3,
      lost: 0,
      stoppedShare: 1,
      lostShare: 0,
      precision: 1,
    })
    // (0.3, 0.2): b 0.7 ≥ 0.3 and 0.35 ≥ 0.2 passes; c g 0.15 < 0.2; d s 0.25 < 0.3 → 2 of 3.
    expect(pairStats(examples, { sufficiency: 0.3, groundedness: 0.2 })).toMatchObject({
      stopped: 2,
      lost: 0,
    })
    // (0.95, 0): every sufficiency score is below 0.95 → all 3 bad stopped, the good one lost:
    // lost 1/1, precision 3/4.
    expect(pairStats(examples, { sufficiency: 0.95, groundedness: 0 })).toMatchObject({
      stopped: 3,
      lost: 1,
      lostShare: 1,
      precision: 0.75,
    })
    // The defaults (0.1, 0.1) block nothing here: no score is below 0.1.
    const report = combine(loaded.combined!, targets, {})
    expect(report.rows[0]).toMatchObject({
      name: 'the defaults',
      stats: { blocked: 0, stopped: 0, lost: 0 },
    })
    expect(report.counts).toEqual({ total: 4, bad: 3, good: 1, unlabeled: 0 })
    // The grid: GRID = [0, 0.1, 0.2, 0.3, 0.5, 0.7]; (0.3, 0.2) is cells[3][2], (0.5, 0.5) [4][4].
    expect(report.grid.cells[3]![2]!.stopped).toBe(2)
    expect(report.grid.cells[4]![4]!.stopped).toBe(3)
    expect(report.grid.cells[0]![0]!.blocked).toBe(0)
    // Recommended (the most stopped minus lost): 3/3 stopped and 0/1 lost, the most there is,
    // needs b (s > 0.7 or g > 0.35), c (s > 0.45 or g > 0.15), d (s > 0.25 or g > 0.55), with a
    // kept (s ≤ 0.9, g ≤ 0.95). Ties go to the lower thresholds: of the pairs searched (steps of
    // 0.05) the smallest sum is groundedness alone at 0.6 (0 + 0.6; 0.3 + 0.4 = 0.7; 0.75 + 0).
    expect(report.recommendation).toMatchObject({
      met: true,
      stats: { pair: { sufficiency: 0, groundedness: 0.6 }, stopped: 3, lost: 0 },
    })
    // No check was calibrated alone here ({}): no FLAG_BELOW to recommend, said in the snippet.
    expect(report.snippet).toEqual([
      '[vars]',
      'GUARD_CHECKS = "sufficiency,groundedness"',
      'BLOCK_BELOW = 0',
      '# FLAG_BELOW: none recommended (sufficiency: no labels of this check); keep it at or above 0',
      'GROUNDEDNESS_BLOCK_BELOW = 0.6',
      '# GROUNDEDNESS_FLAG_BELOW: none recommended (groundedness: no labels of this check); keep it at or above 0.6',
    ])
    const printed = formatCombined(report)
    expect(printed).toContain(
      'Combined verdict (both checks, the most severe wins): 4 answers with both scores (3 bad, 1 good)',
    )
    expect(printed).toMatch(/ +0 +0\.6 +3\/3 \(100\.0%\) +0\/1 \(0\.0%\) +100\.0% +recommended/)
  })

  it('a check’s own FLAG_BELOW caps its BLOCK_BELOW in the pair, and goes in the snippet', () => {
    const loaded = loadChecks(text, 'scores.jsonl')
    const groundedness = calibrate(loaded.checks[1]!, targets)
    // Groundedness alone, pass precision 0.5 with 1+ passed: the lowest candidate threshold
    // whose passed are half grounded. At 0 all 4 pass, 2 grounded: 50% → FLAG_BELOW 0.
    expect(groundedness.recommendation.flagBelow).toMatchObject({
      met: true,
      stats: { threshold: 0 },
    })
    const report = combine(loaded.combined!, targets, { groundedness })
    // GROUNDEDNESS_BLOCK_BELOW may not exceed 0 now, so sufficiency must stop all three: s > 0.7
    // and ≤ 0.9 → 0.75, the smallest searched.
    expect(report.recommendation).toMatchObject({
      met: true,
      stats: { pair: { sufficiency: 0.75, groundedness: 0 }, stopped: 3, lost: 0 },
    })
    expect(report.snippet).toContain('GROUNDEDNESS_FLAG_BELOW = 0')
  })

  it('recommends by stopped minus lost, not by the most stopped: a check that tells nothing apart does not get to block', () => {
    const bad = (id: string, sufficiency: number, groundedness: number): CombinedExample => ({
      id,
      scores: { sufficiency, groundedness },
      grounded: false,
      bad: true,
    })
    const good = (id: string, sufficiency: number, groundedness: number): CombinedExample => ({
      id,
      scores: { sufficiency, groundedness },
      grounded: true,
      bad: false,
    })
    const examples = [
      bad('b1', 0.9, 0.1),
      bad('b2', 0.9, 0.1),
      bad('b3', 0.2, 0.9),
      good('g1', 0.2, 0.9),
      good('g2', 0.9, 0.9),
    ]
    const targets = { passPrecision: 0.5, blockPrecision: 0.6, minCount: 1 }
    const candidates = { sufficiency: [0, 0.5], groundedness: [0, 0.5] }
    // (0, 0.5): b1, b2 blocked → stopped 2/3, lost 0/2, precision 1, gain 2/3 − 0 = 0.667.
    // (0.5, 0.5): b1, b2, b3, g1 → stopped 3/3, lost 1/2, precision 3/4, gain 1 − 1/2 = 0.5.
    // (0.5, 0): b3, g1 → precision 1/2 < 0.6, out. The most stopped would be (0.5, 0.5).
    expect(pairStats(examples, { sufficiency: 0.5, groundedness: 0.5 })).toMatchObject({
      stopped: 3,
      lost: 1,
      precision: 0.75,
    })
    expect(recommendPair(examples, targets, candidates)).toMatchObject({
      met: true,
      stats: { pair: { sufficiency: 0, groundedness: 0.5 }, stopped: 2, lost: 0, precision: 1 },
    })
  })

  it('says when no pair meets the block precision, with the best reachable', () => {
    // One bad and one good answer that no pair tells apart: the good one scores lower on both.
    const examples: CombinedExample[] = [
      { id: 'x', scores: { sufficiency: 0.2, groundedness: 0.2 }, grounded: true, bad: false },
      { id: 'y', scores: { sufficiency: 0.4, groundedness: 0.4 }, grounded: false, bad: true },
    ]
    const candidates = { sufficiency: [0, 0.3, 0.5], groundedness: [0, 0.3, 0.5] }
    // Blocking y blocks x too: the best precision is 1/2 (at (0.5, 0), the first that blocks both).
    const recommendation = recommendPair(
      examples,
      { passPrecision: 0.5, blockPrecision: 0.9, minCount: 1 },
      candidates,
    )
    expect(recommendation.met).toBe(false)
    expect(recommendation).toMatchObject({ best: { precision: 1 / 2, stopped: 1, lost: 1 } })
    const report = combine(
      { examples, unlabeled: 2, estimator: 'logprobs' },
      { passPrecision: 0.5, blockPrecision: 0.9, minCount: 1 },
      {},
    )
    expect(report.snippet).toBeUndefined()
    const text = formatCombined(report)
    expect(text).toContain(
      'No pair blocks 1+ answers with 90.0% of them bad. Best reachable: 50.0%',
    )
    expect(text).toContain('left out, no label: 2')
  })

  it('reads the combined verdict from decision records that hold both checks (the review export)', () => {
    const record = (id: string, s: number, g: number, labels: object) => ({
      message: 'rag-guard decision',
      requestId: id,
      check: 'sufficiency',
      score: s,
      checks: { sufficiency: { score: s }, groundedness: { score: g } },
      model: 'm',
      promptVersion: 'sufficiency-v1',
      ...labels,
    })
    const text = jsonl([
      record('r1', 0.9, 0.9, { sufficient: true, grounded: true }),
      record('r2', 0.9, 0.1, { grounded: false }),
      record('r3', 0.2, 0.9, { sufficient: false }),
      record('r4', 0.5, 0.5, {}),
    ])
    const loaded = loadChecks(text, 'labels.jsonl')
    expect(loaded.combined!.examples.map((example) => [example.id, example.bad])).toEqual([
      ['r1', false],
      ['r2', true],
      ['r3', true],
    ])
    expect(loaded.combined!.unlabeled).toBe(1)
    expect(
      pairStats(loaded.combined!.examples, { sufficiency: 0.3, groundedness: 0.3 }),
    ).toMatchObject({ stopped: 2, lost: 0 })
    // One check asked for: no combined verdict.
    expect(loadChecks(text, 'labels.jsonl', undefined, undefined, ['groundedness']).combined).toBe(
      undefined,
    )
  })

  it('old single-check files still load: sufficiency, and no combined verdict', () => {
    const old = jsonl([
      {
        id: 'a',
        sufficient: true,
        score: 0.8,
        model: 'm',
        promptVersion: 'sufficiency-2026-11-v1',
      },
      {
        id: 'b',
        sufficient: false,
        score: 0.3,
        model: 'm',
        promptVersion: 'sufficiency-2026-11-v1',
      },
    ])
    const loaded = loadChecks(old, 'old.jsonl')
    expect(loaded.checks.map((one) => [one.check, one.estimator, one.examples.length])).toEqual([
      ['sufficiency', 'logprobs', 2],
    ])
    expect(loaded.leftOut).toEqual([])
    expect(loaded.combined).toBeUndefined()
    expect(loadScores(old, 'old.jsonl').examples).toHaveLength(2)
  })

  it('the HTML report has a section per check and the combined one', () => {
    const loaded = loadChecks(text, 'scores.jsonl')
    // Targets both checks meet on these four, so that each section draws its thresholds.
    const strict = { passPrecision: 0.9, blockPrecision: 0.9, minCount: 1 }
    const reports = loaded.checks.map((one) => calibrate(one, strict))
    expect(reports.map((report) => report.thresholds !== undefined)).toEqual([true, true])
    const html = renderReports(reports, combine(loaded.combined!, targets, {}))
    expect(html).toContain('<section data-check="sufficiency">')
    expect(html).toContain('<section data-check="groundedness">')
    expect(html).toContain('<section data-check="combined">')
    expect(html).toContain('AUPRC (hallucinated)')
    expect(html).toContain('data-threshold="GROUNDEDNESS_BLOCK_BELOW"')
    expect(html).toContain('GROUNDEDNESS_BLOCK_BELOW = 0.6')
    expect(html.match(/<figure data-chart=/g)).toHaveLength(8)
  })
})

describe('eval with two checks against the stub model server', () => {
  let stub: OpenAIStub
  beforeAll(async () => {
    stub = await startOpenAIStub()
  })
  afterAll(async () => {
    await stub.close()
  })

  async function scripted(step: object) {
    const id = `checks-${Math.random().toString(36).slice(2)}`
    await fetch(`${stub.origin}/__scenarios/${id}`, { method: 'PUT', body: JSON.stringify(step) })
    return {
      baseURL: `${stub.origin}/s/${id}/v1`,
      requests: async () =>
        (await (
          await fetch(`${stub.origin}/__scenarios/${id}/requests`)
        ).json()) as RecordedRequest[],
    }
  }
  const judgeStep = {
    token: 'True',
    logprob: Math.log(0.7),
    topLogprobs: [
      { token: 'True', logprob: Math.log(0.7) },
      { token: 'False', logprob: Math.log(0.3) },
    ],
  }
  const silent = { write: () => true }
  const examples = readExamples(
    jsonl([
      { id: 'a', question: 'Where?', context: 'In Paris.', answer: 'Paris.', grounded: true },
      { id: 'b', question: 'When?', context: 'In 1900.', answer: 'In 1850.', grounded: false },
    ]),
    'x',
  ).examples

  it('writes one line per example and check, resumes per (id, check), and asks groundedness with the answer', async () => {
    const model = await scripted(judgeStep)
    const judge = createJudge({ apiKey: 'k', baseURL: model.baseURL, maxRetries: 0 })
    const output = join(temporary(), 'scores.jsonl')
    // Already there: a's sufficiency score (an old line, no check), b's groundedness score, and
    // a's groundedness line that timed out (judged again).
    writeFileSync(
      output,
      `${jsonl([
        {
          id: 'a',
          grounded: true,
          score: 0.8,
          model: 'm',
          promptVersion: 'sufficiency-v1',
          latencyMs: 1,
        },
        {
          id: 'b',
          check: 'groundedness',
          grounded: false,
          score: 0.2,
          model: 'm',
          promptVersion: 'groundedness-v1',
          latencyMs: 1,
        },
        {
          id: 'a',
          check: 'groundedness',
          grounded: true,
          score: null,
          reason: 'judge-timeout',
          model: 'm',
          promptVersion: 'groundedness-v1',
          latencyMs: 1,
        },
      ])}\n`,
    )
    expect(alreadyJudged(output)).toEqual(new Set(['a']))
    expect(alreadyJudged(output, 'groundedness')).toEqual(new Set(['b']))

    const summary = await runEval({
      examples,
      judge,
      output,
      checks: ['sufficiency', 'groundedness'],
      progress: silent,
    })
    expect(summary).toMatchObject({
      total: 4,
      skipped: 2,
      judged: 2,
      interrupted: false,
      byCheck: {
        sufficiency: { total: 2, skipped: 1, judged: 1 },
        groundedness: { total: 2, skipped: 1, judged: 1 },
      },
    })
    const requests = await model.requests()
    expect(requests).toHaveLength(2)
    const prompts = requests.map((request) => JSON.stringify(request.body))
    // b's sufficiency call has no answer in it; a's groundedness call has a's answer.
    expect(prompts.filter((prompt) => prompt.includes('Paris.'))).toHaveLength(1)
    expect(prompts.some((prompt) => prompt.includes('In 1850.'))).toBe(false)

    const written = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .slice(3)
      .map((line) => JSON.parse(line))
    expect(written).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: 'b',
          grounded: false,
          promptVersion: 'sufficiency-2026-12-v2',
        }),
        expect.objectContaining({
          id: 'a',
          check: 'groundedness',
          grounded: true,
          promptVersion: 'groundedness-2026-12-v1',
          score: expect.closeTo(0.7, 10),
        }),
      ]),
    )
    expect(written.find((record) => record.id === 'b').check).toBeUndefined()
    expect(alreadyJudged(output, 'groundedness')).toEqual(new Set(['a', 'b']))

    // Nothing left: a third run judges nothing.
    const again = await runEval({
      examples,
      judge,
      output,
      checks: ['sufficiency', 'groundedness'],
      progress: silent,
    })
    expect(again).toMatchObject({ skipped: 4, judged: 0 })
    expect(await model.requests()).toHaveLength(2)
  })

  it('still refuses to mix estimators in one file, whatever the check', async () => {
    const model = await scripted(judgeStep)
    const output = join(temporary(), 'scores.jsonl')
    writeFileSync(
      output,
      `${JSON.stringify({ id: 'a', check: 'groundedness', score: 0.4, estimator: 'logprobs', model: 'm', promptVersion: 'groundedness-v1', latencyMs: 1 })}\n`,
    )
    const sampling = createJudge({ apiKey: 'k', baseURL: model.baseURL, estimator: 'sampling' })
    await expect(
      runEval({ examples, judge: sampling, output, checks: ['groundedness'], progress: silent }),
    ).rejects.toThrow('holds scores of another estimator (logprobs: 1)')
    expect(await model.requests()).toHaveLength(0)
  })

  it('refuses groundedness for examples without an answer before any call', async () => {
    const model = await scripted(judgeStep)
    const judge = createJudge({ apiKey: 'k', baseURL: model.baseURL })
    const bare = readExamples(
      jsonl([{ id: 'n', question: 'q', context: 'c', sufficient: true }]),
      'x',
    ).examples
    await expect(
      runEval({
        examples: bare,
        judge,
        output: join(temporary(), 's.jsonl'),
        checks: ['groundedness'],
        progress: silent,
      }),
    ).rejects.toThrow('the groundedness check judges an answer, and 1 example has none ("n")')
    expect(await model.requests()).toHaveLength(0)
  })
})

/** Runs the command as a user does, with the stand-in as the judge. */
function ragGuard(args: string[], cwd: string, baseURL: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/rag-guard.mjs'), ...args], {
      cwd,
      env: {
        ...process.env,
        OPENAI_API_KEY: '',
        OPENAI_BASE_URL: baseURL,
        JUDGE_MODEL: STAND_IN_MODEL,
        JUDGE_ESTIMATOR: '',
      },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

// 400 judge calls and three command processes: the timeout only catches a hang, on a busy machine too.
describe('end to end: the HaluEval sample with the stand-in model', { timeout: 120_000 }, () => {
  let standIn: StandInServer
  beforeAll(async () => {
    standIn = await startStandInModel()
  })
  afterAll(async () => {
    await standIn.close()
  })

  it('eval --checks sufficiency,groundedness, then calibrate per check and combined, as text, JSON and HTML', async () => {
    const directory = temporary()
    const evaluated = await ragGuard(
      ['eval', HALUEVAL, '--checks', 'sufficiency,groundedness', '--out', 'halueval.jsonl'],
      directory,
      standIn.baseURL,
    )
    expect(evaluated.code).toBe(0)
    expect(evaluated.stderr).toContain(
      'prompt sufficiency-2026-12-v2, groundedness-2026-12-v1 · estimator logprobs · 200 examples × sufficiency, groundedness → halueval.jsonl',
    )
    expect(evaluated.stderr).toContain('labels: sufficiency 0 of 200 · groundedness 200 of 200')
    expect(evaluated.stderr).toContain('done: 400 judged now, 0 already in halueval.jsonl')
    const records = readFileSync(join(directory, 'halueval.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(records).toHaveLength(400)
    expect(records.filter((record) => record.check === 'groundedness')).toHaveLength(200)

    const args = [
      'calibrate',
      'halueval.jsonl',
      '--pass-precision',
      '0.6',
      '--block-precision',
      '0.55',
    ]
    const text = await ragGuard([...args, '--report', 'report.html'], directory, standIn.baseURL)
    expect(text.code).toBe(0)
    // The figures docs/calibrate.md shows (the stand-in is deterministic).
    expect(text.stdout).toContain(
      'RAG Guard calibration of groundedness: 200 labeled examples (100 grounded, 100 hallucinated) from rag-guard eval',
    )
    expect(text.stdout).toContain(
      'AUROC 0.903   AUPRC (hallucinated) 0.806   Brier 0.204   ECE (10 equal bins) 0.252',
    )
    expect(text.stdout).toContain('Not calibrated alone, no labeled scores: sufficiency.')
    expect(text.stdout).toContain('200 answers with both scores (100 bad, 100 good)')
    expect(text.stdout).toMatch(
      /0\.1 +0\.1 +30\/100 \(30\.0%\) +17\/100 \(17\.0%\) +63\.8% +the defaults/,
    )
    expect(text.stdout).toContain('GUARD_CHECKS = "sufficiency,groundedness"')
    const html = readFileSync(join(directory, 'report.html'), 'utf8')
    expect(html).toContain('<section data-check="groundedness">')
    expect(html).toContain('<section data-check="combined">')

    const json = await ragGuard([...args, '--json'], directory, standIn.baseURL)
    expect(json.code).toBe(0)
    const report = JSON.parse(json.stdout) as {
      checks: Record<
        string,
        { auroc: number; ece: number; brier: number; loaded: { check: string } }
      >
      leftOut: string[]
      combined: { counts: object; rows: Array<{ name: string }>; recommendation: { met: boolean } }
    }
    expect(Object.keys(report.checks)).toEqual(['groundedness'])
    expect(report.checks.groundedness!.auroc).toBeCloseTo(0.903, 3)
    expect(report.leftOut).toEqual(['sufficiency'])
    expect(report.combined.counts).toEqual({ total: 200, bad: 100, good: 100, unlabeled: 0 })
    expect(report.combined.rows.map((row) => row.name)).toContain('the defaults')

    // One check asked for: that check alone, no combined verdict.
    const one = await ragGuard(
      ['calibrate', 'halueval.jsonl', '--check', 'groundedness'],
      directory,
      standIn.baseURL,
    )
    expect(one.code).toBe(0)
    expect(one.stdout).not.toContain('Combined verdict')
  })

  it('refuses what it cannot do, plainly', async () => {
    const directory = temporary()
    const wrong = await ragGuard(
      ['eval', HALUEVAL, '--checks', 'truth'],
      directory,
      standIn.baseURL,
    )
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain(
      'rag-guard: --checks must be sufficiency, groundedness or both (sufficiency,groundedness), got "truth"',
    )
    const squad = await ragGuard(
      ['eval', SQUAD, '--checks', 'groundedness'],
      directory,
      standIn.baseURL,
    )
    expect(squad.code).toBe(2)
    expect(squad.stderr).toMatch(
      /^rag-guard: 120 problems in .*squad2-sample\.jsonl:\n {2}.*squad2-sample\.jsonl:1: no "answer", which the groundedness check judges/,
    )
    expect(squad.stderr).not.toMatch(/\n\s+at /)
  })
})

describe('the documentation lists every option', () => {
  const reference = readFileSync(join(ROOT, 'docs/reference/cli.md'), 'utf8')
  const section = (heading: string) => {
    const start = reference.indexOf(`\n${heading}\n`)
    expect(start, heading).toBeGreaterThan(-1)
    const rest = reference.slice(start + heading.length + 2)
    return rest.slice(0, rest.search(/\n#{1,4} /))
  }

  it('eval: in the CLI reference’s table and in --help', () => {
    const table = section('## `rag-guard eval <data.jsonl>`')
    for (const name of Object.keys(EVAL_OPTIONS)) {
      expect(table, `--${name} in the CLI reference`).toContain(`\`--${name}`)
      expect(USAGE, `--${name} in --help`).toContain(`--${name}`)
    }
  })

  it('calibrate: in the CLI reference’s section and in --help', () => {
    const text = section('## `rag-guard calibrate <scores.jsonl | URL>`')
    for (const name of Object.keys(CALIBRATE_OPTIONS)) {
      expect(text, `--${name} in the CLI reference`).toContain(`\`--${name}`)
      expect(USAGE, `--${name} in --help`).toContain(`--${name}`)
    }
  })
})
