import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { calibrate, formatCalibration, loadScores } from '../../src/cli/calibrate'
import { DataError } from '../../src/cli/data'

const ROOT = join(import.meta.dirname, '../..')

/** Eval-style lines: a judge that separates the classes fairly well, with overlap. */
function evalLines(count = 300, spread = 0.9): string[] {
  let seed = 7
  const next = () => ((seed = (seed * 1664525 + 1013904223) % 2 ** 32), seed / 2 ** 32)
  return Array.from({ length: count }, (_, index) => {
    const sufficient = index % 2 === 0
    const score = Math.min(1, Math.max(0, (sufficient ? 0.72 : 0.28) + (next() - 0.5) * spread))
    return JSON.stringify({
      id: `q${index}`,
      sufficient,
      score,
      pTrue: score,
      pFalse: 1 - score,
      model: 'gpt-4o-mini-2024-07-18',
      promptVersion: 'sufficiency-2026-11-v1',
      latencyMs: 100,
    })
  })
}

describe('rag-guard calibrate', () => {
  it('recommends thresholds that meet the targets on the data it was given, and prints them for wrangler.toml', () => {
    const loaded = loadScores(evalLines().join('\n'), 'scores.jsonl')
    const report = calibrate(loaded, { passPrecision: 0.9, blockPrecision: 0.85 })
    expect(report.thresholds).toBeDefined()
    const { blockBelow, flagBelow } = report.thresholds!
    const examples = loaded.examples
    const passed = examples.filter((example) => example.score >= flagBelow)
    const blocked = examples.filter((example) => example.score < blockBelow)
    expect(
      passed.filter((example) => example.sufficient).length / passed.length,
    ).toBeGreaterThanOrEqual(0.9)
    expect(
      blocked.filter((example) => !example.sufficient).length / blocked.length,
    ).toBeGreaterThanOrEqual(0.85)
    const text = formatCalibration(report)
    expect(text).toContain(`[vars]\nBLOCK_BELOW = ${blockBelow}\nFLAG_BELOW = ${flagBelow}`)
    expect(text).toMatch(
      /AUROC 0\.\d{3}\s+AUPRC \(insufficient\) 0\.\d{3}\s+Brier 0\.\d{3}\s+ECE \(10 equal bins\) 0\.\d{3}/,
    )
    expect(text).toContain('judge: gpt-4o-mini-2024-07-18 · prompt: sufficiency-2026-11-v1')
  })

  it('says when the targets cannot be met, shows the best trade-off, and prints no snippet', () => {
    // So wide a spread that both ends of the score range hold both labels.
    const report = calibrate(loadScores(evalLines(300, 3).join('\n'), 'scores.jsonl'), {
      passPrecision: 0.999,
      blockPrecision: 0.999,
    })
    expect(report.thresholds).toBeUndefined()
    const text = formatCalibration(report)
    expect(text).toMatch(
      /FLAG_BELOW: no threshold reaches 99\.9% pass precision\. Best reachable: \d+\.\d% at [\d.]+, passing \d+/,
    )
    expect(text).toContain('The targets cannot both be met on this data')
    expect(text).not.toContain('[vars]')
  })

  it('leaves out lines without a score, says how many and why, and lets the last line for an id win', () => {
    const lines = [
      ...evalLines(40),
      JSON.stringify({
        id: 'x1',
        sufficient: true,
        score: null,
        reason: 'judge-timeout',
        model: 'm',
        promptVersion: 'p',
        latencyMs: 1,
      }),
      JSON.stringify({
        id: 'x2',
        sufficient: true,
        score: null,
        reason: 'judge-timeout',
        model: 'm',
        promptVersion: 'p',
        latencyMs: 1,
      }),
      JSON.stringify({
        id: 'x2',
        sufficient: true,
        score: 0.9,
        model: 'm',
        promptVersion: 'p',
        latencyMs: 1,
      }),
    ]
    const loaded = loadScores(lines.join('\n'), 's')
    expect(loaded.examples).toHaveLength(41)
    expect(loaded.withoutScore).toEqual({ 'judge-timeout': 1 })
    expect(
      formatCalibration(calibrate(loaded, { passPrecision: 0.5, blockPrecision: 0.5 })),
    ).toContain('left out, no score: judge-timeout 1')
  })

  it('reads the Worker decision log joined with labels, also as wrangler tail output', () => {
    const decision = (requestId: string, score: number, questionHash: string) => ({
      message: 'rag-guard decision',
      requestId,
      score,
      questionHash,
      contextHash: 'c',
      model: 'gpt-4o-mini',
      promptVersion: 'p',
      verdict: 'pass',
    })
    const log = [
      JSON.stringify(decision('r1', 0.9, 'h1')),
      JSON.stringify({
        outcome: 'ok',
        logs: [{ level: 'log', message: [JSON.stringify(decision('r2', 0.2, 'h2'))] }],
      }),
      JSON.stringify(decision('r3', 0.6, 'h3')),
      JSON.stringify({
        message: 'rag-guard decision',
        requestId: 'r4',
        reason: 'judge-timeout',
        verdict: 'flag',
      }),
    ].join('\n')
    const labels = [
      JSON.stringify({ requestId: 'r1', sufficient: true }),
      JSON.stringify({ questionHash: 'h2', contextHash: 'c', label: 'insufficient' }),
    ].join('\n')
    const loaded = loadScores(log, 'decisions.jsonl', labels)
    expect(loaded.source).toBe('decision-log')
    expect(loaded.examples.map(({ id, sufficient }) => [id, sufficient])).toEqual([
      ['r1', true],
      ['r2', false],
    ])
    expect(loaded.unlabeled).toBe(1)
    expect(loaded.withoutScore).toEqual({ 'judge-timeout': 1 })
    expect(() => loadScores(log, 'decisions.jsonl')).toThrow(
      /is a decision log: give the labels with --labels/,
    )
  })

  it('refuses data it cannot use, with the reason', () => {
    expect(() => loadScores('{"id": "a", "score": 0.5}\n', 'x.jsonl')).toThrow(DataError)
    expect(() => loadScores('not json\n', 'x.jsonl')).toThrow(/x\.jsonl:1: not JSON/)
  })

  it('as a command: prints the report and the snippet, and writes the HTML file', () => {
    const directory = mkdtempSync(join(tmpdir(), 'rag-guard-calibrate-'))
    writeFileSync(join(directory, 'scores.jsonl'), `${evalLines().join('\n')}\n`)
    const result = spawnSync(
      process.execPath,
      [
        join(ROOT, 'bin/rag-guard.mjs'),
        'calibrate',
        'scores.jsonl',
        '--pass-precision',
        '0.9',
        '--block-precision',
        '0.85',
        '--report',
        'report.html',
      ],
      { cwd: directory, encoding: 'utf8' },
    )
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/\[vars\]\nBLOCK_BELOW = [\d.]+\nFLAG_BELOW = [\d.]+/)
    expect(readFileSync(join(directory, 'report.html'), 'utf8')).toMatch(/^<!doctype html>/)
    const bad = spawnSync(
      process.execPath,
      [join(ROOT, 'bin/rag-guard.mjs'), 'calibrate', 'scores.jsonl', '--pass-precision', '95'],
      { cwd: directory, encoding: 'utf8' },
    )
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain(
      'rag-guard: --pass-precision must be a number from 0 to 1, got "95"',
    )
  })
})
