/**
 * Every bad input to `rag-guard`, as a user types it, through the real command (bin/rag-guard.mjs
 * in its own process): one clear line on stderr, the exit code it documents, and never a stack
 * trace. Each row is a command, what the output's first line says, and the exit code.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_CONCURRENCY } from '../../src/cli/eval'
import { startOpenAIStub, type OpenAIStub } from '../stub/openai-stub'

const ROOT = join(import.meta.dirname, '../..')
const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version

/** The working directory of every command: the files the rows name. */
const directory = mkdtempSync(join(tmpdir(), 'rag-guard-bad-input-'))
const example = {
  id: 'a',
  question: 'What does a day pass cost?',
  context: 'A day pass costs $12.',
}
writeFileSync(
  join(directory, 'data.jsonl'),
  `${JSON.stringify({ ...example, sufficient: true })}\n`,
)
writeFileSync(
  join(directory, 'two.jsonl'),
  [
    { ...example, sufficient: true },
    { ...example, id: 'b', sufficient: false },
  ]
    .map((line) => `${JSON.stringify(line)}\n`)
    .join(''),
)
mkdirSync(join(directory, 'a-directory'))
const scoreLine = (id: string, sufficient: boolean, score: unknown, extra: object = {}) =>
  JSON.stringify({ id, sufficient, score, model: 'm', promptVersion: 'p', latencyMs: 1, ...extra })
/** Ten sufficient examples scored high and ten insufficient scored low: enough to calibrate. */
const scored = (
  extra: object = {},
  score = (sufficient: boolean): number => (sufficient ? 0.9 : 0.1),
) =>
  Array.from({ length: 20 }, (_, index) =>
    scoreLine(`q${index}`, index % 2 === 0, score(index % 2 === 0), extra),
  )
writeFileSync(join(directory, 'scores.jsonl'), scored().join('\n'))
writeFileSync(
  join(directory, 'seven.jsonl'),
  [scoreLine('x', true, 0.8), scoreLine('y', false, 7), ...scored()].join('\n'),
)
writeFileSync(join(directory, 'high.jsonl'), [scoreLine('x', true, 'high'), ...scored()].join('\n'))
writeFileSync(
  join(directory, 'checks.jsonl'),
  [
    JSON.stringify({
      message: 'rag-guard decision',
      requestId: 'r1',
      sufficient: true,
      score: 0.8,
      checks: { sufficiency: { score: 0.8 }, groundedness: { score: -0.2 } },
    }),
  ].join('\n'),
)
// `cat logprobs.jsonl sampling.jsonl > mixed.jsonl`: the same ids, scored by two estimators.
writeFileSync(
  join(directory, 'mixed.jsonl'),
  [
    ...scored(),
    ...scored({ estimator: 'sampling', samples: 5 }, (sufficient) => (sufficient ? 4.5 : 1.5) / 6),
  ].join('\n'),
)

let stub: OpenAIStub
/** A server that answers every request with a web page, as a wrong base URL often does. */
let html: Server
let htmlURL = ''
/** An address where nothing listens: a server that was, and is gone. */
let unreachableURL = ''

beforeAll(async () => {
  stub = await startOpenAIStub()
  html = createServer((_, response) => {
    response.writeHead(200, { 'content-type': 'text/html' })
    response.end('<!doctype html><title>Sign in</title><h1>Sign in</h1>')
  })
  await new Promise<void>((resolve) => html.listen(0, '127.0.0.1', resolve))
  htmlURL = `http://127.0.0.1:${(html.address() as AddressInfo).port}/v1`
  const gone = createServer()
  await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve))
  unreachableURL = `http://127.0.0.1:${(gone.address() as AddressInfo).port}/v1`
  await new Promise((resolve) => gone.close(resolve))
})
afterAll(async () => {
  await stub.close()
  html.closeAllConnections()
  await new Promise((resolve) => html.close(resolve))
})

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the command as a user does, in `directory`, with a judge at `baseURL` (never the API). */
function ragGuard(args: string[], baseURL = stub.origin + '/v1'): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/rag-guard.mjs'), ...args], {
      cwd: directory,
      env: {
        ...process.env,
        OPENAI_API_KEY: 'sk-bad-input-test',
        OPENAI_BASE_URL: baseURL,
        JUDGE_MODEL: 'judge',
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

const firstLine = (text: string) => text.split('\n')[0]

/** Nothing a user sees is a stack trace or one of Node's internal error codes. */
function expectNoTrace(run: Run) {
  for (const text of [run.stdout, run.stderr]) {
    expect(text).not.toMatch(/\n\s+at /)
    expect(text).not.toMatch(/node:internal|ERR_PARSE_ARGS|EISDIR/)
  }
  expect(run.stderr).not.toContain('sk-bad-input-test')
}

const DIRECTORY = join(directory, 'a-directory')

/** [command, the first line of stderr, exit code]: a mistake is the only thing printed. */
const refused: Array<[string[], string, number]> = [
  [['--nonsense'], 'rag-guard: unknown command "--nonsense": use eval, calibrate or score', 2],
  [
    ['eval', 'data.jsonl', '--concurrency', '-3'],
    `rag-guard: --concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got "-3"`,
    2,
  ],
  [
    ['calibrate', 'scores.jsonl', '--block-precision', '-0.5'],
    'rag-guard: --block-precision must be a number from 0 to 1, got "-0.5"',
    2,
  ],
  [['eval', 'data.jsonl', '--out'], 'rag-guard: --out needs a value: --out <file>', 2],
  [
    ['eval', 'data.jsonl', '--out', '--limit', '1'],
    'rag-guard: --out needs a value: --out <file>',
    2,
  ],
  [
    ['calibrate', 'scores.jsonl', '--labels'],
    'rag-guard: --labels needs a value: --labels <file | URL>',
    2,
  ],
  [
    ['score', 'What does a day pass cost?', '--context', 'c'],
    'rag-guard: score takes no positional argument: give the text with --question and --context (got "What does a day pass cost?")',
    2,
  ],
  [
    ['eval', 'data.jsonl', 'two.jsonl'],
    'rag-guard: eval takes one data file: rag-guard eval <data.jsonl> (got "data.jsonl", "two.jsonl")',
    2,
  ],
  [['eval', 'data.jsonl', '--json'], 'rag-guard: --json is not an option of eval', 2],
  [['calibrate', 'scores.jsonl', '--json=yes'], 'rag-guard: --json takes no value, got "yes"', 2],
  [['eval', DIRECTORY], `rag-guard: the data file ${DIRECTORY} is a directory; give a file`, 2],
  [
    ['eval', 'data.jsonl', '--out', DIRECTORY],
    `rag-guard: --out ${DIRECTORY} is a directory; give a file`,
    2,
  ],
  [
    ['calibrate', 'scores.jsonl', '--report', DIRECTORY],
    `rag-guard: --report ${DIRECTORY} is a directory; give a file`,
    2,
  ],
  [
    ['calibrate', DIRECTORY],
    `rag-guard: the scores file ${DIRECTORY} is a directory; give a file`,
    2,
  ],
  [
    ['eval', 'data.jsonl', '--concurrency', '1e9'],
    `rag-guard: --concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got "1e9"`,
    2,
  ],
  [
    ['eval', 'data.jsonl', '--concurrency', '0'],
    `rag-guard: --concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got "0"`,
    2,
  ],
  [
    ['eval', 'data.jsonl', '--concurrency', 'abc'],
    `rag-guard: --concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got "abc"`,
    2,
  ],
  [['calibrate', 'seven.jsonl'], 'rag-guard: 1 bad score in seven.jsonl:', 2],
  [['calibrate', 'high.jsonl'], 'rag-guard: 1 bad score in high.jsonl:', 2],
  [
    ['calibrate', 'mixed.jsonl'],
    'rag-guard: mixed.jsonl mixes scores of two estimators (logprobs 20, sampling 20), which are not on one scale: calibrate one at a time with --estimator logprobs or --estimator sampling',
    2,
  ],
  [['calibrate', 'checks.jsonl'], 'rag-guard: 1 bad score in checks.jsonl:', 2],
]

describe('rag-guard refuses bad input in one line, before doing anything', () => {
  it.each(refused)('%j → %s (exit %i)', async (args, first, code) => {
    const run = await ragGuard(args)
    expect(run.code).toBe(code)
    expect(firstLine(run.stderr)).toBe(first)
    expect(run.stdout).toBe('')
    expectNoTrace(run)
  })

  it('names the line and the field of a score that is no score in [0, 1]', async () => {
    const seven = await ragGuard(['calibrate', 'seven.jsonl'])
    expect(seven.stderr.split('\n')[1]).toBe('  seven.jsonl:2: "score" is 7; scores lie in [0, 1]')
    const high = await ragGuard(['calibrate', 'high.jsonl'])
    expect(high.stderr.split('\n')[1]).toBe(
      '  high.jsonl:1: "score" is "high"; a score is a number in [0, 1], or null',
    )
    const checks = await ragGuard(['calibrate', 'checks.jsonl'])
    expect(checks.stderr.split('\n')[1]).toBe(
      '  checks.jsonl:1: "checks.groundedness.score" is -0.2; scores lie in [0, 1]',
    )
  })

  it('a mixed file is calibrated one estimator at a time, each with its own lines', async () => {
    const run = await ragGuard(['calibrate', 'mixed.jsonl', '--estimator', 'sampling', '--json'])
    expect(run.code).toBe(0)
    const report = JSON.parse(run.stdout) as {
      checks: { sufficiency: { counts: object; loaded: { otherEstimators: object } } }
    }
    expect(report.checks.sufficiency.counts).toEqual({
      total: 20,
      sufficient: 10,
      insufficient: 10,
    })
    expect(report.checks.sufficiency.loaded.otherEstimators).toEqual({ logprobs: 20 })
  })
})

describe('rag-guard answers --version and --help', () => {
  it.each([['--version'], ['-v'], ['version']])('%s prints the version, exit 0', async (flag) => {
    const run = await ragGuard([flag])
    expect(run).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' })
  })

  it.each([
    [['eval', '--help'], 'rag-guard eval <data.jsonl> [options]', '--concurrency <n>'],
    [['eval', 'data.jsonl', '-h'], 'rag-guard eval <data.jsonl> [options]', '--model <name>'],
    [['calibrate', '--help'], 'rag-guard calibrate <scores.jsonl | URL> [options]', '--json'],
    [['score', '--help'], 'rag-guard score --question <text>', '--block-below <t>'],
    [['help', 'score'], 'rag-guard score --question <text>', '--reasoning-effort <e>'],
  ])('%j prints that command’s usage, exit 0', async (args, usage, option) => {
    const run = await ragGuard(args)
    expect(run.code).toBe(0)
    expect(run.stderr).toBe('')
    expect(run.stdout).toContain(usage)
    expect(run.stdout).toContain(option)
    // That command's usage only.
    for (const other of ['rag-guard eval <', 'rag-guard calibrate <', 'rag-guard score --'])
      if (!usage.startsWith(other)) expect(run.stdout).not.toContain(other)
  })
})

describe('rag-guard eval when examples cannot be judged', () => {
  it.each([
    ['an unreachable judge', () => unreachableURL, 'judge-unreachable 2'],
    ['a judge that answers a web page', () => htmlURL, 'judge-bad-response 2'],
  ])(
    'with %s: every line is kept for the next run, the failures are counted by reason, exit 1',
    async (_, baseURL, counted) => {
      const output = `failed-${counted.split(' ')[0]}.jsonl`
      const run = await ragGuard(
        ['eval', 'two.jsonl', '--out', output, '--retries', '0', '--timeout-ms', '5000'],
        baseURL(),
      )
      expect(run.code).toBe(1)
      expect(run.stderr).toContain('done: 2 judged now, 0 already in')
      expect(run.stderr).toContain(
        `without a score: ${counted} (see "reason" and "message" in ${output}); the same command judges the ${counted.split(' ')[0]} ones again`,
      )
      expectNoTrace(run)
      const lines = readFileSync(join(directory, output), 'utf8').trim().split('\n')
      expect(lines.map((line) => JSON.parse(line) as { score: unknown })).toMatchObject([
        { score: null },
        { score: null },
      ])
    },
  )
})

describe('rag-guard calibrate --json', () => {
  it('counts groundedness labels in its own words', async () => {
    writeFileSync(
      join(directory, 'grounded.jsonl'),
      scored({ check: 'groundedness' }, (grounded) => (grounded ? 0.9 : 0.1))
        .map((line) => line.replace('"sufficient"', '"grounded"'))
        .join('\n'),
    )
    const run = await ragGuard(['calibrate', 'grounded.jsonl', '--json'])
    expect(run.code).toBe(0)
    const report = JSON.parse(run.stdout) as { checks: { groundedness: { counts: object } } }
    expect(report.checks.groundedness.counts).toEqual({
      total: 20,
      grounded: 10,
      hallucinated: 10,
    })
  })
})
