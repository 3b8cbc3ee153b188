/**
 * Defects a close reading of the request path found (issue 11), each pinned by a test that fails
 * on the code before the rebuild into phases (commit 15e4da6) and passes after it.
 */
import { Hono, type Handler, type MiddlewareHandler } from 'hono'
import { describe, expect, it } from 'vitest'
import { createJudge, type RagGuardOptions } from '../src'
import { guardedAsk, judgeSays } from './guard-helpers'
import { scriptModel } from './helpers'
import type { StubStep } from './stub/openai-stub'

const QUESTION = {
  question: 'What nationality was Ada Lovelace?',
  context: ['Ada Lovelace was an English mathematician.'],
}

const encoder = new TextEncoder()

/** A body of `total` bytes in 64 KiB chunks, counting how many bytes anyone pulled from it. */
function countedBody(total: number) {
  const counter = { pulled: 0 }
  const piece = encoder.encode('x'.repeat(65_536))
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= total) return controller.close()
      counter.pulled += piece.byteLength
      controller.enqueue(piece)
    },
  })
  return { stream, counter }
}

/** One app, one guarded route (thresholds 0.2 / 0.8); `before` runs ahead of the guard. */
const guarded = (
  judge: StubStep | { steps: StubStep[] },
  options: Partial<RagGuardOptions>,
  handler: Handler,
  before: MiddlewareHandler[] = [],
) => guardedAsk(judge, { blockBelow: 0.2, flagBelow: 0.8, ...options }, handler, QUESTION, before)

const post = (app: Hono, body: unknown = QUESTION, init: RequestInit = {}) =>
  app.request('/ask', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })

const sseChunk = (content: string) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`

/** An SSE response that sends five chunks 100 ms apart (then `[DONE]` if asked). */
function slowStream(done: boolean): Response {
  let sent = 0
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      if (sent++ === 5) {
        if (done) controller.enqueue(encoder.encode('data: [DONE]\n\n'))
        return controller.close()
      }
      controller.enqueue(encoder.encode(sseChunk(`part ${sent} `)))
    },
  })
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
}

const chatRequest = {
  model: 'rag',
  stream: true,
  messages: [
    { role: 'system', content: 'Ada Lovelace was an English mathematician.' },
    { role: 'user', content: 'What nationality was Ada Lovelace?' },
  ],
}

describe('1. the block path reads the upstream answer bounded', () => {
  it('a 16 MB answer is not read whole to replace it: the block is built without it', async () => {
    const body = countedBody(16 * 1024 * 1024)
    const { app } = await guarded(judgeSays(0.02), { answer: '/answer', maxBodyBytes: 1024 }, (c) =>
      c.body(body.stream, 200, { 'content-type': 'application/json' }),
    )
    const response = await post(app)
    expect(response.status).toBe(422)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe(
      'insufficient_context',
    )
    // Read up to the limit and a little past it, then stopped: nowhere near the 16 MB.
    expect(body.counter.pulled).toBeLessThan(1024 * 1024)
  })
})

describe('2. an answer that cannot be read for its context never takes the onMissingInput verdict', () => {
  // Before issue 12 these followed onError; they are now unjudgeable, and never pass by default.
  const options: Partial<RagGuardOptions> = {
    context: { in: 'response', pointer: '/sources' },
    answer: '/answer',
    onError: 'flag',
    maxBodyBytes: 1024,
  }

  it('invalid-response-body: blocked (unjudgeable), not passed', async () => {
    const { app } = await guarded(judgeSays(0.97), options, (c) => c.text('not json at all'))
    const response = await post(app, { question: QUESTION.question })
    expect(response.headers.get('x-rag-guard-reason')).toBe('invalid-response-body')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
  })

  it('response-too-large: blocked (unjudgeable), not passed', async () => {
    const big = JSON.stringify({ answer: 'a', sources: ['y'.repeat(4096)] })
    const { app } = await guarded(judgeSays(0.97), options, (c) =>
      c.body(big, 200, { 'content-type': 'application/json' }),
    )
    const response = await post(app, { question: QUESTION.question })
    expect(response.headers.get('x-rag-guard-reason')).toBe('response-too-large')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
  })
})

describe('3. a request refused as too large is a decision like any other', () => {
  it('the 413 carries the verdict headers, a decision record and c.var.ragGuard', async () => {
    const { app, records, seen } = await guarded(judgeSays(0.97), { maxBodyBytes: 1024 }, (c) =>
      c.json({ answer: 'never' }),
    )
    const response = await post(app, { ...QUESTION, padding: 'p'.repeat(4096) })
    expect(response.status).toBe(413)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe('request-too-large')
    expect(seen.decision).toMatchObject({ verdict: 'block', reason: 'request-too-large' })
    await expect.poll(() => records.length).toBe(1)
    expect(records[0]).toMatchObject({
      verdict: 'block',
      reason: 'request-too-large',
      status: 413,
      applied: true,
    })
  })
})

describe('5. a judge result holds only its declared fields', () => {
  it('a failed call carries no retryable flag into the public result', async () => {
    const model = await scriptModel({ status: 503 })
    const result = await createJudge({ apiKey: 'k', baseURL: model.baseURL, maxRetries: 0 }).judge({
      question: 'q',
      context: ['d'],
    })
    expect(result).toMatchObject({ ok: false, reason: 'judge-http-error', status: 503 })
    expect(Object.keys(result).sort()).toEqual(
      [
        'check',
        'estimator',
        'latencyMs',
        'message',
        'model',
        'ok',
        'promptVersion',
        'reason',
        'status',
      ].sort(),
    )
  })
})

describe('6. c.var.ragGuard says the verdict that was applied', () => {
  it('hold buffer overflow: c.var reports stream-buffer-exceeded, not the later judge score', async () => {
    const { app, seen } = await guarded(
      judgeSays(0.97, { delayMs: 300 }),
      { format: 'openai-chat', streamBufferBytes: 1024, onUnjudgeable: 'flag' },
      (c) =>
        c.body(sseChunk('x'.repeat(2048)) + 'data: [DONE]\n\n', 200, {
          'content-type': 'text/event-stream',
        }),
    )
    const response = await post(app, chatRequest)
    await response.text()
    expect(response.headers.get('x-rag-guard-reason')).toBe('stream-buffer-exceeded')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(seen.decision).toMatchObject({ verdict: 'flag', reason: 'stream-buffer-exceeded' })
  })

  it('upstream failure while held: c.var reports upstream-stream-error', async () => {
    const { app, seen } = await guarded(
      judgeSays(0.97, { delayMs: 300 }),
      { format: 'openai-chat', onUnjudgeable: 'flag' },
      (c) => {
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(encoder.encode(sseChunk('Ada')))
          },
          pull(controller) {
            controller.error(new Error('upstream broke off'))
          },
        })
        return c.body(body, 200, { 'content-type': 'text/event-stream' })
      },
    )
    const response = await post(app, chatRequest)
    await response.text().catch(() => '')
    expect(response.headers.get('x-rag-guard-reason')).toBe('upstream-stream-error')
    expect(seen.decision).toMatchObject({ verdict: 'flag', reason: 'upstream-stream-error' })
  })
})

describe('7. addedLatencyMs counts only what the guard added', () => {
  it('an annotated stream goes out at once: its added latency is not the stream’s length', async () => {
    const startedAt = Date.now()
    const { app, records } = await guarded(
      judgeSays(0.97),
      { format: 'openai-chat', streamMode: 'annotate' },
      () => slowStream(true),
    )
    const response = await post(app, chatRequest)
    await response.text()
    const streamedMs = Date.now() - startedAt
    await expect.poll(() => records.length).toBe(1)
    expect(records[0]!.stream).toBe('annotate')
    expect(streamedMs).toBeGreaterThanOrEqual(500)
    expect(records[0]!.addedLatencyMs).toBeLessThan(streamedMs / 2)
  })

  it('a shadow stream likewise', async () => {
    const { app, records } = await guarded(
      judgeSays(0.97),
      { format: 'openai-chat', mode: 'shadow' },
      () => slowStream(false),
    )
    const startedAt = Date.now()
    const response = await post(app, chatRequest)
    await response.text()
    const streamedMs = Date.now() - startedAt
    await expect.poll(() => records.length).toBe(1)
    expect(records[0]!.stream).toBe('shadow')
    expect(records[0]!.addedLatencyMs).toBeLessThan(streamedMs / 2)
  })
})

describe('8. a verdict cache that throws is a miss, not an upstream error', () => {
  const throwingCache = {
    get(): never {
      throw new Error('cache down')
    },
    async put() {},
  }

  it('on a held stream, the judge’s score decides', async () => {
    const { app } = await guarded(
      judgeSays(0.97),
      { format: 'openai-chat', cache: throwingCache },
      (c) =>
        c.body(sseChunk('English.') + 'data: [DONE]\n\n', 200, {
          'content-type': 'text/event-stream',
        }),
    )
    const response = await post(app, chatRequest)
    await response.text()
    expect(response.headers.get('x-rag-guard-reason')).toBeNull()
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9700')
  })

  it('on a whole answer, the judge’s score decides (and the guard never answers 500)', async () => {
    const { app } = await guarded(judgeSays(0.97), { cache: throwingCache }, (c) =>
      c.json({ answer: 'English.' }),
    )
    const response = await post(app)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-cache')).toBe('miss')
  })
})

describe('9. the size limit holds when an earlier middleware already read the body', () => {
  it('a body read by a middleware before the guard is still refused past maxBodyBytes', async () => {
    const { app, model } = await guarded(
      judgeSays(0.97),
      { maxBodyBytes: 1024 },
      (c) => c.json({ answer: 'never' }),
      [
        async (c, next) => {
          await c.req.json()
          await next()
        },
      ],
    )
    const response = await post(app, { ...QUESTION, padding: 'p'.repeat(4096) })
    expect(response.status).toBe(413)
    expect(await model.requests()).toHaveLength(0)
  })
})
