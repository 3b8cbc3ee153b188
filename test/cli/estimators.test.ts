/**
 * Issue 17 in the command line: `rag-guard eval --estimator sampling` and `calibrate` end to
 * end on the shipped sample with the stand-in model (which serves both estimators), and
 * calibration that never mixes the scores of two estimators without saying so.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  sampledAnswers,
  startStandInModel,
  STAND_IN_MODEL,
  STAND_IN_REASONING_MODEL,
  type StandInServer,
} from '../../samples/stand-in-model'
import { calibrate, formatCalibration, loadScores } from '../../src/cli/calibrate'
import { scoreRecord } from '../../src/cli/eval'
import { renderReport } from '../../src/cli/report'
import { buildJudgePrompt } from '../../src/judge/prompt'

const ROOT = join(import.meta.dirname, '../..')
const SQUAD = join(ROOT, 'samples/data/squad2-sample.jsonl')
let standIn: StandInServer

beforeAll(async () => {
  standIn = await startStandInModel()
})
afterAll(async () => {
  await standIn.close()
})

/** Runs the command as a user does; the judge is the stand-in, unless `env` says otherwise. */
function ragGuard(args: string[], cwd: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/rag-guard.mjs'), ...args], {
      cwd,
      env: {
        ...process.env,
        OPENAI_API_KEY: '',
        OPENAI_BASE_URL: standIn.baseURL,
        JUDGE_MODEL: STAND_IN_MODEL,
        JUDGE_ESTIMATOR: '',
        ...env,
      },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)

describe('the calibration walk-through by sampling, with the stand-in model', () => {
  it('eval --estimator sampling scores the SQuAD sample from 5 samples each; calibrate names the estimator and its 6 values', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'rag-guard-sampling-'))
    const evaluated = await ragGuard(
      ['eval', SQUAD, '--estimator', 'sampling', '--out', 'scores-sampling.jsonl'],
      directory,
    )
    expect(evaluated.code).toBe(0)
    expect(evaluated.stderr).toContain(
      'estimator sampling (5 samples at temperature 1) · 120 examples → scores-sampling.jsonl',
    )
    const records = lines(join(directory, 'scores-sampling.jsonl'))
    expect(records).toHaveLength(120)
    for (const record of records) {
      expect(record).toMatchObject({ estimator: 'sampling', samples: 5, requests: 1 })
      const trueCount = record.trueCount as number
      const falseCount = record.falseCount as number
      expect(trueCount + falseCount).toBe(5)
      expect(record.score).toBeCloseTo((trueCount + 0.5) / 6, 12)
      expect(record.token).toBeUndefined()
    }
    // The stand-in's share follows its word-overlap heuristic: both ends of the scale are used.
    expect(new Set(records.map((record) => record.trueCount)).size).toBeGreaterThanOrEqual(4)

    const calibrated = await ragGuard(
      [
        'calibrate',
        'scores-sampling.jsonl',
        '--pass-precision',
        '0.55',
        '--block-precision',
        '0.5',
        '--report',
        'report.html',
      ],
      directory,
    )
    expect(calibrated.code).toBe(0)
    expect(calibrated.stdout).toContain(
      'judge: stand-in-word-overlap · prompt: sufficiency-2026-12-v2 · estimator: sampling',
    )
    expect(calibrated.stdout).toContain(
      'NOTE: scores from 5 samples take 6 values (0.083, 0.250, 0.417, 0.583, 0.750, 0.917)',
    )
    expect(calibrated.stdout).toContain('NOTE: these scores come from the stand-in model')
    expect(calibrated.stdout).toMatch(/\[vars\]\nBLOCK_BELOW = [\d.]+\nFLAG_BELOW = [\d.]+/)
    const html = readFileSync(join(directory, 'report.html'), 'utf8')
    expect(html).toContain('<strong data-field="estimator">sampling</strong>')
    expect(html).toContain('data-field="granularity"')
  })

  it('auto with a model that refuses logprobs: every line is a sampling score, and the switch is said once', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'rag-guard-auto-'))
    const evaluated = await ragGuard(
      ['eval', SQUAD, '--estimator', 'auto', '--limit', '12', '--out', 'auto.jsonl'],
      directory,
      { JUDGE_MODEL: STAND_IN_REASONING_MODEL },
    )
    expect(evaluated.code).toBe(0)
    expect(evaluated.stderr.match(/estimating by sampling/g)).toHaveLength(1)
    const records = lines(join(directory, 'auto.jsonl'))
    expect(records).toHaveLength(12)
    expect(records.every((record) => record.estimator === 'sampling')).toBe(true)
  })
})

describe('one file, one estimator', () => {
  it('eval will not append sampling scores to a file of logprobs scores', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'rag-guard-one-'))
    const first = await ragGuard(['eval', SQUAD, '--limit', '3', '--out', 's.jsonl'], directory)
    expect(first.code).toBe(0)
    expect(lines(join(directory, 's.jsonl'))[0]).toMatchObject({ estimator: 'logprobs' })
    const second = await ragGuard(['eval', SQUAD, '--limit', '3', '--out', 's.jsonl'], directory, {
      JUDGE_ESTIMATOR: 'sampling',
    })
    expect(second.code).toBe(2)
    expect(second.stderr).toBe(
      'rag-guard: s.jsonl holds scores of another estimator (logprobs: 3); write the sampling scores to another file (--out), so that calibration never mixes the two\n',
    )
    expect(lines(join(directory, 's.jsonl'))).toHaveLength(3)
  })

  /** Scores of both estimators in one file (as a decision log of an `auto` judge can hold). */
  function mixed(): string {
    return Array.from({ length: 80 }, (_, index) => {
      const sufficient = index % 2 === 0
      const sampling = index >= 40
      const trueCount = sufficient ? 4 : 1
      return JSON.stringify({
        id: `q${index}`,
        sufficient,
        model: 'm',
        promptVersion: 'p',
        latencyMs: 1,
        ...(sampling
          ? {
              estimator: 'sampling',
              score: (trueCount + 0.5) / 6,
              samples: 5,
              trueCount,
              falseCount: 5 - trueCount,
            }
          : { score: sufficient ? 0.9 : 0.1 }),
      })
    }).join('\n')
  }

  it('calibrate refuses a file that mixes estimators, and says how to pick one', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'rag-guard-mixed-'))
    writeFileSync(join(directory, 'mixed.jsonl'), mixed())
    const refused = await ragGuard(['calibrate', 'mixed.jsonl'], directory)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toBe(
      'rag-guard: mixed.jsonl mixes scores of two estimators (logprobs 40, sampling 40), which are not on one scale: calibrate one at a time with --estimator logprobs or --estimator sampling\n',
    )
    const picked = await ragGuard(
      ['calibrate', 'mixed.jsonl', '--estimator', 'sampling', '--min-count', '5'],
      directory,
    )
    expect(picked.code).toBe(0)
    expect(picked.stdout).toContain('40 labeled examples')
    expect(picked.stdout).toContain('left out, another estimator: logprobs 40')
    const wrong = await ragGuard(['calibrate', 'mixed.jsonl', '--estimator', 'auto'], directory)
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain('--estimator must be "logprobs" or "sampling", got "auto"')
  })

  it('the report of one estimator says what was left out', () => {
    const loaded = loadScores(mixed(), 'mixed.jsonl', undefined, 'logprobs')
    expect(loaded).toMatchObject({ estimator: 'logprobs', otherEstimators: { sampling: 40 } })
    const report = calibrate(loaded, { passPrecision: 0.5, blockPrecision: 0.5, minCount: 5 })
    expect(formatCalibration(report)).toContain('· estimator: logprobs')
    expect(renderReport(report)).toContain('Left out, scores of another estimator')
  })

  it('lines written before estimators existed are logprobs scores', () => {
    const old = JSON.stringify({ id: 'a', sufficient: true, score: 0.8, model: 'm' })
    expect(loadScores(old, 'old.jsonl').estimator).toBe('logprobs')
  })
})

describe('the command line takes the estimator settings from flags or the environment', () => {
  it.each([
    [['--samples', '1'], {}, 'rag-guard: --samples must be an integer from 2 to 20, got 1'],
    [[], { JUDGE_ESTIMATOR: 'maybe' }, 'rag-guard: JUDGE_ESTIMATOR must be "logprobs", "sampling"'],
    [
      ['--sampling-temperature', '0'],
      {},
      'rag-guard: --sampling-temperature must be a number above 0 and at most 2, got 0',
    ],
    [['--reasoning-effort', 'max'], {}, 'rag-guard: --reasoning-effort must be "none"'],
  ])('%j %j → exit 2: %s', async (args, env, message) => {
    const result = await ragGuard(
      ['score', '--question', 'q?', '--context', 'c', ...args],
      ROOT,
      env as Record<string, string>,
    )
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(message)
  })

  it('score --estimator sampling prints the counts behind the score', async () => {
    const result = await ragGuard(
      [
        'score',
        '--estimator',
        'sampling',
        '--samples',
        '9',
        '--question',
        'What does a day pass cost?',
        '--context',
        'A day pass costs $12 and includes unlimited rides.',
      ],
      ROOT,
    )
    expect(result.code).toBe(0)
    const printed = JSON.parse(result.stdout) as Record<string, number | string>
    expect(printed).toMatchObject({ estimator: 'sampling', samples: 9, requests: 1 })
    expect(printed.score).toBeCloseTo(((printed.trueCount as number) + 0.5) / 10, 12)
  })
})

describe('eval output lines', () => {
  const example = { id: 'e1', question: 'q', context: ['c'], sufficient: true }
  const base = { model: 'm', promptVersion: 'p', latencyMs: 3 }
  const asked = { check: 'sufficiency' as const }

  it('logprobs: the first token and masses; sampling: the counts and requests', () => {
    expect(
      scoreRecord(example, {
        ...asked,
        ok: true,
        estimator: 'logprobs',
        score: 0.9,
        pTrue: 0.9,
        pFalse: 0.1,
        mass: 1,
        token: 'True',
        source: 'top_logprobs',
        ...base,
      }),
    ).toEqual({
      id: 'e1',
      sufficient: true,
      estimator: 'logprobs',
      score: 0.9,
      pTrue: 0.9,
      pFalse: 0.1,
      mass: 1,
      token: 'True',
      ...base,
    })
    expect(
      scoreRecord(example, {
        ...asked,
        ok: true,
        estimator: 'sampling',
        score: 4.5 / 6,
        pTrue: 0.8,
        pFalse: 0.2,
        mass: 1,
        samples: 5,
        trueCount: 4,
        falseCount: 1,
        requests: 5,
        ...base,
        usage: { inputTokens: 210, outputTokens: 5, totalTokens: 215 },
      }),
    ).toEqual({
      id: 'e1',
      sufficient: true,
      estimator: 'sampling',
      score: 4.5 / 6,
      pTrue: 0.8,
      pFalse: 0.2,
      mass: 1,
      samples: 5,
      trueCount: 4,
      falseCount: 1,
      requests: 5,
      inputTokens: 210,
      outputTokens: 5,
      ...base,
    })
  })
})

describe('the stand-in model samples (it is not a model)', () => {
  it('answers True for about the share P(True) its word overlap gives, and another share for other data', () => {
    const prompt = (question: string, documents: string[]) =>
      buildJudgePrompt(question, documents).messages[1]!.content
    const covered = sampledAnswers(
      prompt('What does a day pass cost?', ['A day pass costs $12.']),
      20,
    )
    const uncovered = sampledAnswers(
      prompt('Which company manufactures the bikes?', ['The bikes are blue.']),
      20,
    )
    const share = (answers: string[]) =>
      answers.filter((answer) => answer === 'True').length / answers.length
    expect(share(covered)).toBeGreaterThanOrEqual(0.9)
    expect(share(uncovered)).toBeLessThanOrEqual(0.1)
    expect(new Set([...covered, ...uncovered])).toEqual(new Set(['True', 'False']))
  })
})
