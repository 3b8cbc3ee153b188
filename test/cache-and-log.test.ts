import { env } from 'cloudflare:workers'
import { describe, expect, it, vi } from 'vitest'
import type { DecisionRecord } from '../src'
import { judgeSays, postJson, SECRET, setupGuard } from './guard-helpers'
import { listDigest } from '../src/hash'
import { documentsHash } from './security/helpers'

const request = {
  question: 'What does a day pass cost?',
  context: ['A day pass costs $12.', 'Rides last 45 minutes.'],
}

describe('verdict cache', () => {
  it.each([
    ['the Cache API (default)', {}],
    ['a KV namespace (GUARD_CACHE)', { GUARD_CACHE: env.TEST_CACHE }],
  ])('%s: the second identical request is a hit and skips the judge', async (_, store) => {
    const { send, settle, judge } = await setupGuard(
      { json: { answer: 'a' } },
      judgeSays(0.42),
      store,
    )
    const first = await send('/ask', postJson(request))
    expect(first.headers.get('x-rag-guard-cache')).toBe('miss')
    expect(first.headers.get('x-rag-guard-score')).toBe('0.4200')
    await settle()
    const second = await send('/ask', postJson(request))
    expect(second.headers.get('x-rag-guard-cache')).toBe('hit')
    expect(second.headers.get('x-rag-guard-score')).toBe('0.4200')
    expect(second.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(await judge.requests()).toHaveLength(1)
  })

  it('another question or other documents are a miss', async () => {
    const { send, settle, judge } = await setupGuard({ json: { answer: 'a' } }, judgeSays(0.9))
    await send('/ask', postJson(request))
    await settle()
    const otherQuestion = await send(
      '/ask',
      postJson({ ...request, question: 'What does a year cost?' }),
    )
    const otherDocuments = await send(
      '/ask',
      postJson({ ...request, context: ['A day pass costs $12.'] }),
    )
    expect([
      otherQuestion.headers.get('x-rag-guard-cache'),
      otherDocuments.headers.get('x-rag-guard-cache'),
    ]).toEqual(['miss', 'miss'])
    expect(await judge.requests()).toHaveLength(3)
  })

  it('never caches a failure: the judge is asked again', async () => {
    const { send, settle, judge } = await setupGuard(
      { json: { answer: 'a' } },
      { steps: [{ status: 500 }, judgeSays(0.9)] },
    )
    const failed = await send('/ask', postJson(request))
    expect(failed.headers.get('x-rag-guard-reason')).toBe('judge-http-error')
    expect(failed.headers.get('x-rag-guard-cache')).toBe('miss')
    await settle()
    const retried = await send('/ask', postJson(request))
    expect(retried.headers.get('x-rag-guard-cache')).toBe('miss')
    expect(retried.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await judge.requests()).toHaveLength(2)
  })

  it('keeps scores, not verdicts: new thresholds apply to a cached score', async () => {
    const first = await setupGuard({ json: { answer: 'a' } }, judgeSays(0.42), {
      GUARD_CACHE: env.TEST_CACHE,
    })
    await first.send('/ask', postJson(request))
    await first.settle()
    const stricter = await setupGuard({ json: { answer: 'a' } }, judgeSays(0.99), {
      GUARD_CACHE: env.TEST_CACHE,
      OPENAI_BASE_URL: first.env.OPENAI_BASE_URL, // the same judge
      BLOCK_BELOW: 0.5,
      FLAG_BELOW: 0.9,
    })
    const response = await stricter.send('/ask', postJson(request))
    expect(response.headers.get('x-rag-guard-cache')).toBe('hit')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
  })

  it('a different judge (another endpoint or model) never reads another judge’s scores', async () => {
    const first = await setupGuard({ json: { answer: 'a' } }, judgeSays(0.42))
    await first.send('/ask', postJson(request))
    await first.settle()
    const otherModel = await setupGuard({ json: { answer: 'a' } }, judgeSays(0.99), {
      OPENAI_BASE_URL: first.env.OPENAI_BASE_URL,
      JUDGE_MODEL: 'gpt-4.1-mini',
    })
    const response = await otherModel.send('/ask', postJson(request))
    expect(response.headers.get('x-rag-guard-cache')).toBe('miss')
  })

  it('CACHE_TTL_SECONDS = 0 turns it off', async () => {
    const { send, settle, judge } = await setupGuard({ json: { answer: 'a' } }, judgeSays(0.9), {
      CACHE_TTL_SECONDS: 0,
    })
    await send('/ask', postJson(request))
    await settle()
    const second = await send('/ask', postJson(request))
    expect(second.headers.get('x-rag-guard-cache')).toBeNull()
    expect(await judge.requests()).toHaveLength(2)
  })
})

describe('decision log', () => {
  async function logged(envOverrides: Record<string, unknown>, path: string, body: unknown) {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    try {
      const { send, settle } = await setupGuard(
        { json: { answer: 'a', sources: [{ pageContent: 'From the response.' }] } },
        judgeSays(0.3),
        { LOG_DECISIONS: true, ...envOverrides },
      )
      const response = await send(
        path,
        postJson(body, {
          headers: { 'content-type': 'application/json', 'x-request-id': 'req-77' },
        }),
      )
      await response.text()
      await settle()
      return log.mock.calls.map(([line]) => String(line))
    } finally {
      log.mockRestore()
    }
  }

  it('writes one JSON line per guarded request, with hashes and sizes but not the content', async () => {
    const lines = await logged({}, '/ask', request)
    expect(lines).toHaveLength(1)
    const record = JSON.parse(lines[0]!) as DecisionRecord
    expect(record).toMatchObject({
      message: 'rag-guard decision',
      requestId: 'req-77',
      route: '/ask',
      path: '/ask',
      method: 'POST',
      format: 'json',
      mode: 'enforce',
      verdict: 'flag',
      applied: false,
      cache: 'miss',
      status: 200,
      model: 'gpt-4o-mini',
      questionChars: request.question.length,
      contextDocuments: 2,
      contextChars: request.context.join('').length,
    })
    expect(record.score).toBeCloseTo(0.3, 10)
    expect(record.judgeLatencyMs).toBeGreaterThanOrEqual(0)
    expect(record.addedLatencyMs).toBeGreaterThanOrEqual(0)
    expect(record.promptVersion).toMatch(/^sufficiency-/)
    expect(record.contextHash).toMatch(/^[0-9a-f]{64}$/)
    expect(record.contextHash).toBe(await documentsHash(request.context))
    expect(lines[0]).not.toContain('A day pass costs')
    expect(lines[0]).not.toContain(request.question)
    expect(lines[0]).not.toContain(SECRET)
  })

  it('hashes the documents once per request: both checks’ cache keys and the log share the digest', async () => {
    // Large documents, so the bytes hashed are dominated by them: before the shared digest each
    // check's key and the log hashed them again (three times with both checks).
    const large = { question: request.question, context: [...request.context, 'x'.repeat(20_000)] }
    const documents = new TextEncoder().encode(large.context.join('')).byteLength
    const digest = vi.spyOn(crypto.subtle, 'digest')
    try {
      const lines = await logged(
        {
          GUARD_CHECKS: 'sufficiency,groundedness',
          GUARD_ROUTES: [{ path: '/ask', format: 'json', answer: '/answer' }],
        },
        '/ask',
        large,
      )
      const record = JSON.parse(lines[0]!) as DecisionRecord
      expect(Object.keys(record.checks ?? {})).toEqual(['sufficiency', 'groundedness'])
      expect(record.contextHash).toMatch(/^[0-9a-f]{64}$/)
      const hashed = digest.mock.calls.reduce(
        (total, [, data]) => total + (data as ArrayBufferView).byteLength,
        0,
      )
      expect(hashed).toBeGreaterThanOrEqual(documents)
      expect(hashed).toBeLessThan(documents + 2_000)
    } finally {
      digest.mockRestore()
    }
  })

  it('includes question and documents when LOG_CONTENT is on', async () => {
    const [line] = await logged({ LOG_CONTENT: 'true' }, '/ask-late', { question: 'Q?' })
    const record = JSON.parse(line!) as DecisionRecord
    expect(record).toMatchObject({
      route: '/ask-late',
      question: 'Q?',
      context: ['From the response.'],
      contextDocuments: 1,
    })
  })

  it('says nothing about unguarded requests, and nothing at all when LOG_DECISIONS is false', async () => {
    expect(await logged({}, '/not-guarded', request)).toEqual([])
    expect(await logged({ LOG_DECISIONS: 'false' }, '/ask', request)).toEqual([])
  })
})

describe('failure policy through the Worker', () => {
  it.each([
    ['HTTP 500', { status: 500 }, 'judge-http-error'],
    [
      'HTTP 429 with retry-after',
      { status: 429, headers: { 'retry-after': '1' } },
      'judge-rate-limited',
    ],
    [
      'a body that is not JSON',
      { rawBody: '<html>', contentType: 'text/html' },
      'judge-bad-response',
    ],
    ['a connection reset', { reset: true }, 'judge-unreachable'],
    ['slower than JUDGE_TIMEOUT_MS', { delayMs: 3000 }, 'judge-timeout'],
    // The judge's reply to the data (issue 24): its own setting, ON_UNJUDGEABLE.
    ['no logprobs', { noLogprobs: true }, 'no-logprobs', 'ON_UNJUDGEABLE'],
  ])(
    '%s → the verdict of its setting (ON_ERROR unless named), reason %s, never a 500',
    async (_, step, reason, setting = 'ON_ERROR') => {
      for (const onError of ['pass', 'flag', 'block'] as const) {
        const { send } = await setupGuard({ json: { answer: 'upstream answer' } }, step, {
          [setting]: onError,
          // A budget the retries of a failure that comes at once fit in on a busy machine; the
          // slow and the rate-limited judge (retry-after 1 s) run past a short one.
          JUDGE_TIMEOUT_MS:
            reason === 'judge-timeout' || reason === 'judge-rate-limited' ? '200' : '2000',
          JUDGE_MAX_RETRIES: '2',
        })
        const response = await send('/ask', postJson(request))
        expect(response.status).toBe(200)
        expect(response.headers.get('x-rag-guard-verdict')).toBe(onError)
        expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
        const body = (await response.json()) as { answer: string }
        expect(body.answer).toBe(
          onError === 'block'
            ? "I can't answer that reliably from the information I have."
            : 'upstream answer',
        )
      }
    },
  )
})

describe('a slow or broken verdict cache', () => {
  it('counts as a miss: the judge answers, the request is not held up', async () => {
    const { ragGuard } = await import('../src')
    const { Hono } = await import('hono')
    const { scriptModel } = await import('./helpers')
    const model = await scriptModel(judgeSays(0.9))
    const slow = {
      get: () => new Promise<undefined>((resolve) => setTimeout(resolve, 5000)),
      put: async () => {},
    }
    const broken = {
      get: () => Promise.reject(new Error('cache down')),
      put: () => Promise.reject(new Error('cache down')),
    }
    // The broken cache's write fails after the response: logged for the operator, never thrown.
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    for (const cache of [slow, broken]) {
      const app = new Hono()
      app.post(
        '/ask',
        ragGuard({
          judge: { apiKey: 'k', baseURL: model.baseURL },
          cache: cache as never,
          details: 'everyone',
        }),
        (c) => c.json({ answer: 'a' }),
      )
      const startedAt = Date.now()
      const response = await app.request('/ask', postJson(request))
      expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
      expect(response.headers.get('x-rag-guard-cache')).toBe('miss')
      expect(Date.now() - startedAt).toBeLessThan(2000)
    }
    await expect
      .poll(() => logged.mock.calls.some(([line]) => line === 'RAG Guard: background task failed'))
      .toBe(true)
    logged.mockRestore()
  })
})

describe('the documents digest (cache keys and contextHash)', () => {
  it('is SHA-256 of each document behind its length and a colon, as the reference defines it', async () => {
    const documents = ['Stations close at 11 pm.', 'Prix: 2,50 € — «ligne 4»', '🚇 late trains', '']
    expect(await listDigest(documents)).toBe(await documentsHash(documents))
    // A copy of the list: the same digest (it is computed from the texts, not the array).
    expect(await listDigest([...documents])).toBe(await listDigest(documents))
  })

  it('never gives two lists the same input: splits, empty documents, framing-like text, lone surrogates', async () => {
    const lists = [
      ['ab', 'c'],
      ['a', 'bc'],
      ['abc'],
      ['ab', '', 'c'],
      ['1:a'],
      ['a', '1:a'],
      ['\uD800'],
      ['\uFFFD'],
      ['\uDC00x'],
      ['"\\ud800"'],
    ]
    const digests = await Promise.all(lists.map((list) => listDigest(list)))
    expect(new Set(digests).size).toBe(lists.length)
  })
})
