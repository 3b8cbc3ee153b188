import { Hono, type Handler } from 'hono'
import { describe, expect, it, vi } from 'vitest'
import {
  ConfigurationError,
  createJudge,
  ragGuard,
  type GuardDecision,
  type RagGuardOptions,
} from '../src'
import { scriptModel } from './helpers'
import type { StubStep } from './stub/openai-stub'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The stub answers True with P(True) = p (False takes the rest). */
function answering(p: number, extra: StubStep = {}): StubStep {
  const token = p >= 0.5 ? 'True' : 'False'
  return {
    token,
    logprob: Math.log(Math.max(p, 1 - p)),
    topLogprobs: [
      { token: 'True', logprob: Math.log(p) },
      { token: 'False', logprob: Math.log(1 - p) },
    ].sort((a, b) => b.logprob - a.logprob),
    ...extra,
  }
}

/** The exact bytes the handler sends: spacing and key order no serializer would reproduce. */
const HANDLER_BODY = '{ "answer":"Ada Lovelace was English.",  "sources": [1, 2] ,"id":"r1"}\n'

async function guardedApp(
  step: StubStep | { steps: StubStep[] },
  options: Partial<RagGuardOptions> = {},
  handler?: Handler,
) {
  const model = await scriptModel(step)
  const app = new Hono()
  app.post(
    '/ask',
    ragGuard({
      judge: { apiKey: 'sk-test', baseURL: model.baseURL, maxRetries: 0 },
      blockBelow: 0.2,
      flagBelow: 0.8,
      // These tests read the details; who sees them is tested in the security suite.
      details: 'everyone',
      ...options,
    }),
    handler ??
      ((c) =>
        c.body(HANDLER_BODY, 200, { 'content-type': 'application/json', 'x-handler': 'yes' })),
  )
  return { app, model }
}

const ask = (
  app: Hono,
  body: unknown = {
    question: 'What nationality was Ada Lovelace?',
    context: ['Ada Lovelace was an English mathematician.'],
  },
) =>
  app.request('/ask', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

describe('ragGuard: verdicts', () => {
  it('passes a supported answer: the same bytes, with the verdict and score headers', async () => {
    const { app } = await guardedApp(answering(0.97))
    const response = await ask(app)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9700')
    expect(response.headers.get('x-rag-guard-reason')).toBeNull()
    expect(response.headers.get('x-rag-guard-mode')).toBeNull()
    expect(response.headers.get('x-handler')).toBe('yes')
    expect(await response.text()).toBe(HANDLER_BODY)
  })

  it('flags a doubtful answer: the same bytes, verdict flag', async () => {
    const { app } = await guardedApp(answering(0.46))
    const response = await ask(app)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.4600')
    expect(await response.text()).toBe(HANDLER_BODY)
  })

  it('blocks an unsupported answer: the fallback takes the answer’s place, the rest is kept', async () => {
    const { app } = await guardedApp(answering(0.01), {
      answer: '/answer',
      fallbackMessage: 'Not in the documents.',
    })
    const response = await ask(app)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0100')
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(response.headers.get('x-handler')).toBe('yes')
    expect(await response.json()).toEqual({
      answer: 'Not in the documents.',
      sources: [1, 2],
      id: 'r1',
    })
  })

  it('blocks with a 422 insufficient_context error when no answer pointer is set', async () => {
    const { app } = await guardedApp(answering(0.01))
    const response = await ask(app)
    expect(response.status).toBe(422)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-handler')).toBeNull()
    const body = (await response.json()) as {
      error: { type: string; message: string; score: number }
    }
    expect(body.error.type).toBe('insufficient_context')
    expect(body.error.message).toBe("I can't answer that reliably from the information I have.")
    expect(body.error.score).toBeCloseTo(0.01, 10)
  })

  it('blocks with the 422 form when the answer pointer finds nothing in the response', async () => {
    const { app } = await guardedApp(answering(0.01), { answer: '/data/text' })
    const response = await ask(app)
    expect(response.status).toBe(422)
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe(
      'insufficient_context',
    )
  })

  it('lets the user shape the block response', async () => {
    const seen: GuardDecision[] = []
    const { app } = await guardedApp(answering(0.05), {
      blockResponse: (c, decision) => {
        seen.push(decision)
        return c.json({ refused: true, score: decision.score }, 451)
      },
    })
    const response = await ask(app)
    expect(response.status).toBe(451)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.json()).toEqual({ refused: true, score: expect.closeTo(0.05, 10) })
    expect(seen[0]).toMatchObject({ verdict: 'block', mode: 'enforce' })
  })

  it('falls back to the default block when blockResponse throws, and tells the operator', async () => {
    // The hook's error goes to the operator's log (asserted here, kept off the test output).
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { app } = await guardedApp(answering(0.05), {
      answer: '/answer',
      blockResponse: () => {
        throw new Error('broken hook')
      },
    })
    const response = await ask(app)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(((await response.json()) as { answer: string }).answer).toBe(
      "I can't answer that reliably from the information I have.",
    )
    expect(logged).toHaveBeenCalledWith(
      expect.stringContaining('blockResponse threw'),
      expect.objectContaining({ message: 'broken hook' }),
    )
    logged.mockRestore()
  })
})

describe('ragGuard: shadow mode', () => {
  it('never alters the response, and reports what it would have done', async () => {
    const { app } = await guardedApp(answering(0.01), { mode: 'shadow', answer: '/answer' })
    const response = await ask(app)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-mode')).toBe('shadow')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0100')
    expect(await response.text()).toBe(HANDLER_BODY)
  })

  it('does not alter the response when the judge fails and onError is block', async () => {
    const { app } = await guardedApp({ status: 500 }, { mode: 'shadow', onError: 'block' })
    const response = await ask(app)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe('judge-http-error')
    expect(await response.text()).toBe(HANDLER_BODY)
  })
})

describe('ragGuard: missing or bad input', () => {
  it.each([
    ['no question', { context: ['c'] }, 'no-question'],
    ['an empty question', { question: '  ', context: ['c'] }, 'no-question'],
    ['a question that is not a string', { question: 7, context: ['c'] }, 'invalid-question'],
    [
      'a context of the wrong type',
      { question: 'q?', context: [{ body: 'x' }] },
      'invalid-context',
    ],
    ['a body that is not JSON', 'question=q', 'invalid-request-body'],
  ])(
    '%s → unjudgeable (%s): refused with 400 before the handler, no judge call',
    async (_, body, reason) => {
      let handled = false
      const { app, model } = await guardedApp(answering(0.99), {}, (c) => {
        handled = true
        return c.json({ answer: 'never' })
      })
      const response = await ask(app, body)
      expect(response.status).toBe(400)
      expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
      expect(response.headers.get('x-rag-guard-score')).toBeNull()
      const error = ((await response.json()) as { error: { type: string; reason: string } }).error
      expect(error).toMatchObject({ type: 'unjudgeable_request', reason })
      expect(handled).toBe(false)
      expect(await model.requests()).toHaveLength(0)
    },
  )

  it.each([
    ['no context', { question: 'q?' }],
    ['an empty context', { question: 'q?', context: [] }],
    ['only empty documents', { question: 'q?', context: ['', '  '] }],
  ])('%s → no documents: score 0, blocked by the thresholds, no judge call', async (_, body) => {
    const { app, model } = await guardedApp(answering(0.99))
    const response = await ask(app, body)
    expect(response.status).toBe(422)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-documents')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0000')
    expect(await model.requests()).toHaveLength(0)
  })

  it('with onUnjudgeable flag, unjudgeable input reaches the handler and its answer goes out flagged', async () => {
    const { app } = await guardedApp(answering(0.99), { onUnjudgeable: 'flag' })
    const response = await ask(app, { question: 7, context: ['c'] })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-reason')).toBe('invalid-question')
    expect(await response.text()).toBe(HANDLER_BODY)
  })

  it('reads question and context at the configured pointers, LangChain documents included', async () => {
    const { app, model } = await guardedApp(answering(0.99), {
      question: '/input/query',
      context: '/retrieval/docs',
    })
    const response = await ask(app, {
      input: { query: 'Who?' },
      retrieval: {
        docs: [{ pageContent: 'JS doc', metadata: {} }, { page_content: 'Python doc' }],
      },
    })
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    const prompt = ((await model.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toContain('\nJS doc\n')
    expect(prompt).toContain('\nPython doc\n')
    expect(prompt).toContain('\nWho?\n')
  })

  it('leaves the request body readable by the handler', async () => {
    const { app } = await guardedApp(answering(0.99), {}, async (c) => {
      const body = await c.req.json<{ question: string }>()
      return c.json({ echoed: body.question })
    })
    const response = await ask(app)
    expect(await response.json()).toEqual({ echoed: 'What nationality was Ada Lovelace?' })
  })
})

describe('ragGuard: judge failures', () => {
  it.each([
    [{ status: 500 }, 'judge-http-error'],
    [{ status: 429 }, 'judge-rate-limited'],
    [{ rawBody: 'not json', contentType: 'text/plain' }, 'judge-bad-response'],
  ] as const)('%j → the onError verdict with reason %s, never a 500', async (step, reason) => {
    for (const [onError, status] of [
      ['pass', 200],
      ['flag', 200],
      ['block', 422],
    ] as const) {
      const { app } = await guardedApp(step, { onError })
      const response = await ask(app)
      expect(response.status).toBe(status)
      expect(response.headers.get('x-rag-guard-verdict')).toBe(onError)
      expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
      if (onError !== 'block') expect(await response.text()).toBe(HANDLER_BODY)
    }
  })

  it.each([
    [{ noLogprobs: true }, 'no-logprobs'],
    [{ token: 'Perhaps', logprob: -0.2 }, 'unexpected-token'],
  ] as const)(
    '%j → the onUnjudgeable verdict with reason %s (the reply to the data), whatever onError says',
    async (step, reason) => {
      for (const [onUnjudgeable, status] of [
        ['pass', 200],
        ['flag', 200],
        ['block', 422],
      ] as const) {
        const { app } = await guardedApp(step, { onUnjudgeable, onError: 'pass' })
        const response = await ask(app)
        expect(response.status).toBe(status)
        expect(response.headers.get('x-rag-guard-verdict')).toBe(onUnjudgeable)
        expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
        if (onUnjudgeable !== 'block') expect(await response.text()).toBe(HANDLER_BODY)
      }
    },
  )

  it('answers within the judge timeout and a small margin, with reason judge-timeout', async () => {
    const model = await scriptModel({ delayMs: 5000 })
    const app = new Hono()
    app.post(
      '/ask',
      ragGuard({
        judge: { apiKey: 'k', baseURL: model.baseURL, timeoutMs: 250 },
        onError: 'pass',
        details: 'everyone',
      }),
      (c) => c.body(HANDLER_BODY),
    )
    const startedAt = Date.now()
    const response = await ask(app)
    expect(response.headers.get('x-rag-guard-reason')).toBe('judge-timeout')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(HANDLER_BODY)
    expect(Date.now() - startedAt).toBeLessThan(250 + 700)
  })

  it('leaves a failed handler response alone and does not wait for the judge', async () => {
    const { app } = await guardedApp(
      answering(0.01, { delayMs: 5000 }),
      { answer: '/answer' },
      (c) => c.json({ error: 'upstream broke' }, 503),
    )
    const response = await ask(app)
    expect(response.status).toBe(503)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-reason')).toBe('response-not-ok')
    expect(await response.json()).toEqual({ error: 'upstream broke' })
  })
})

describe('ragGuard: the judge runs while the handler works', () => {
  it('has sent the judge request before the handler finishes', async () => {
    // The handler only finishes once the stub has seen the judge request: if the judge started
    // after the handler, this would wait until the test times out.
    const model = await scriptModel(answering(0.99))
    const app = new Hono()
    app.post('/ask', ragGuard({ judge: { apiKey: 'k', baseURL: model.baseURL } }), async (c) => {
      while ((await model.requests()).length === 0) await sleep(10)
      return c.body(HANDLER_BODY)
    })
    const response = await ask(app)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
  })

  it('takes about the longer of judge and handler, not their sum', async () => {
    const { app } = await guardedApp(answering(0.99, { delayMs: 400 }), {}, async (c) => {
      await sleep(400)
      return c.body(HANDLER_BODY)
    })
    const startedAt = Date.now()
    const response = await ask(app)
    const elapsed = Date.now() - startedAt
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(elapsed).toBeGreaterThanOrEqual(400)
    expect(elapsed).toBeLessThan(700)
  })

  it('gives the handler the decision as a typed variable, so it can skip a blocked answer', async () => {
    let generated = false
    const { app } = await guardedApp(answering(0.02), { answer: '/answer' }, async (c) => {
      const decision = await c.var.ragGuard
      if (decision.verdict === 'block') return c.json({ answer: null, skipped: true })
      generated = true
      return c.json({ answer: 'expensive answer' })
    })
    const response = await ask(app)
    expect(generated).toBe(false)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.json()).toEqual({
      answer: "I can't answer that reliably from the information I have.",
      skipped: true,
    })
  })

  it('accepts a judge made by createJudge and shares it across routes', async () => {
    const model = await scriptModel(answering(0.9))
    const judge = createJudge({ apiKey: 'k', baseURL: model.baseURL })
    const app = new Hono()
    app.post('/a', ragGuard({ judge }), (c) => c.text('a'))
    app.post('/b', ragGuard({ judge }), (c) => c.text('b'))
    const init = { method: 'POST', body: JSON.stringify({ question: 'q?', context: 'c' }) }
    const [a, b] = await Promise.all([app.request('/a', init), app.request('/b', init)])
    expect([a.headers.get('x-rag-guard-verdict'), b.headers.get('x-rag-guard-verdict')]).toEqual([
      'pass',
      'pass',
    ])
    expect(await model.requests()).toHaveLength(2)
  })
})

describe('ragGuard: configuration is checked once, at setup', () => {
  const judge = { apiKey: 'k' }
  it.each([
    [{ judge, question: 'question' }, /question must be a JSON Pointer/],
    [{ judge, answer: '/a~2' }, /answer is not a valid JSON Pointer/],
    [
      { judge, blockBelow: 0.9, flagBelow: 0.5 },
      /"blockBelow" \(0.9\) must not be greater than "flagBelow" \(0.5\)/,
    ],
    [{ judge, flagBelow: 2 }, /"flagBelow" must be a number from 0 to 1, got 2/],
    [{ judge, mode: 'observe' }, /"mode" must be "enforce" or "shadow", got "observe"/],
    [{ judge, onError: 'allow' }, /"onError" must be "pass", "flag" or "block", got "allow"/],
    [
      { judge, onUnjudgeable: 'deny' },
      /"onUnjudgeable" must be "pass", "flag" or "block", got "deny"/,
    ],
    [{ judge, onMissingInput: 'block' }, /"onMissingInput" was removed: it is now "onUnjudgeable"/],
    [{}, /requires the "judge" option/],
  ])('%j is refused with an error that names the option', (options, message) => {
    expect(() => ragGuard(options as RagGuardOptions)).toThrow(ConfigurationError)
    expect(() => ragGuard(options as RagGuardOptions)).toThrow(message)
  })
})

describe('the test runtime', () => {
  it('is workerd, not Node', () => {
    expect(navigator.userAgent).toBe('Cloudflare-Workers')
  })
})
