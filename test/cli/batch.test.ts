import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BatchError, openAIBatchProvider, type BatchProvider } from '../../src/cli/batch/provider'
import { buildInputs } from '../../src/cli/batch/inputs'
import { formatBatchSummary, runBatch, type BatchRunOptions } from '../../src/cli/batch/run'
import { readState } from '../../src/cli/batch/state'
import { readExamples, type Example } from '../../src/cli/data'
import { runEval } from '../../src/cli/eval'
import { createJudge, type JudgeOptions } from '../../src/judge/judge'
import { createJudgeRequests } from '../../src/judge/requests'
import { startStandInModel, STAND_IN_MODEL, type StandInServer } from '../../samples/stand-in-model'
import { startBatchStandIn, type BatchScript, type BatchStandIn } from '../stub/batch-api'
import { startOpenAIStub, type OpenAIStub, type RecordedRequest } from '../stub/openai-stub'

const ROOT = join(import.meta.dirname, '../..')
const HALUEVAL = join(ROOT, 'samples/data/halueval-qa-sample.jsonl')
const RECORDED = join(
  ROOT,
  'test/fixtures/openai-logprobs/openai-dotnet_TokenLogProbabilities_True.json',
)
let stub: OpenAIStub
let standIn: StandInServer
let counter = 0
const opened: BatchStandIn[] = []

beforeAll(async () => {
  stub = await startOpenAIStub()
  standIn = await startStandInModel()
})
afterAll(async () => {
  await Promise.all(opened.map((server) => server.close()))
  await stub.close()
  await standIn.close()
})

async function scripted(script: object) {
  const id = `batch-${counter++}`
  await fetch(`${stub.origin}/__scenarios/${id}`, { method: 'PUT', body: JSON.stringify(script) })
  return {
    baseURL: `${stub.origin}/s/${id}/v1`,
    requests: async () =>
      (await (
        await fetch(`${stub.origin}/__scenarios/${id}/requests`)
      ).json()) as RecordedRequest[],
  }
}

async function batchApi(chatBaseURL: string, script: BatchScript = {}) {
  const server = await startBatchStandIn(chatBaseURL, script)
  opened.push(server)
  return server
}

const temporary = () => mkdtempSync(join(tmpdir(), 'rag-guard-batch-'))
const silent = { write: () => true }
const judgeStep = {
  token: 'True',
  logprob: Math.log(0.7),
  topLogprobs: [
    { token: 'True', logprob: Math.log(0.7) },
    { token: 'False', logprob: Math.log(0.3) },
  ],
}
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
/** The random boundary of each prompt, the same everywhere, so two prompts can be compared. */
const sameBoundary = (body: unknown) =>
  JSON.parse(JSON.stringify(body).replace(/[0-9a-f]{32}/g, 'B'))

function examplesOf(count: number, extra: Partial<Example> = {}): Example[] {
  return Array.from({ length: count }, (_, index) => ({
    id: `e${index}`,
    question: `What is the height of tower ${index}?`,
    context: [`Tower ${index} is ${100 + index} metres high.`],
    answer: `${100 + index} metres.`,
    sufficient: index % 2 === 0,
    ...extra,
  }))
}

function run(options: Partial<BatchRunOptions> & Pick<BatchRunOptions, 'output' | 'provider'>) {
  return runBatch({
    examples: examplesOf(6),
    checks: ['sufficiency'],
    requests: createJudgeRequests({ apiKey: 'k', model: 'judge-model' }),
    pollMs: 1,
    progress: silent,
    ...options,
  })
}

describe('the requests of a batch are the online judge’s', () => {
  for (const [name, options] of [
    ['logprobs', { estimator: 'logprobs' }],
    ['sampling with n', { estimator: 'sampling', samples: 7, samplingTemperature: 0.8 }],
    ['a reasoning model', { estimator: 'sampling', model: 'gpt-5-mini', reasoningEffort: 'low' }],
  ] as Array<[string, Partial<JudgeOptions>]>) {
    it(`${name}: the same body, parameters and prompt, for both checks`, async () => {
      const model = await scripted({ token: 'True', samples: ['True'] })
      const settings = { apiKey: 'k', baseURL: model.baseURL, topLogprobs: 7, ...options }
      const input = { question: 'Who?', context: ['Ada wrote it.'], answer: 'Ada.' }
      const judge = createJudge(settings)
      await judge.judge(input, { check: 'sufficiency' })
      await judge.judge(input, { check: 'groundedness' })
      const sent = (await model.requests()).map((request) => sameBoundary(request.body))
      const requests = createJudgeRequests(settings)
      const built = (['sufficiency', 'groundedness'] as const).map((check) => {
        const request = requests.request(input, check)
        if (!request.ok) throw new Error('not built')
        return sameBoundary(request.body)
      })
      expect(sent).toHaveLength(2)
      expect(built).toEqual(sent)
    })
  }

  it('gives the online no-score result, with no request, for what cannot be judged', () => {
    const requests = createJudgeRequests({ apiKey: 'k' })
    const built = requests.request({ question: ' ', context: ['c'] }, 'sufficiency')
    expect(built).toMatchObject({ ok: false, result: { reason: 'no-question', ok: false } })
  })

  it('refuses auto and a chat model passed in, saying what to use', () => {
    expect(() => createJudgeRequests({ apiKey: 'k', estimator: 'auto' })).toThrow(
      'use --estimator logprobs or --estimator sampling',
    )
  })
})

describe('a batched reply scores exactly as the same reply online', () => {
  const recorded = JSON.parse(readFileSync(RECORDED, 'utf8')) as object
  const completion = (choices: object[], extra: object = {}) => ({
    id: 'chatcmpl-x',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini-2024-07-18',
    choices,
    usage: { prompt_tokens: 120, completion_tokens: 1, total_tokens: 121 },
    ...extra,
  })
  const logprobsChoice = (token: string, top: Array<[string, number]>) => ({
    index: 0,
    message: { role: 'assistant', content: token, refusal: null },
    logprobs: {
      content: [
        {
          token,
          logprob: top.find(([name]) => name === token)?.[1] ?? -5,
          bytes: null,
          top_logprobs: top.map(([name, logprob]) => ({ token: name, logprob, bytes: null })),
        },
      ],
      refusal: null,
    },
    finish_reason: 'length',
  })
  const text = (content: string | null, index = 0) => ({
    index,
    message: { role: 'assistant', content, refusal: content === null ? 'I cannot.' : null },
    logprobs: null,
    finish_reason: 'stop',
  })
  const replies: Array<[string, 'logprobs' | 'sampling', object]> = [
    ['a recorded OpenAI reply (no True/False)', 'logprobs', recorded],
    [
      'True at 70%',
      'logprobs',
      completion([
        logprobsChoice('True', [
          ['True', Math.log(0.7)],
          ['False', Math.log(0.3)],
        ]),
      ]),
    ],
    [
      'False, with BPE spellings',
      'logprobs',
      completion([
        logprobsChoice('False', [
          ['False', -0.1],
          ['ĠTrue', -3],
          [' false', -4],
          ['Yes', -6],
        ]),
      ]),
    ],
    [
      'little mass',
      'logprobs',
      completion([
        logprobsChoice('Yes', [
          ['Yes', -0.05],
          ['True', -4],
          ['False', -5],
        ]),
      ]),
    ],
    ['no logprobs', 'logprobs', completion([text('True')])],
    ['a refusal', 'logprobs', completion([text(null)])],
    [
      'five samples',
      'sampling',
      completion(
        ['True', 'False', 'True.', '**true**', 'Maybe'].map((answer, i) => text(answer, i)),
      ),
    ],
    ['no choices', 'sampling', completion([])],
  ]
  for (const [name, estimator, reply] of replies) {
    it(`${name} (${estimator})`, async () => {
      const model = await scripted({ json: reply })
      const settings = { apiKey: 'k', baseURL: model.baseURL, estimator, maxRetries: 0 }
      const online = await createJudge(settings).judge(
        { question: 'q', context: ['c'] },
        { check: 'groundedness' === name ? 'groundedness' : 'sufficiency' },
      )
      const batched = createJudgeRequests(settings).read('sufficiency', reply)
      expect({ ...batched, latencyMs: 0 }).toEqual({ ...online, latencyMs: 0 })
    })
  }

  it('an error status gets the online reason code, never the provider’s text', () => {
    const requests = createJudgeRequests({ apiKey: 'k' })
    const secret = { error: { message: 'bad key sk-secret', code: 'rate_limit_exceeded' } }
    expect(requests.failed('sufficiency', 429, secret)).toMatchObject({
      reason: 'judge-rate-limited',
      status: 429,
    })
    expect(
      requests.failed('sufficiency', 400, {
        error: { message: 'too long', code: 'context_length_exceeded' },
      }),
    ).toMatchObject({ reason: 'judge-context-overflow' })
    expect(JSON.stringify(requests.failed('groundedness', 500, secret))).not.toContain('sk-secret')
  })
})

describe('input files', () => {
  it('are split at the request and byte limits, one line each, every request once', () => {
    const output = join(temporary(), 'out.jsonl')
    const requests = createJudgeRequests({ apiKey: 'k', model: 'm' })
    const pending = examplesOf(7).map((example) => ({ example, check: 'sufficiency' as const }))
    const byCount = buildInputs(output, requests, pending, 1, { requests: 3, bytes: 1e9 })
    expect(byCount.parts.map((part) => part.requests)).toEqual([3, 3, 1])
    const oneLine = byCount.parts[0]!.bytes / 3
    const byBytes = buildInputs(output, requests, pending, 10, {
      requests: 100,
      bytes: Math.ceil(oneLine * 2.5),
    })
    expect(byBytes.parts.map((part) => part.requests)).toEqual([2, 2, 2, 1])
    expect(byBytes.parts.every((part) => part.bytes <= oneLine * 2.5)).toBe(true)
    const ids = byBytes.parts.flatMap((part) =>
      lines(join(`${output}.batch`, `${part.name}.jsonl`)).map((line) => line.custom_id),
    )
    expect(ids).toEqual(examplesOf(7).map((example) => `sufficiency:${example.id}`))
    expect(lines(join(`${output}.batch`, 'part-0010.jsonl'))[0]).toMatchObject({
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'm', logprobs: true, max_tokens: 1 },
    })
  })
})

describe('eval --batch against the stand-in Batch API', () => {
  it('submits, waits, and writes what the online eval writes, with the batch id', async () => {
    const model = await scripted(judgeStep)
    const api = await batchApi(model.baseURL, { perLook: 2 })
    const output = join(temporary(), 'out.jsonl')
    const progress: string[] = []
    const summary = await run({
      output,
      provider: openAIBatchProvider({ baseURL: api.baseURL, apiKey: 'k' }),
      progress: { write: (text: string) => progress.push(text) },
    })
    expect(summary).toMatchObject({ scored: 6, submitted: 6, waiting: 0, interrupted: false })
    const records = lines(output)
    expect(records).toHaveLength(6)
    expect(records[0]).toMatchObject({ estimator: 'logprobs', token: 'True' })
    expect(records[0]!.score).toBeCloseTo(0.7, 12)
    expect(records[0]!.batch).toBe(api.batches()[0]!.id)
    // Progress from request_counts, as the batch runs two requests a look.
    expect(progress.join('')).toContain('requests 2/6 completed')
    expect(readState(output)!.parts).toMatchObject([{ collected: true, status: 'completed' }])
    expect(formatBatchSummary(summary, output)[0]).toBe(
      `done: 6 judged now (6 scored), 0 already in ${output}, 6 requests submitted`,
    )
    // Run again: nothing to do, nothing submitted.
    const again = await run({ output, provider: openAIBatchProvider({ baseURL: api.baseURL }) })
    expect(again).toMatchObject({ skipped: 6, submitted: 0, scored: 0 })
    expect(api.batches()).toHaveLength(1)
  })

  it('records the batch before waiting: an interrupted run is picked up, never submitted twice', async () => {
    const model = await scripted(judgeStep)
    const api = await batchApi(model.baseURL, { perLook: 1 })
    const output = join(temporary(), 'out.jsonl')
    const stop = new AbortController()
    const first = await run({
      output,
      provider: openAIBatchProvider({ baseURL: api.baseURL }),
      signal: stop.signal,
      progress: { write: () => stop.abort() },
    })
    expect(first).toMatchObject({ interrupted: true, waiting: 6 })
    expect(readState(output)!.parts[0]!.batchId).toBe(api.batches()[0]!.id)
    const second = await run({ output, provider: openAIBatchProvider({ baseURL: api.baseURL }) })
    expect(second).toMatchObject({ submitted: 0, scored: 6, interrupted: false })
    expect(api.batches()).toHaveLength(1)
    expect(lines(output)).toHaveLength(6)
  })

  it('a crash between creating a batch and recording it: the next run finds the batch, and pays once', async () => {
    const model = await scripted(judgeStep)
    const api = await batchApi(model.baseURL)
    const output = join(temporary(), 'out.jsonl')
    const real = openAIBatchProvider({ baseURL: api.baseURL })
    const crashing: BatchProvider = {
      ...real,
      create: async (...args) => {
        await real.create(...args)
        throw new Error('the process died here')
      },
    }
    await expect(run({ output, provider: crashing })).rejects.toThrow('the process died here')
    expect(readState(output)!.parts[0]).toMatchObject({ inputFileId: expect.any(String) })
    expect(readState(output)!.parts[0]!.batchId).toBeUndefined()
    const summary = await run({ output, provider: real })
    expect(summary).toMatchObject({ scored: 6 })
    expect(api.batches()).toHaveLength(1)
    expect(api.calls.filter((call) => call === 'POST /v1/files')).toHaveLength(1)
  })

  it('an expired window keeps the results it has, and the rerun submits only the rest', async () => {
    const model = await scripted(judgeStep)
    const api = await batchApi(model.baseURL, { expireAfter: 4 })
    const output = join(temporary(), 'out.jsonl')
    const provider = openAIBatchProvider({ baseURL: api.baseURL })
    const first = await run({ output, provider })
    expect(first).toMatchObject({ scored: 4, waiting: 0 })
    expect(first.missing).toEqual(new Map([['expired', 2]]))
    expect(formatBatchSummary(first, output)).toContain(
      'no result: expired 2; run the same command again to submit them again',
    )
    expect(lines(output)).toHaveLength(4)
    api.script.expireAfter = undefined
    const second = await run({ output, provider })
    expect(second).toMatchObject({ skipped: 4, submitted: 2, scored: 2 })
    expect(api.batches().map((batch) => batch.requests)).toEqual([6, 2])
    expect(new Set(lines(output).map((record) => record.id)).size).toBe(6)
  })

  it('keeps each failed request with its reason, and submits only those again', async () => {
    const model = await scripted({
      rules: [{ contains: 'tower 3?', step: { status: 429 } }],
      otherwise: judgeStep,
    })
    const api = await batchApi(model.baseURL)
    const output = join(temporary(), 'out.jsonl')
    const provider = openAIBatchProvider({ baseURL: api.baseURL })
    const first = await run({ output, provider })
    expect(first.failed).toEqual(new Map([['judge-rate-limited', 1]]))
    expect(formatBatchSummary(first, output)[0]).toContain(
      '6 judged now (5 scored, 1 without a score: judge-rate-limited 1)',
    )
    expect(lines(output).find((record) => record.id === 'e3')).toMatchObject({
      score: null,
      reason: 'judge-rate-limited',
    })
    await fetch(`${stub.origin}/__scenarios/${model.baseURL.split('/')[4]}`, {
      method: 'PUT',
      body: JSON.stringify(judgeStep),
    })
    const second = await run({ output, provider })
    expect(second).toMatchObject({ submitted: 1, scored: 1 })
  })

  it('a rejected input file: the batch’s errors are told, nothing is lost, the rerun submits again', async () => {
    const model = await scripted(judgeStep)
    const api = await batchApi(model.baseURL, { maxRequests: 4 })
    const output = join(temporary(), 'out.jsonl')
    const provider = openAIBatchProvider({ baseURL: api.baseURL })
    const first = await run({ output, provider, limits: { requests: 5, bytes: 1e9 } })
    expect(first.missing).toEqual(new Map([['rejected', 5]]))
    expect(first.scored).toBe(1)
    expect(formatBatchSummary(first, output)).toContain(
      `input file rejected: part-0001 ${api.batches()[0]!.id} collected 0/0 rejected: too_many_requests`,
    )
    expect(readState(output)!.parts[0]).toMatchObject({
      status: 'failed',
      rejected: [{ code: 'too_many_requests' }],
    })
    const second = await run({ output, provider, limits: { requests: 4, bytes: 1e9 } })
    expect(second).toMatchObject({ submitted: 5, scored: 5 })
    expect(new Set(lines(output).map((record) => record.id)).size).toBe(6)
  })

  it('--cancel cancels what runs; the next run keeps what was done and submits the rest', async () => {
    const model = await scripted(judgeStep)
    const api = await batchApi(model.baseURL, { perLook: 2 })
    const output = join(temporary(), 'out.jsonl')
    const provider = openAIBatchProvider({ baseURL: api.baseURL })
    const stop = new AbortController()
    await run({ output, provider, signal: stop.signal, progress: { write: () => stop.abort() } })
    const cancelled = await run({ output, provider, mode: 'cancel' })
    expect(cancelled.parts[0]).toMatchObject({ status: 'cancelling' })
    const status = await run({ output, provider, mode: 'status' })
    expect(status.parts[0]).toMatchObject({ status: 'cancelled' })
    expect(existsSync(output) ? readFileSync(output, 'utf8') : '').toBe('') // nothing collected
    const next = await run({ output, provider })
    expect(next.missing).toEqual(new Map([['cancelled', 4]]))
    expect(next).toMatchObject({ scored: 6, submitted: 4 })
  })

  it('sampling with n: the scores of the online eval, from one request per example and check', async () => {
    // One row per question, so each prompt is asked once by each path, whatever their order.
    const examples = readExamples(readFileSync(HALUEVAL, 'utf8'), 'halueval', {
      checks: ['sufficiency', 'groundedness'],
    })
      .examples.filter((example) => example.id.endsWith('-right'))
      .slice(0, 12)
    // The stand-in draws each prompt's samples in sequence from its first, in the process that
    // runs it: the online eval gets a stand-in process of its own.
    const own = await standInProcess()
    const settings = { model: STAND_IN_MODEL, estimator: 'sampling' as const, samples: 5 }
    const directory = temporary()
    try {
      await runEval({
        examples,
        judge: createJudge({ ...settings, baseURL: own.baseURL }),
        checks: ['sufficiency', 'groundedness'],
        output: join(directory, 'online.jsonl'),
        progress: silent,
      })
    } finally {
      own.stop()
    }
    const api = await batchApi(standIn.baseURL)
    const summary = await run({
      examples,
      checks: ['sufficiency', 'groundedness'],
      output: join(directory, 'batch.jsonl'),
      requests: createJudgeRequests({ ...settings, baseURL: api.baseURL }),
      provider: openAIBatchProvider({ baseURL: api.baseURL }),
    })
    expect(summary).toMatchObject({ scored: 24, fewerSamples: 0 })
    const read = (file: string) =>
      Object.fromEntries(
        lines(join(directory, file)).map((record) => [
          `${record.check ?? 'sufficiency'}:${record.id}`,
          [record.score, record.trueCount, record.falseCount, record.requests, record.estimator],
        ]),
      )
    expect(read('batch.jsonl')).toEqual(read('online.jsonl'))
    const input = lines(join(directory, 'batch.jsonl'))[0]!
    expect(input).toMatchObject({ estimator: 'sampling', samples: 5, requests: 1 })
  })

  it('sampling from a provider that ignores n: scored on what came, and said', async () => {
    const model = await scripted({ token: 'True', n: 'ignore' })
    const api = await batchApi(model.baseURL)
    const output = join(temporary(), 'out.jsonl')
    const summary = await run({
      output,
      provider: openAIBatchProvider({ baseURL: api.baseURL }),
      requests: createJudgeRequests({ apiKey: 'k', estimator: 'sampling', samples: 5 }),
    })
    expect(summary).toMatchObject({ scored: 6, fewerSamples: 6 })
    expect(formatBatchSummary(summary, output)[1]).toBe(
      '6 sampling replies held fewer answers than asked for (the provider ignored "n"): their scores rest on fewer samples',
    )
    expect(lines(output)[0]).toMatchObject({ samples: 1, trueCount: 1 })
  })

  it('refuses the batches of another judge', async () => {
    const model = await scripted(judgeStep)
    const api = await batchApi(model.baseURL)
    const output = join(temporary(), 'out.jsonl')
    const provider = openAIBatchProvider({ baseURL: api.baseURL })
    await run({ output, provider })
    await expect(
      run({ output, provider, requests: createJudgeRequests({ apiKey: 'k', model: 'other' }) }),
    ).rejects.toThrow(BatchError)
  })
})

/** The stand-in model in a process of its own (its sample draws are its own). */
async function standInProcess() {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'samples/stand-in-model.ts'), '0'],
    {
      cwd: ROOT,
    },
  )
  let printed = ''
  const baseURL = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      printed += chunk.toString()
      const found = printed.match(/at (http:\/\/127\.0\.0\.1:\d+\/v1)/)
      if (found) resolve(found[1]!)
    })
    child.on('exit', () => reject(new Error(`the stand-in stopped: ${printed}`)))
  })
  return { baseURL, stop: () => child.kill() }
}

/** Runs the command as a user does. */
function ragGuard(
  args: string[],
  cwd: string,
  baseURL: string,
  env: Record<string, string> = {},
  interrupt?: 'once waiting',
) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/rag-guard.mjs'), ...args], {
      cwd,
      env: {
        ...process.env,
        OPENAI_API_KEY: '',
        OPENAI_BASE_URL: baseURL,
        JUDGE_MODEL: STAND_IN_MODEL,
        JUDGE_ESTIMATOR: '',
        ...env,
      },
    })
    let stdout = ''
    let stderr = ''
    let interrupted = false
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      // Ctrl-C once the batch is submitted and the first progress line is out.
      if (interrupt && !interrupted && stderr.includes('batches: 0/1 done')) {
        interrupted = true
        child.kill('SIGINT')
      }
    })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('end to end: the HaluEval sample, both checks, batch and online', () => {
  it('eval --batch then calibrate gives the report of the online eval against the same model', async () => {
    const api = await batchApi(standIn.baseURL, { perLook: 150 })
    const directory = temporary()
    const checks = ['--checks', 'sufficiency,groundedness']
    const online = await ragGuard(
      ['eval', HALUEVAL, ...checks, '--out', 'online.jsonl'],
      directory,
      standIn.baseURL,
    )
    expect(online.code).toBe(0)
    const batched = await ragGuard(
      ['eval', HALUEVAL, ...checks, '--out', 'batch.jsonl', '--batch', '--poll-seconds', '0.01'],
      directory,
      api.baseURL,
    )
    expect(batched.stderr).toContain(
      'done: 400 judged now (400 scored), 0 already in batch.jsonl, 400 requests submitted',
    )
    expect(batched.code).toBe(0)
    const scores = (file: string) =>
      Object.fromEntries(
        lines(join(directory, file)).map((record) => [
          `${record.check ?? 'sufficiency'}:${record.id}`,
          record.score,
        ]),
      )
    expect(scores('batch.jsonl')).toEqual(scores('online.jsonl'))
    const report = async (file: string) =>
      (await ragGuard(['calibrate', file, '--json'], directory, standIn.baseURL)).stdout
    const [fromBatch, fromOnline] = [await report('batch.jsonl'), await report('online.jsonl')]
    expect(JSON.parse(fromBatch).checks.groundedness.auroc).toBeCloseTo(0.903, 3)
    expect(fromBatch).toBe(fromOnline)

    const status = await ragGuard(
      ['eval', HALUEVAL, ...checks, '--out', 'batch.jsonl', '--batch', '--status'],
      directory,
      api.baseURL,
    )
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/^part-0001 batch-standin\d+ collected 400\/400\n$/)
  }, 300_000)

  it('a provider without the Batch API: one line, use the online mode', async () => {
    const result = await ragGuard(
      ['eval', HALUEVAL, '--batch', '--limit', '2'],
      temporary(),
      standIn.baseURL,
    )
    expect(result.code).toBe(2)
    expect(result.stderr.split('\n').slice(1)).toEqual([
      `rag-guard: ${standIn.baseURL} has no Batch API (GET /batches answered 404): run rag-guard eval without --batch`,
      '',
    ])
  }, 120_000)

  it('an online eval into an output with batches still out is refused: nothing is paid twice', async () => {
    const api = await batchApi(standIn.baseURL, { perLook: 0 })
    const directory = temporary()
    const args = ['eval', HALUEVAL, '--limit', '3', '--out', 'out.jsonl']
    const submitted = await ragGuard(
      [...args, '--batch', '--poll-seconds', '60'],
      directory,
      api.baseURL,
      {},
      'once waiting',
    )
    expect(submitted.stderr).toContain(
      'waiting: 3 requests in batches still running at the provider',
    )
    const online = await ragGuard(args, directory, standIn.baseURL)
    expect(online.code).toBe(2)
    expect(online.stderr).toBe(
      'rag-guard: 3 requests of out.jsonl are in batches not collected yet (out.jsonl.batch): run with --batch to collect them, or --batch --cancel first\n',
    )
  }, 120_000)

  it('--status and --cancel without --batch, and auto, are refused plainly', async () => {
    const status = await ragGuard(['eval', HALUEVAL, '--status'], temporary(), standIn.baseURL)
    expect(status.stderr).toBe('rag-guard: --status and --cancel go with --batch\n')
    const auto = await ragGuard(['eval', HALUEVAL, '--batch'], temporary(), standIn.baseURL, {
      JUDGE_ESTIMATOR: 'auto',
    })
    expect(auto.code).toBe(2)
    expect(auto.stderr).toContain('use --estimator logprobs or --estimator sampling')
  }, 120_000)
})
