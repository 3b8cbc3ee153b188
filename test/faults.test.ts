/**
 * The fault suite: the Worker in workerd, a stub upstream and a stub judge that misbehave on
 * command. For each fault, the documented outcome (docs/operate.md, "When things fail"):
 * the ON_ERROR verdict with its reason, a clear 502/504 JSON error, or the upstream's own bytes;
 * never a 500, never a hang past the budgets, never a lost upstream answer on pass or flag.
 */
import { describe, expect, it, vi } from 'vitest'
import type { StubStep } from './stub/openai-stub'
import { chunk, FALLBACK, judgeSays, postJson, setupGuard, sse } from './guard-helpers'

const request = {
  question: 'When do harbor stations close?',
  context: ['Stations close during storm warnings.'],
}
const answer = {
  answer: 'During storm warnings.',
  sources: [{ pageContent: 'Stations close during storm warnings.' }],
}
const answerBytes = JSON.stringify(answer)

/** A streamed chat request with its documents in the system message. */
const streamedChat = {
  model: 'm',
  stream: true,
  messages: [
    { role: 'system', content: 'docs' },
    { role: 'user', content: 'q?' },
  ],
}

describe('the judge misbehaves: the ON_ERROR verdict with its reason, the answer kept', () => {
  const faults: Array<[string, StubStep, string]> = [
    ['answers 500', { status: 500 }, 'judge-http-error'],
    [
      'answers 429 with retry-after',
      { status: 429, headers: { 'retry-after': '20' } },
      'judge-rate-limited',
    ],
    [
      'sends a body that is not JSON',
      { rawBody: '<html>oops</html>', contentType: 'text/html' },
      'judge-bad-response',
    ],
    [
      'cuts its body short and resets',
      { ...judgeSays(0.9), truncateAfter: 40 },
      'judge-unreachable',
    ],
    ['resets the connection', { reset: true }, 'judge-unreachable'],
    ['hangs', { hang: true }, 'judge-timeout'],
  ]

  it.each(faults)('%s → %s', async (_, step, reason) => {
    for (const onError of ['pass', 'flag', 'block'] as const) {
      const { send } = await setupGuard(
        { headers: { 'content-type': 'application/json' }, body: answerBytes },
        step,
        { ON_ERROR: onError, JUDGE_TIMEOUT_MS: '300' },
      )
      const startedAt = Date.now()
      const response = await send('/ask', postJson(request))
      const body = await response.text()
      expect(Date.now() - startedAt).toBeLessThan(300 + 1000)
      expect(response.status).toBe(200)
      expect(response.headers.get('x-rag-guard-verdict')).toBe(onError)
      expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
      if (onError === 'block') expect(JSON.parse(body)).toEqual({ ...answer, answer: FALLBACK })
      else expect(body).toBe(answerBytes)
    }
  })
})

describe('the upstream misbehaves', () => {
  it('down → 502 upstream_unreachable, at once', async () => {
    // The operator's log names the upstream (asserted here, kept off the test output).
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { send } = await setupGuard({}, judgeSays(0.9), { UPSTREAM_URL: 'http://127.0.0.1:9' })
    const response = await send('/ask', postJson(request))
    expect(response.status).toBe(502)
    expect(await response.json()).toEqual({
      error: {
        type: 'upstream_unreachable',
        message: 'The upstream RAG endpoint could not be reached.',
      },
    })
    expect(String(logged.mock.calls[0]?.[0])).toContain(
      '"message":"RAG Guard: upstream unreachable"',
    )
    logged.mockRestore()
  })

  it('slower than UPSTREAM_TIMEOUT_MS → 504 upstream_timeout within the budget', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { send } = await setupGuard({ json: answer, delayMs: 5000 }, judgeSays(0.9), {
      UPSTREAM_TIMEOUT_MS: '300',
      PASS_THROUGH: [{ path: '/unguarded', methods: ['POST'] }],
    })
    for (const path of ['/ask', '/unguarded']) {
      const startedAt = Date.now()
      const response = await send(path, postJson(request))
      expect(Date.now() - startedAt).toBeLessThan(300 + 1000)
      expect(response.status).toBe(504)
      expect(await response.json()).toEqual({
        error: {
          type: 'upstream_timeout',
          message: 'The upstream RAG endpoint did not answer within 300 ms.',
        },
      })
    }
    // Once per request, for the operator.
    expect(logged.mock.calls.map((call) => String(call[0]))).toEqual([
      expect.stringContaining('"message":"RAG Guard: upstream timed out"'),
      expect.stringContaining('"message":"RAG Guard: upstream timed out"'),
    ])
    logged.mockRestore()
  })

  it('non-JSON on a JSON route: passed untouched, or judged from the request; unjudgeable (blocked) when the context was to come from it', async () => {
    const text = 'Stations close during storm warnings (plain text).'
    const passed = await setupGuard(
      { headers: { 'content-type': 'text/plain' }, body: text },
      judgeSays(0.9),
    )
    const passedResponse = await passed.send('/ask', postJson(request))
    expect(passedResponse.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await passedResponse.text()).toBe(text)

    const blocked = await setupGuard(
      { headers: { 'content-type': 'text/plain' }, body: text },
      judgeSays(0.01),
    )
    const blockedResponse = await blocked.send('/ask', postJson(request))
    expect(blockedResponse.status).toBe(422)
    expect(((await blockedResponse.json()) as { error: { type: string } }).error.type).toBe(
      'insufficient_context',
    )

    const late = await setupGuard(
      { headers: { 'content-type': 'text/plain' }, body: text },
      judgeSays(0.9),
    )
    const lateResponse = await late.send('/ask-late', postJson({ question: request.question }))
    expect(lateResponse.headers.get('x-rag-guard-reason')).toBe('invalid-response-body')
    expect(lateResponse.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await lateResponse.text()).not.toContain(text)

    const flagged = await setupGuard(
      { headers: { 'content-type': 'text/plain' }, body: text },
      judgeSays(0.9),
      { ON_UNJUDGEABLE: 'flag' },
    )
    const flaggedResponse = await flagged.send(
      '/ask-late',
      postJson({ question: request.question }),
    )
    expect(flaggedResponse.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(await flaggedResponse.text()).toBe(text)
  })

  it('a JSON body cut short, when the context was to come from it → 502 upstream_broken', async () => {
    const { send } = await setupGuard({ json: answer, truncateAfter: 20 }, judgeSays(0.9))
    const response = await send('/ask-late', postJson({ question: request.question }))
    expect(response.status).toBe(502)
    expect(response.headers.get('x-rag-guard-reason')).toBe('upstream-stream-error')
    expect(await response.json()).toEqual({
      error: {
        type: 'upstream_broken',
        message: "The upstream RAG endpoint's response broke off.",
      },
    })
  })

  it('a stream that breaks off before the verdict → unjudgeable (upstream-stream-error): a fallback stream by default, what arrived with ON_UNJUDGEABLE = "flag"', async () => {
    const events = sse(
      { data: chunk({ role: 'assistant', content: '' }) },
      { data: chunk({ content: 'During ' }) },
      { data: chunk({ content: 'storms.' }) },
      { data: '[DONE]' },
    )
    const chat = postJson(streamedChat)
    for (const policy of ['block', 'flag'] as const) {
      const { send } = await setupGuard(
        { headers: { 'content-type': 'text/event-stream' }, chunks: events, resetAfterChunks: 2 },
        judgeSays(0.9, { delayMs: 500 }),
        { ON_UNJUDGEABLE: policy },
      )
      const response = await send('/v1/chat/completions', chat)
      expect(response.headers.get('x-rag-guard-reason')).toBe('upstream-stream-error')
      expect(response.headers.get('x-rag-guard-verdict')).toBe(policy)
      const text = await response.text()
      if (policy === 'flag') expect(text).toBe(events.slice(0, 2).join(''))
      else {
        expect(text).toContain(FALLBACK)
        expect(text).not.toContain('During')
        expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
      }
    }
  })

  it('a stream that breaks off after the verdict (piped natively by then) reaches the client broken off, not ended', async () => {
    const events = sse(
      ...Array.from({ length: 6 }, (_, index) => ({ data: chunk({ content: `part ${index} ` }) })),
      { data: '[DONE]' },
    )
    const { send } = await setupGuard(
      {
        headers: { 'content-type': 'text/event-stream' },
        chunks: events,
        chunkDelayMs: 50,
        resetAfterChunks: 4,
      },
      judgeSays(0.9),
    )
    const response = await send('/v1/chat/completions', postJson(streamedChat))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    const reader = response.body!.getReader()
    let text = ''
    const ending = await (async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return 'ended'
        text += new TextDecoder().decode(value)
      }
    })().catch(() => 'broken')
    // What the upstream sent before it broke off, and no end: as without the guard.
    expect(ending).toBe('broken')
    expect(text).toBe(events.slice(0, 4).join(''))
  })

  it('a stream that ends early without [DONE] is judged and passed as it came', async () => {
    const events = sse({ data: chunk({ content: 'Partial answer' }) })
    const { send } = await setupGuard(
      { headers: { 'content-type': 'text/event-stream' }, chunks: events },
      judgeSays(0.9),
    )
    const response = await send('/v1/chat/completions', postJson(streamedChat))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(events.join(''))
  })

  it('a huge response, when the context was to come from it → unjudgeable: blocked by default, every byte passed on with ON_UNJUDGEABLE = "flag"', async () => {
    const huge = { answer: 'x', sources: [{ pageContent: 'y'.repeat(3 * 1024 * 1024) }] }
    for (const policy of ['block', 'flag'] as const) {
      const { send, judge } = await setupGuard({ json: huge }, judgeSays(0.9), {
        MAX_BODY_BYTES: String(1024 * 1024),
        ON_UNJUDGEABLE: policy,
      })
      const response = await send('/ask-late', postJson({ question: request.question }))
      expect(response.headers.get('x-rag-guard-reason')).toBe('response-too-large')
      expect(response.headers.get('x-rag-guard-verdict')).toBe(policy)
      const text = await response.text()
      if (policy === 'flag') expect(text).toBe(JSON.stringify(huge))
      else expect(text.length).toBeLessThan(1024)
      expect(await judge.requests()).toHaveLength(0)
    }
  })
})

describe('oversize requests (MAX_BODY_BYTES)', () => {
  const big = JSON.stringify({ question: 'q?', context: ['z'.repeat(2 * 1024 * 1024)] })

  it('are refused with a clear 413 by default, before reaching the upstream', async () => {
    const { send, upstream } = await setupGuard({ json: answer }, judgeSays(0.9), {
      MAX_BODY_BYTES: String(1024 * 1024),
    })
    const response = await send('/ask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: big,
    })
    expect(response.status).toBe(413)
    expect(response.headers.get('x-rag-guard-reason')).toBe('request-too-large')
    expect(await response.json()).toEqual({
      error: {
        type: 'unjudgeable_request',
        reason: 'request-too-large',
        message:
          'The guard cannot judge this request: the request body is larger than 1048576 bytes.',
      },
    })
    expect(await upstream.requests()).toHaveLength(0)
  })

  it('with ON_UNJUDGEABLE = "flag", go to the upstream whole and unjudged, even without a content-length', async () => {
    for (const streamed of [false, true]) {
      const { send, upstream, judge } = await setupGuard({ json: answer }, judgeSays(0.9), {
        MAX_BODY_BYTES: String(1024 * 1024),
        ON_UNJUDGEABLE: 'flag',
      })
      const body = streamed ? new Blob([big]).stream() : big
      const response = await send('/ask', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      expect(response.status).toBe(200)
      expect(response.headers.get('x-rag-guard-reason')).toBe('request-too-large')
      expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
      expect(await response.json()).toEqual(answer)
      expect((await upstream.requests())[0]!.rawBody).toBe(big)
      expect(await judge.requests()).toHaveLength(0)
    }
  })
})
