/**
 * Issue 17: judges without logprobs. The sampling estimate of P(True), the automatic fallback
 * from logprobs to sampling, and the estimator seen in every result, header, log line and
 * cache key — against the stub model server playing models that refuse logprobs, honour or
 * ignore `n`, and think before they answer.
 */
import { env } from 'cloudflare:workers'
import { SimpleChatModel } from '@langchain/core/language_models/chat_models'
import type { BaseMessage } from '@langchain/core/messages'
import { ChatOpenAI } from '@langchain/openai'
import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  cacheKey,
  ConfigurationError,
  createJudge,
  kvStore,
  ragGuard,
  readAnnotation,
  readAnswer,
  REASON_POLICY,
  smoothedShare,
  type DecisionRecord,
  type JudgeOptions,
  type RagGuardOptions,
} from '../src'
import { parseConfig, WORKER_SETTINGS } from '../src/config'
import { createJudging } from '../src/guard/judging'
import { samplingEstimate } from '../src/judge/estimators/sampling'
import { parse } from 'smol-toml'
import reasoningSampling from '../samples/configs/reasoning-sampling.toml?raw'
import { chunk, postJson, setupGuard, sse } from './guard-helpers'
import { scriptModel } from './helpers'
import type { RecordedRequest, StubScript, StubStep } from './stub/openai-stub'

interface SentRequest {
  model: string
  n?: number
  temperature?: number
  logprobs?: boolean
  top_logprobs?: number
  max_tokens?: number
  max_completion_tokens?: number
  reasoning_effort?: string
}

const body = (request: RecordedRequest) => request.body as SentRequest
const input = { question: 'Which company makes the bikes?', context: ['The bikes are blue.'] }

/** A judge of the stub, by sampling unless the options say otherwise. */
async function sampler(script: StubScript, options: JudgeOptions = {}) {
  const model = await scriptModel(script)
  const judge = createJudge({
    apiKey: 'sk-test',
    baseURL: model.baseURL,
    maxRetries: 0,
    estimator: 'sampling',
    ...options,
  })
  return { model, judge }
}

/** The score by hand: (t + ½) / (t + f + 1). */
const byHand = (trueCount: number, falseCount: number) =>
  (trueCount + 0.5) / (trueCount + falseCount + 1)

afterEach(() => {
  vi.restoreAllMocks()
})

describe('reading a sampled answer', () => {
  it.each([
    ['True', 'true'],
    [' true', 'true'],
    ['TRUE', 'true'],
    ['True.', 'true'],
    ['"True"', 'true'],
    ["'false'!", 'false'],
    ['**False**', 'false'],
    ['False\n', 'false'],
    ['“True”', 'true'],
    ['<think>The documents name no maker.</think>\nFalse', 'false'],
  ])('%j is %s', (text, answer) => {
    expect(readAnswer(text)).toBe(answer)
  })

  it.each(['Yes', 'No', 'True, because the documents say so.', 'Truth', '', 'true false'])(
    '%j is neither',
    (text) => {
      expect(readAnswer(text)).toBeUndefined()
    },
  )
})

describe('the sampling score', () => {
  it('is (t + ½) / (t + f + 1): the values a score from 5 samples can take', () => {
    expect([0, 1, 2, 3, 4, 5].map((t) => smoothedShare(t, 5 - t))).toEqual([
      0.5 / 6,
      1.5 / 6,
      2.5 / 6,
      3.5 / 6,
      4.5 / 6,
      5.5 / 6,
    ])
    // Symmetric, never 0 or 1, and more samples move the extremes outward.
    expect(smoothedShare(2, 3)).toBeCloseTo(1 - smoothedShare(3, 2), 12)
    expect(smoothedShare(20, 0)).toBeGreaterThan(smoothedShare(5, 0))
    // Five False fall under the default blockBelow (0.1).
    expect(smoothedShare(0, 5)).toBeLessThan(0.1)
  })

  it('leaves answers that are neither out of both counts, and says how many answered at all', () => {
    const answers = ['True', 'Yes', 'True.', 'false', 'Maybe'].map((text) => ({ text }))
    expect(samplingEstimate(answers, 1, 0.5)).toEqual({
      ok: true,
      estimator: 'sampling',
      score: byHand(2, 1),
      pTrue: 2 / 5,
      pFalse: 1 / 5,
      mass: 3 / 5,
      samples: 5,
      trueCount: 2,
      falseCount: 1,
      requests: 1,
    })
  })

  it('gives no score when too few answered True or False (low-answer-mass), or none did (no-samples)', () => {
    const mostlyYes = ['Yes', 'Yes', 'Yes', 'True', 'False'].map((text) => ({ text }))
    expect(samplingEstimate(mostlyYes, 1, 0.5)).toMatchObject({
      ok: false,
      reason: 'low-answer-mass',
      mass: 2 / 5,
      token: 'Yes',
    })
    const none = ['Yes', 'Sure', 'Yes'].map((text) => ({ text }))
    expect(samplingEstimate(none, 3, 0.5)).toMatchObject({
      ok: false,
      reason: 'no-samples',
      samples: 3,
      trueCount: 0,
      falseCount: 0,
    })
  })
})

describe('sampling against the model server', () => {
  const varied = ['True', 'False', ' True.', '"false"', 'TRUE']

  it('asks once with n: N answers at the sampling temperature, no logprobs, a few output tokens; scored by hand', async () => {
    const { model, judge } = await sampler({ samples: varied })
    const result = await judge.judge(input)

    const requests = await model.requests()
    expect(requests).toHaveLength(1)
    const sent = body(requests[0]!)
    expect(sent.n).toBe(5)
    expect(sent.temperature).toBe(1)
    expect(sent.max_tokens).toBe(5)
    expect(sent.logprobs).toBeUndefined()
    expect(sent.top_logprobs).toBeUndefined()
    expect(result).toMatchObject({
      ok: true,
      estimator: 'sampling',
      score: byHand(3, 2),
      pTrue: 3 / 5,
      pFalse: 2 / 5,
      mass: 1,
      samples: 5,
      trueCount: 3,
      falseCount: 2,
      requests: 1,
      // One prompt's input tokens, five one-word outputs.
      usage: { inputTokens: 42, outputTokens: 5, totalTokens: 47 },
    })
  })

  it('takes samples, temperature and output budget from the options', async () => {
    const { model, judge } = await sampler(
      { samples: ['False'] },
      { samples: 8, samplingTemperature: 0.7, maxOutputTokens: 12 },
    )
    expect(await judge.judge(input)).toMatchObject({ score: byHand(0, 8), samples: 8 })
    const sent = body((await model.requests())[0]!)
    expect([sent.n, sent.temperature, sent.max_tokens]).toEqual([8, 0.7, 12])
  })

  it('a server that ignores n: the rest come from concurrent requests of one, and the next call asks N at once', async () => {
    const { model, judge } = await sampler({ n: 'ignore', samples: varied, delayMs: 100 })
    const first = await judge.judge(input)
    expect(first).toMatchObject({ ok: true, score: byHand(3, 2), samples: 5, requests: 5 })
    let requests = await model.requests()
    expect(requests.map((request) => body(request).n)).toEqual([5, undefined, ...Array(3)])
    // The four that follow the ignored n were in flight together.
    expect(Math.max(...requests.slice(1).map((request) => request.inFlight))).toBe(4)
    expect(first.usage).toEqual({ inputTokens: 5 * 42, outputTokens: 5, totalTokens: 5 * 43 })

    // One short reply is not reason enough to stop asking with n (issue 24: only N in a row).
    const second = await judge.judge(input)
    requests = (await model.requests()).slice(5)
    expect(requests.map((request) => body(request).n)).toEqual([5, undefined, ...Array(3)])
    expect(second).toMatchObject({ ok: true, samples: 5, requests: 5 })
  })

  it('a server that refuses n: N concurrent requests instead, and remembered', async () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { model, judge } = await sampler({ n: 'reject', samples: ['True'] })
    expect(await judge.judge(input)).toMatchObject({ ok: true, score: byHand(5, 0), requests: 5 })
    const requests = await model.requests()
    expect(requests.map((request) => body(request).n)).toEqual([5, ...Array(5)])

    await judge.judge(input)
    expect(await model.requests()).toHaveLength(6 + 5)
    // Said once to the operator, not at every call.
    expect(warned).toHaveBeenCalledTimes(1)
    expect(String(warned.mock.calls[0]![0])).toContain(
      'the model does not honour n (it refused \\"n\\")',
    )
    warned.mockRestore()
  })

  it('a failed sample request is asked again alone; the answers already read are kept', async () => {
    const ok: StubStep = { n: 'ignore', samples: ['True', 'False'] }
    const { model, judge } = await sampler(
      { steps: [ok, ok, { status: 500 }, ok, ok, ok] },
      { maxRetries: 1, timeoutMs: 10_000 },
    )
    const result = await judge.judge(input)
    expect(result).toMatchObject({ ok: true, samples: 5, requests: 5 })
    // One with n, four of one (one failing), and one retry.
    expect(await model.requests()).toHaveLength(6)
  })

  it('a sample request that keeps failing gives the failure, not a score from fewer samples', async () => {
    const ok: StubStep = { n: 'ignore', samples: ['True'] }
    const { model, judge } = await sampler({ steps: [ok, ok, { status: 503 }, ok] })
    expect(await judge.judge(input)).toMatchObject({
      ok: false,
      estimator: 'sampling',
      reason: 'judge-http-error',
      status: 503,
    })
    expect(await model.requests()).toHaveLength(5)
  })
})

describe('reasoning models get the output budget they need', () => {
  it('sampling a gpt-5 model: max_completion_tokens 4096 and reasoning_effort, not one token', async () => {
    const { model, judge } = await sampler(
      { reasoningTokens: 300, samples: ['True', 'True', 'False', 'True', 'True'] },
      { model: 'gpt-5-mini', reasoningEffort: 'low' },
    )
    const result = await judge.judge(input)
    const sent = body((await model.requests())[0]!)
    expect(sent.max_completion_tokens).toBe(4096)
    expect(sent.max_tokens).toBeUndefined()
    expect(sent.reasoning_effort).toBe('low')
    expect(sent.temperature).toBe(1)
    expect(result).toMatchObject({ ok: true, score: byHand(4, 1), trueCount: 4 })
  })

  it('the same model held to one token thinks and never answers: no-samples, saying why', async () => {
    const { judge } = await sampler(
      { reasoningTokens: 300, samples: ['True'] },
      { model: 'gpt-5-mini', maxOutputTokens: 1 },
    )
    const result = await judge.judge(input)
    expect(result).toMatchObject({ ok: false, reason: 'no-samples', estimator: 'sampling' })
    expect(!result.ok && result.message).toMatch(/5 ran out of output tokens.*maxOutputTokens/)
  })

  it('logprobs from a reasoning model that gives them (gpt-5.1 at effort none): a reasoning budget too', async () => {
    const model = await scriptModel({ token: 'True', logprob: Math.log(0.8) })
    await createJudge({
      apiKey: 'k',
      baseURL: model.baseURL,
      model: 'gpt-5.1',
      reasoningEffort: 'none',
    }).judge(input)
    const sent = body((await model.requests())[0]!)
    expect(sent.logprobs).toBe(true)
    expect(sent.max_completion_tokens).toBe(4096)
    expect(sent.reasoning_effort).toBe('none')
  })

  it('a model LangChain does not know as a reasoning model gets reasoning_effort all the same, and its budget as max_completion_tokens', async () => {
    const { model, judge } = await sampler(
      { samples: ['True'] },
      { model: '@cf/openai/gpt-oss-120b', reasoningEffort: 'low' },
    )
    expect(await judge.judge(input)).toMatchObject({ ok: true })
    const sent = body((await model.requests())[0]!)
    expect(sent.reasoning_effort).toBe('low')
    expect(sent.max_completion_tokens).toBe(4096)
    expect(sent).not.toHaveProperty('max_tokens')
  })

  it.each([
    ['sampling', { estimator: 'sampling' as const }, 4096],
    ['logprobs', { estimator: 'logprobs' as const }, 4096],
    [
      'sampling, with its own budget',
      { estimator: 'sampling' as const, maxOutputTokens: 900 },
      900,
    ],
  ])(
    'an Azure deployment of a reasoning model (any name) given an effort is sent max_completion_tokens, never max_tokens (%s)',
    async (_, options, tokens) => {
      const model = await scriptModel({ token: 'True', logprob: Math.log(0.8) })
      await createJudge({
        apiKey: 'k',
        baseURL: model.baseURL,
        model: 'judge-o3-deployment',
        reasoningEffort: 'medium',
        ...options,
      }).judge(input)
      const sent = body((await model.requests())[0]!)
      expect(sent).toMatchObject({ reasoning_effort: 'medium', max_completion_tokens: tokens })
      expect(sent).not.toHaveProperty('max_tokens')
    },
  )

  it('a model not known to reason and given no effort (or effort none) keeps max_tokens', async () => {
    for (const reasoningEffort of [undefined, 'none' as const]) {
      const model = await scriptModel({ token: 'True', logprob: Math.log(0.8) })
      await createJudge({
        apiKey: 'k',
        baseURL: model.baseURL,
        model: 'judge-deployment',
        ...(reasoningEffort ? { reasoningEffort } : {}),
      }).judge(input)
      const sent = body((await model.requests())[0]!)
      expect(sent.max_tokens).toBe(1)
      expect(sent).not.toHaveProperty('max_completion_tokens')
    }
  })
})

describe('auto: logprobs, and sampling for a model without them', () => {
  it('uses logprobs while the model gives them', async () => {
    const { model, judge } = await sampler(
      { token: 'True', logprob: Math.log(0.9) },
      { estimator: 'auto' },
    )
    expect(await judge.judge(input)).toMatchObject({ ok: true, estimator: 'logprobs' })
    expect(judge.currentEstimator).toBe('logprobs')
    expect(body((await model.requests())[0]!).logprobs).toBe(true)
  })

  it('switches once when the provider refuses logprobs, for this call and every later one', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { model, judge } = await sampler(
      { rejectLogprobs: true, samples: ['True', 'True', 'False', 'True', 'False'] },
      { estimator: 'auto' },
    )
    expect(judge.currentEstimator).toBe('logprobs')
    const first = await judge.judge(input)
    expect(first).toMatchObject({ ok: true, estimator: 'sampling', score: byHand(3, 2) })
    let requests = await model.requests()
    expect(requests.map((request) => [body(request).logprobs, body(request).n])).toEqual([
      [true, undefined],
      [undefined, 5],
    ])
    expect(judge.currentEstimator).toBe('sampling')

    const second = await judge.judge(input)
    expect(second).toMatchObject({ ok: true, estimator: 'sampling' })
    requests = await model.requests()
    expect(requests).toHaveLength(3)
    expect(body(requests[2]!).logprobs).toBeUndefined()
    // Said once, in the logs.
    expect(warn).toHaveBeenCalledTimes(1)
    expect(String(warn.mock.calls[0]![0])).toContain('estimating by sampling')
  })

  it('remembers per judge, not for every judge of the isolate', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const model = await scriptModel({ rejectLogprobs: true, samples: ['True'] })
    const options = { apiKey: 'k', baseURL: model.baseURL, estimator: 'auto' } as const
    const first = createJudge(options)
    await first.judge(input)
    const second = createJudge(options)
    expect([first.currentEstimator, second.currentEstimator]).toEqual(['sampling', 'logprobs'])
  })

  it('does not switch for a failure that is not about logprobs', async () => {
    const { judge } = await sampler({ status: 400 }, { estimator: 'auto' })
    expect(await judge.judge(input)).toMatchObject({
      ok: false,
      estimator: 'logprobs',
      reason: 'judge-http-error',
    })
    expect(judge.currentEstimator).toBe('logprobs')
  })

  it('logprobs alone: a model that refuses them gives judge-http-error on every call, as before', async () => {
    const { model, judge } = await sampler({ rejectLogprobs: true }, { estimator: 'logprobs' })
    for (let call = 0; call < 2; call++)
      expect(await judge.judge(input)).toMatchObject({
        ok: false,
        estimator: 'logprobs',
        reason: 'judge-http-error',
        status: 400,
      })
    expect(await model.requests()).toHaveLength(2)
  })
})

describe('every failure of a sampling judge gives a reason, and its policy’s verdict', () => {
  const cases: Array<[string, StubScript, string]> = [
    ['HTTP 500', { status: 500 }, 'judge-http-error'],
    ['HTTP 429', { status: 429 }, 'judge-rate-limited'],
    [
      'a body that is not JSON',
      { rawBody: '<html>', contentType: 'text/html' },
      'judge-bad-response',
    ],
    ['a connection reset', { reset: true }, 'judge-unreachable'],
    ['a judge that hangs', { hang: true }, 'judge-timeout'],
    ['no answer True or False', { samples: ['Yes', 'Sure'] }, 'no-samples'],
    [
      'most answers neither',
      { samples: ['Yes', 'Yes', 'Yes', 'True', 'False'] },
      'low-answer-mass',
    ],
  ]

  it.each(cases)('%s → %s', async (_, script, reason) => {
    const model = await scriptModel(script)
    const app = new Hono()
    let record: DecisionRecord | undefined
    app.post(
      '/ask',
      ragGuard({
        judge: {
          apiKey: 'sk-test',
          baseURL: model.baseURL,
          maxRetries: 0,
          timeoutMs: 300,
          estimator: 'sampling',
        },
        onError: 'block',
        onUnjudgeable: 'block',
        details: 'everyone',
        onDecision: (decided) => void (record = decided),
      }),
      (c) => c.json({ answer: 'Blue bikes are made by Acme.' }),
    )
    const response = await app.request('/ask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: input.question, context: input.context }),
    })
    expect(response.status).toBe(422)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
    expect(response.headers.get('x-rag-guard-estimator')).toBe('sampling')
    // The samples' own answers are the judge's reply to the data (issue 24): unjudgeable.
    expect(REASON_POLICY[reason as keyof typeof REASON_POLICY]).toBe(
      reason === 'no-samples' || reason === 'low-answer-mass' ? 'onUnjudgeable' : 'onError',
    )
    await vi.waitFor(() => expect(record).toBeDefined())
    expect(record).toMatchObject({ verdict: 'block', reason, estimator: 'sampling' })
  })

  it('a cancelled sampling call → judge-aborted', async () => {
    const { judge } = await sampler({ delayMs: 5000 })
    const controller = new AbortController()
    const pending = judge.judge(input, { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    expect(await pending).toMatchObject({ ok: false, reason: 'judge-aborted' })
  })
})

describe('any LangChain chat model can judge by sampling', () => {
  /**
   * A chat model of another provider: one answer per request, no `n`. It speaks to the stub
   * over HTTP, as a provider's integration speaks to its API.
   */
  class PlainChatModel extends SimpleChatModel {
    constructor(private readonly url: string) {
      super({})
    }
    _llmType() {
      return 'plain'
    }
    async _call(messages: BaseMessage[], options: this['ParsedCallOptions']): Promise<string> {
      const response = await fetch(`${this.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'plain-1', messages: messages.map((m) => m.text) }),
        signal: options.signal,
      })
      const completion = (await response.json()) as {
        choices: Array<{ message: { content: string } }>
      }
      return completion.choices[0]!.message.content
    }
  }

  it('a model without n: N concurrent requests, scored like any other', async () => {
    const model = await scriptModel({ samples: ['True', 'False', 'True', 'No idea', 'True'] })
    const judge = createJudge({
      chatModel: new PlainChatModel(model.baseURL),
      identity: 'plain-1',
      estimator: 'sampling',
    })
    expect(await judge.judge(input)).toMatchObject({
      ok: true,
      estimator: 'sampling',
      score: byHand(3, 1),
      mass: 4 / 5,
      requests: 5,
    })
    expect(await model.requests()).toHaveLength(5)
  })

  it('a ChatOpenAI built with n gives every sample in one request', async () => {
    const model = await scriptModel({ samples: ['False', 'False', 'True', 'False', 'False'] })
    const chatModel = new ChatOpenAI({
      model: 'gpt-5-mini',
      apiKey: 'k',
      configuration: { baseURL: model.baseURL },
      n: 5,
      temperature: 1,
      maxCompletionTokens: 2048,
      maxRetries: 0,
    })
    const result = await createJudge({ chatModel, estimator: 'sampling' }).judge(input)
    expect(result).toMatchObject({ ok: true, score: byHand(1, 4), requests: 1 })
    expect(body((await model.requests())[0]!)).toMatchObject({ n: 5, max_completion_tokens: 2048 })
  })

  it('refuses, at setup, what cannot work: auto with a chat model, sampling at temperature 0', () => {
    const chatModel = new ChatOpenAI({ model: 'm', apiKey: 'k', temperature: 0 })
    expect(() => createJudge({ chatModel, estimator: 'auto' })).toThrow(
      /"estimator" "auto" builds its own models/,
    )
    expect(() => createJudge({ chatModel, estimator: 'sampling' })).toThrow(
      /temperature above 0 for sampling/,
    )
    // A model without logprobs is fine for sampling.
    const sampling = new ChatOpenAI({ model: 'm', apiKey: 'k', temperature: 1 })
    expect(() => createJudge({ chatModel: sampling, estimator: 'sampling' })).not.toThrow()
  })
})

describe('the estimator is seen everywhere', () => {
  async function guarded(script: StubScript, options: Partial<RagGuardOptions> = {}) {
    const model = await scriptModel(script)
    const records: DecisionRecord[] = []
    const app = new Hono()
    app.post(
      '/ask',
      ragGuard({
        judge: { apiKey: 'k', baseURL: model.baseURL, estimator: 'sampling', maxRetries: 0 },
        answer: '/answer',
        onDecision: (record) => void records.push(record),
        ...options,
      }),
      (c) => c.json({ answer: 'Acme makes them.' }),
    )
    const send = () =>
      app.request('/ask', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      })
    return { model, records, send }
  }

  it('header and decision log: x-rag-guard-estimator for operators, the counts in the record', async () => {
    const { records, send } = await guarded(
      { samples: ['True', 'True', 'True', 'False', 'True'] },
      { details: 'everyone' },
    )
    const response = await send()
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-score')).toBe(byHand(4, 1).toFixed(4))
    expect(response.headers.get('x-rag-guard-estimator')).toBe('sampling')
    await vi.waitFor(() => expect(records).toHaveLength(1))
    expect(records[0]).toMatchObject({
      estimator: 'sampling',
      score: byHand(4, 1),
      pTrue: 0.8,
      pFalse: 0.2,
      samples: 5,
      trueCount: 4,
      falseCount: 1,
    })
  })

  it('a detail like the score: clients who do not see details do not get it', async () => {
    const { send } = await guarded({ samples: ['True'] })
    const response = await send()
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-score')).toBeNull()
    expect(response.headers.get('x-rag-guard-estimator')).toBeNull()
  })

  it('a logprobs score carries no estimator header: logprobs is the default, as enforce is for the mode', async () => {
    const model = await scriptModel({ token: 'True', logprob: 0 })
    const app = new Hono()
    app.post(
      '/ask',
      ragGuard({ judge: { apiKey: 'k', baseURL: model.baseURL }, details: 'everyone' }),
      (c) => c.json({ answer: 'x' }),
    )
    const response = await app.request('/ask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input),
    })
    expect(response.headers.get('x-rag-guard-score')).toBe('1.0000')
    expect(response.headers.get('x-rag-guard-estimator')).toBeNull()
  })

  it('cache keys differ by estimator, whatever else is the same', async () => {
    const parts = { judge: 'j', promptVersion: 'v', question: 'q', documents: ['d'] }
    const keys = new Set([
      await cacheKey(parts),
      await cacheKey({ ...parts, estimator: 'logprobs' }),
      await cacheKey({ ...parts, estimator: 'sampling' }),
    ])
    expect(keys.size).toBe(2)
  })

  it('an auto judge that turned to sampling stores the score under sampling, and reads it back', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const model = await scriptModel({ rejectLogprobs: true, samples: ['True'] })
    const judge = createJudge({ apiKey: 'k', baseURL: model.baseURL, estimator: 'auto' })
    const judging = createJudging(judge, kvStore(env.TEST_CACHE, 3600))
    const writes: Array<Promise<unknown>> = []
    const request = {
      question: `cache-${crypto.randomUUID()}`,
      documents: ['The bikes are blue.'],
      check: 'sufficiency' as const,
      scope: '',
      signal: new AbortController().signal,
      defer: (work: Promise<unknown>) => void writes.push(work),
    }
    const first = await judging(request)
    await Promise.all(writes)
    const second = await judging(request)
    expect(first).toMatchObject({ cache: 'miss', result: { estimator: 'sampling' } })
    expect(second).toMatchObject({ cache: 'hit', result: { estimator: 'sampling' } })
    // The logprobs refusal, then one sampling request; the second call asked nobody.
    expect(await model.requests()).toHaveLength(2)
  })

  it('judges that differ only in samples or temperature never share scores', () => {
    const identity = (options: JudgeOptions) =>
      createJudge({ apiKey: 'k', estimator: 'sampling', ...options }).identity
    expect(
      new Set([identity({}), identity({ samples: 7 }), identity({ samplingTemperature: 0.5 })])
        .size,
    ).toBe(3)
    expect(createJudge({ apiKey: 'k' }).identity).not.toBe(identity({}))
  })
})

describe('settings', () => {
  const base = {
    GUARD_AUTH: 'none',
    UPSTREAM_URL: 'https://rag.example.com',
    OPENAI_API_KEY: 'sk-test',
    GUARD_ROUTES: [{ path: '/ask', format: 'json' }],
  }

  it('the Worker reads the estimator settings as wrangler.toml gives them', () => {
    const config = parseConfig({
      ...base,
      JUDGE_ESTIMATOR: 'sampling',
      JUDGE_SAMPLES: '7',
      JUDGE_SAMPLING_TEMPERATURE: '0.8',
      JUDGE_REASONING_EFFORT: 'low',
      JUDGE_MAX_OUTPUT_TOKENS: 2048,
    })
    expect(config.judge).toMatchObject({
      estimator: 'sampling',
      samples: 7,
      samplingTemperature: 0.8,
      reasoningEffort: 'low',
      maxOutputTokens: 2048,
    })
    expect(parseConfig(base).judge).toMatchObject({ estimator: 'logprobs', samples: 5 })
    for (const name of [
      'JUDGE_ESTIMATOR',
      'JUDGE_SAMPLES',
      'JUDGE_SAMPLING_TEMPERATURE',
      'JUDGE_REASONING_EFFORT',
      'JUDGE_MAX_OUTPUT_TOKENS',
    ])
      expect(WORKER_SETTINGS[name], name).toBeDefined()
  })

  it.each([
    [{ JUDGE_ESTIMATOR: 'guess' }, 'JUDGE_ESTIMATOR must be "logprobs", "sampling" or "auto"'],
    [{ JUDGE_SAMPLES: '1' }, 'JUDGE_SAMPLES must be an integer from 2 to 20, got 1'],
    [{ JUDGE_SAMPLING_TEMPERATURE: '0' }, 'JUDGE_SAMPLING_TEMPERATURE must be a number above 0'],
    [{ JUDGE_REASONING_EFFORT: 'max' }, 'JUDGE_REASONING_EFFORT must be "none", "minimal"'],
  ])('a wrong value is named with what is allowed: %j', (settings, message) => {
    expect(() => parseConfig({ ...base, ...settings })).toThrow(message)
  })

  it.each([
    [{ estimator: 'guess' }, /"estimator" must be "logprobs", "sampling" or "auto"/],
    [{ samples: 21 }, /"samples" must be an integer from 2 to 20, got 21/],
    [{ samplingTemperature: 2.5 }, /"samplingTemperature" must be a number above 0 and at most 2/],
    [{ maxOutputTokens: 0 }, /"maxOutputTokens" must be an integer from 1 to 100000/],
  ])('createJudge refuses %j at setup', (options, message) => {
    expect(() => createJudge({ apiKey: 'k', ...(options as JudgeOptions) })).toThrow(
      ConfigurationError,
    )
    expect(() => createJudge({ apiKey: 'k', ...(options as JudgeOptions) })).toThrow(message)
  })
})

describe('the Worker, configured as the shipped samples', () => {
  /** The judge settings of a sample config, as wrangler.toml gives them. */
  const judgeVars = (text: string) =>
    Object.fromEntries(
      Object.entries((parse(text) as { vars: Record<string, unknown> }).vars).filter(([name]) =>
        name.startsWith('JUDGE_'),
      ),
    )
  const ask = postJson({ question: input.question, context: input.context })

  it('reasoning-sampling.toml: gpt-5-mini by sampling, with its reasoning budget and effort, never one token', async () => {
    const guard = await setupGuard(
      { json: { answer: 'Acme makes them.' } },
      { reasoningTokens: 300, samples: ['True', 'True', 'True', 'False', 'True'] },
      { ...judgeVars(reasoningSampling), LOG_DECISIONS: true },
    )
    const logged = vi.spyOn(console, 'log').mockImplementation(() => {})
    const response = await guard.send('/ask', ask)
    await guard.settle()
    expect(response.status).toBe(200)
    // 4 of 5: 0.75, under the suites' FLAG_BELOW of 0.8.
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-estimator')).toBe('sampling')
    expect(response.headers.get('x-rag-guard-score')).toBe(byHand(4, 1).toFixed(4))
    const [request] = await guard.judge.requests()
    expect(body(request!)).toMatchObject({
      model: 'gpt-5-mini',
      n: 5,
      temperature: 1,
      max_completion_tokens: 4096,
      reasoning_effort: 'minimal',
    })
    expect(body(request!).max_tokens).toBeUndefined()
    expect(body(request!).logprobs).toBeUndefined()
    const record = JSON.parse(String(logged.mock.calls.at(-1)![0])) as DecisionRecord
    expect(record).toMatchObject({ estimator: 'sampling', samples: 5, trueCount: 4, falseCount: 1 })
  })

  it('an annotated stream says it in its comment line, for those who see details', async () => {
    const events = sse(
      { data: chunk({ role: 'assistant', content: 'Acme.' }) },
      { data: chunk({}, 'stop') },
      { data: '[DONE]' },
    )
    const guard = await setupGuard(
      { headers: { 'content-type': 'text/event-stream' }, chunks: events },
      { samples: ['True', 'False', 'False', 'False', 'False'] },
      { JUDGE_ESTIMATOR: 'sampling' },
    )
    const response = await guard.send(
      '/annotated/chat/completions',
      postJson({
        model: 'rag-model',
        stream: true,
        messages: [
          { role: 'system', content: input.context[0] },
          { role: 'user', content: input.question },
        ],
      }),
    )
    // 1 of 5: 0.25, between the suites' BLOCK_BELOW (0.2) and FLAG_BELOW (0.8).
    expect(readAnnotation(await response.text())).toEqual({
      verdict: 'flag',
      score: Number(byHand(1, 4).toFixed(4)),
      reason: null,
      mode: 'enforce',
      estimator: 'sampling',
    })
  })

  it('JUDGE_ESTIMATOR = "auto": the isolate turns to sampling once, and stays', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const guard = await setupGuard(
      { json: { answer: 'Acme makes them.' } },
      { rejectLogprobs: true, samples: ['False'] },
      // No verdict cache: the second request must reach the judge to show what the isolate asks.
      { JUDGE_ESTIMATOR: 'auto', CACHE_TTL_SECONDS: '0' },
    )
    for (let request = 0; request < 2; request++) {
      const response = await guard.send('/ask', ask)
      expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(response.headers.get('x-rag-guard-estimator')).toBe('sampling')
    }
    const requests = await guard.judge.requests()
    expect(requests.map((request) => body(request).logprobs ?? false)).toEqual([true, false, false])
  })
})
