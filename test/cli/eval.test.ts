import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseExamples, DataError } from '../../src/cli/data'
import { alreadyJudged, runEval } from '../../src/cli/eval'
import { createJudge } from '../../src/judge/judge'
import { startOpenAIStub, type OpenAIStub, type RecordedRequest } from '../stub/openai-stub'

const SQUAD = join(import.meta.dirname, '../../samples/data/squad2-sample.jsonl')
const ROOT = join(import.meta.dirname, '../..')
let stub: OpenAIStub
let counter = 0

beforeAll(async () => {
  stub = await startOpenAIStub()
})
afterAll(async () => {
  await stub.close()
})

async function scripted(step: object) {
  const id = `eval-${counter++}`
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
const temporary = () => mkdtempSync(join(tmpdir(), 'rag-guard-eval-'))

/** A stream that records what is written, and passes for a terminal. */
function terminal() {
  const written: string[] = []
  return { isTTY: true, columns: 120, written, write: (text: string) => written.push(text) }
}

describe('reading examples', () => {
  it('accepts the SQuAD sample as it is', () => {
    const examples = parseExamples(readFileSync(SQUAD, 'utf8'), 'squad')
    expect(examples).toHaveLength(120)
    expect(examples.filter((example) => example.sufficient)).toHaveLength(60)
    expect(examples[0]).toMatchObject({ id: '89adf6ebb0d9eb5deba458daa', sufficient: false })
  })

  it('accepts the documented label spellings and context shapes', () => {
    const text = [
      { question: 'q1', context: 'c', label: 'Sufficient' },
      { question: 'q2', context: ['a', 'b'], label: 'unanswerable' },
      { question: 'q3', context: [{ pageContent: 'js' }, { page_content: 'py' }], sufficient: 1 },
    ]
      .map((line) => JSON.stringify(line))
      .join('\n')
    expect(parseExamples(text, 'x')).toEqual([
      { id: 'line-1', question: 'q1', context: ['c'], sufficient: true },
      { id: 'line-2', question: 'q2', context: ['a', 'b'], sufficient: false },
      { id: 'line-3', question: 'q3', context: ['js', 'py'], sufficient: true },
    ])
  })

  it('reports every bad line at once, by line number, with what is allowed', () => {
    const text = [
      'not json',
      JSON.stringify({ question: '', context: 'c', sufficient: true }),
      JSON.stringify({ question: 'q', context: 5, label: 'maybe' }),
      JSON.stringify({ question: 'q', context: 'c' }),
    ].join('\n')
    expect(() => parseExamples(text, 'data.jsonl')).toThrow(DataError)
    let message = ''
    try {
      parseExamples(text, 'data.jsonl')
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain('5 problems in data.jsonl')
    expect(message).toContain('data.jsonl:1: not a JSON object')
    expect(message).toContain('data.jsonl:2: "question" must be a non-empty string')
    expect(message).toContain('data.jsonl:3: "context" must be a string')
    expect(message).toContain(
      'data.jsonl:3: "label" is "maybe"; use true/false, or one of sufficient, answerable',
    )
    expect(message).toContain('data.jsonl:4: no label')
  })
})

describe('rag-guard eval against the stub model server', () => {
  it('judges the SQuAD sample, resumes after an interruption without judging anything twice, and shows progress', async () => {
    const model = await scripted({ ...judgeStep, delayMs: 5 })
    const judge = createJudge({ apiKey: 'k', baseURL: model.baseURL, maxRetries: 0 })
    const examples = parseExamples(readFileSync(SQUAD, 'utf8'), 'squad')
    const output = join(temporary(), 'scores.jsonl')

    // First run: interrupted once 60 results are in.
    const stop = new AbortController()
    const first = terminal()
    const firstRun = await runEval({
      examples,
      judge,
      output,
      concurrency: 4,
      signal: stop.signal,
      progress: {
        ...first,
        write: (text: string) => (
          first.written.push(text),
          first.written.length >= 60 && stop.abort()
        ),
      },
    })
    expect(firstRun.interrupted).toBe(true)
    const afterFirst = readFileSync(output, 'utf8').trim().split('\n')
    expect(afterFirst.length).toBeGreaterThanOrEqual(60)
    expect(afterFirst.length).toBeLessThan(120)
    expect((await model.requests()).length).toBe(afterFirst.length)
    expect(first.written.join('')).toMatch(
      /\rjudging \[#*\.*\] \d+\/120 \d+% · [\d.]+\/s · ETA \S+/,
    )

    // Second run: only the rest is judged.
    const secondRun = await runEval({
      examples,
      judge,
      output,
      concurrency: 4,
      progress: terminal(),
    })
    expect(secondRun).toMatchObject({
      skipped: afterFirst.length,
      judged: 120 - afterFirst.length,
      interrupted: false,
    })
    expect((await model.requests()).length).toBe(120)
    const records = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            id: string
            score: number
            sufficient: boolean
            pTrue: number
            model: string
            promptVersion: string
            latencyMs: number
            inputTokens: number
          },
      )
    expect(new Set(records.map((record) => record.id)).size).toBe(120)
    expect(records[0]).toMatchObject({
      score: expect.closeTo(0.7, 10),
      pTrue: expect.closeTo(0.7, 10),
      model: 'gpt-4o-mini',
      inputTokens: 42,
    })
    expect(records.filter((record) => record.sufficient)).toHaveLength(60)
  })

  it('writes failures with their reason, and judges them again on the next run', async () => {
    const model = await scripted({ steps: [{ status: 503 }, { status: 503 }, judgeStep] })
    const judge = createJudge({ apiKey: 'k', baseURL: model.baseURL, maxRetries: 0 })
    const examples = parseExamples(
      [
        JSON.stringify({ id: 'a', question: 'q', context: 'c', sufficient: true }),
        JSON.stringify({ id: 'b', question: 'q2', context: 'c', sufficient: false }),
      ].join('\n'),
      'x',
    )
    const output = join(temporary(), 'scores.jsonl')
    const first = await runEval({ examples, judge, output, concurrency: 1, progress: terminal() })
    expect(first.withoutScore).toBe(2)
    expect(first.failures).toEqual({ 'judge-http-error': 2 })
    expect(readFileSync(output, 'utf8')).toContain('"reason":"judge-http-error"')
    expect(alreadyJudged(output).size).toBe(0)
    const second = await runEval({ examples, judge, output, concurrency: 1, progress: terminal() })
    expect(second).toMatchObject({ judged: 2, withoutScore: 0 })
    expect(alreadyJudged(output)).toEqual(new Set(['a', 'b']))
  })

  it('starts no more workers than there are calls to make: a huge concurrency on one example is one call', async () => {
    const model = await scripted(judgeStep)
    const judge = createJudge({ apiKey: 'k', baseURL: model.baseURL })
    const examples = parseExamples(
      JSON.stringify({ id: 'a', question: 'q', context: 'c', sufficient: true }),
      'x',
    )
    const output = join(temporary(), 'scores.jsonl')
    // 2^32 workers cannot even be listed (an array that long is a RangeError): capped, it is one.
    const summary = await runEval({
      examples,
      judge,
      output,
      concurrency: 2 ** 32,
      progress: terminal(),
    })
    expect(summary).toMatchObject({ judged: 1, withoutScore: 0, failures: {} })
    expect(await model.requests()).toHaveLength(1)
  })

  it('judges again only what the infrastructure failed: the judge’s reply to the data is final, as the guard’s reason table has it', () => {
    const output = join(temporary(), 'scores.jsonl')
    const reasons = [
      'judge-timeout',
      'judge-http-error',
      'judge-rate-limited',
      'unexpected-token',
      'low-answer-mass',
      'no-logprobs',
      'judge-refusal',
      'judge-content-filter',
    ]
    writeFileSync(
      output,
      reasons.map((reason) => JSON.stringify({ id: reason, score: null, reason })).join('\n'),
    )
    expect([...alreadyJudged(output)].sort()).toEqual([
      'judge-content-filter',
      'judge-refusal',
      'low-answer-mass',
      'no-logprobs',
      'unexpected-token',
    ])
  })

  it('as a command: Ctrl-C stops it cleanly (exit 130), and the same command finishes the job', async () => {
    const model = await scripted({ ...judgeStep, delayMs: 60 })
    const directory = temporary()
    const output = join(directory, 'scores.jsonl')
    const run = (interruptAfterMs?: number) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [join(ROOT, 'bin/rag-guard.mjs'), 'eval', SQUAD, '--out', output, '--concurrency', '2'],
          {
            cwd: directory,
            env: { ...process.env, OPENAI_API_KEY: 'sk-cli-test', OPENAI_BASE_URL: model.baseURL },
          },
        )
        let stderr = ''
        // One Ctrl-C only: a second one, from a timer set by a later progress line, would kill
        // the command while it is still stopping cleanly (on a busy machine).
        let interrupting = false
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString()
          if (interruptAfterMs !== undefined && /judging/.test(stderr) && !interrupting) {
            interrupting = true
            setTimeout(() => child.kill('SIGINT'), interruptAfterMs)
          }
        })
        child.on('close', (code) => resolve({ code, stderr }))
      })
    const interrupted = await run(0)
    expect(interrupted.code).toBe(130)
    expect(interrupted.stderr).toContain('run the same command again to resume')
    const partial = readFileSync(output, 'utf8').trim().split('\n').length
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThan(120)
    const finished = await run()
    expect(finished.code).toBe(0)
    expect(finished.stderr).toContain(`done: ${120 - partial} judged now, ${partial} already in`)
    expect((await model.requests()).length).toBe(120)
    expect(finished.stderr + interrupted.stderr).not.toContain('sk-cli-test')
  })

  it('as a command: a clear error for bad input, no stack trace', async () => {
    const directory = temporary()
    writeFileSync(join(directory, 'bad.jsonl'), '{"question": "q"}\n')
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [join(ROOT, 'bin/rag-guard.mjs'), 'eval', join(directory, 'bad.jsonl')],
        { env: { ...process.env, OPENAI_API_KEY: 'k' } },
      )
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      child.on('close', (code) => resolve({ code, stderr }))
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(
      /^rag-guard: 2 problems in .*bad\.jsonl:\n {2}.*bad\.jsonl:1: "context" must be/,
    )
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })
})
