import { createExecutionContext } from 'cloudflare:test'
import OpenAI from 'openai'
import { describe, expect, it, vi } from 'vitest'
import { ConfigurationError } from '../src'
import { createGuardApp } from '../src/app'
import type { GuardEnv } from '../src/config'
import worker from '../src/worker'
import { FALLBACK, judgeSays, postJson, SECRET, setupGuard as setup } from './guard-helpers'
import { scriptModel } from './helpers'

/** Calls the Worker's own fetch handler, as the runtime does for a request from the internet. */
const callWorker = async (request: Request, env: GuardEnv): Promise<Response> =>
  worker.fetch(request as Parameters<typeof worker.fetch>[0], env, createExecutionContext())

function expectNoSecret(response: Response, body: string) {
  for (const [, value] of response.headers) expect(value).not.toContain(SECRET)
  expect(body).not.toContain(SECRET)
}

describe('format json', () => {
  const upstreamBody =
    '{"answer": "Ada was English.",\n "sources":[{"pageContent":"Ada Lovelace was an English mathematician."}], "id": 7}'
  const request = {
    question: 'What nationality was Ada?',
    context: ['Ada Lovelace was an English mathematician.'],
  }

  it('pass: the upstream bytes, status and headers, plus the verdict headers', async () => {
    const { send, upstream } = await setup(
      {
        status: 201,
        headers: { 'content-type': 'application/json', 'x-upstream': 'kept' },
        body: upstreamBody,
      },
      judgeSays(0.95),
    )
    const response = await send('/ask?tenant=a', postJson(request))
    const text = await response.text()
    expect(response.status).toBe(201)
    expect(response.headers.get('x-upstream')).toBe('kept')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9500')
    expect(text).toBe(upstreamBody)
    const [forwarded] = await upstream.requests()
    expect(forwarded).toMatchObject({
      method: 'POST',
      path: '/ask',
      query: '?tenant=a',
      rawBody: JSON.stringify(request),
    })
    expectNoSecret(response, text)
  })

  it('the guarded body goes up byte for byte, with its Content-Length, and the query as sent', async () => {
    const reply = { headers: { 'content-type': 'application/json' }, body: upstreamBody }
    const { env, upstream } = await setup([reply, reply], {
      steps: [judgeSays(0.95), judgeSays(0.95)],
    })
    const body = `\ufeff${JSON.stringify({ ...request, note: 'café — 10 €' })}  `
    const bytes = new TextEncoder().encode(body)
    for (const [path, query] of [
      ['/ask?tenant=a/b&next=%2Fx#fragment', '?tenant=a/b&next=%2Fx'],
      ['/ask?', ''],
    ]) {
      const response = await callWorker(
        new Request(`https://guard.example.com${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(bytes.length) },
          body: bytes,
        }),
        { ...env, UPSTREAM_URL: `${upstream.root}/` },
      )
      expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
      expect(await response.text()).toBe(upstreamBody)
      const forwarded = (await upstream.requests()).at(-1)!
      expect(forwarded).toMatchObject({ path: '/ask', query, rawBody: body })
      expect(forwarded.headers['content-length']).toBe(String(bytes.length))
    }
  })

  it('flag: the upstream bytes, verdict flag', async () => {
    const { send } = await setup(
      { headers: { 'content-type': 'application/json' }, body: upstreamBody },
      judgeSays(0.5),
    )
    const response = await send('/ask', postJson(request))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(await response.text()).toBe(upstreamBody)
  })

  it('block: the same JSON with the fallback as the answer', async () => {
    const { send } = await setup(
      { headers: { 'content-type': 'application/json' }, body: upstreamBody },
      judgeSays(0.03),
    )
    const response = await send('/ask', postJson(request))
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.json()).toEqual({
      answer: FALLBACK,
      sources: [{ pageContent: 'Ada Lovelace was an English mathematician.' }],
      id: 7,
    })
  })

  it('context in the response: judged after it arrives, and the documents reach the judge', async () => {
    const { send, judge } = await setup(
      { headers: { 'content-type': 'application/json' }, body: upstreamBody },
      judgeSays(0.03),
    )
    const response = await send('/ask-late', postJson({ question: 'What nationality was Ada?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(((await response.json()) as { answer: string }).answer).toBe(FALLBACK)
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toContain('\nAda Lovelace was an English mathematician.\n')
  })

  it('context in the response, pass: the same bytes', async () => {
    const { send } = await setup(
      { headers: { 'content-type': 'application/json' }, body: upstreamBody },
      judgeSays(0.99),
    )
    const response = await send('/ask-late', postJson({ question: 'What nationality was Ada?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(upstreamBody)
  })

  it('context in the response but the response is not JSON: unjudgeable, so the answer never goes out unjudged', async () => {
    const { send } = await setup(
      { headers: { 'content-type': 'text/plain' }, body: 'plain answer' },
      judgeSays(0.99),
    )
    const response = await send('/ask-late', postJson({ question: 'q?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe('invalid-response-body')
    expect(await response.text()).not.toContain('plain answer')
  })

  it('… and with ON_UNJUDGEABLE = "flag", it goes out flagged, bytes kept', async () => {
    const { send } = await setup(
      { headers: { 'content-type': 'text/plain' }, body: 'plain answer' },
      judgeSays(0.99),
      { ON_UNJUDGEABLE: 'flag' },
    )
    const response = await send('/ask-late', postJson({ question: 'q?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-reason')).toBe('invalid-response-body')
    expect(await response.text()).toBe('plain answer')
  })
})

const completion = (content: string, extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-upstream1',
  object: 'chat.completion',
  created: 1_760_000_000,
  model: 'rag-model',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content, refusal: null, ...extra },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 120, completion_tokens: 9, total_tokens: 129 },
})

describe('format openai-chat', () => {
  const chatRequest = {
    model: 'rag-model',
    messages: [
      {
        role: 'system',
        content: 'Answer from these documents:\nAda Lovelace was an English mathematician.',
      },
      { role: 'user', content: 'Earlier question' },
      { role: 'assistant', content: 'Earlier answer' },
      { role: 'user', content: [{ type: 'text', text: 'What nationality was Ada?' }] },
    ],
  }

  it('judges the last user message, with the turns before it, against the system messages', async () => {
    const body = JSON.stringify(completion('She was English.'))
    const { send, judge } = await setup(
      { headers: { 'content-type': 'application/json' }, body },
      judgeSays(0.97),
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(body)
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toMatch(/QUESTION [0-9a-f]{32}>>>\nWhat nationality was Ada\?\n<<</)
    expect(prompt).toContain('Ada Lovelace was an English mathematician.')
    // The earlier turns are data too, each in a block of its own, before the question.
    expect(prompt).toMatch(/EARLIER USER TURN 1 [0-9a-f]{32}>>>\nEarlier question\n<<</)
    expect(prompt).toMatch(/EARLIER ASSISTANT TURN 2 [0-9a-f]{32}>>>\nEarlier answer\n<<</)
    expect(prompt.indexOf('Earlier answer')).toBeLessThan(prompt.indexOf('What nationality'))
  })

  it('the official openai client gets a normal completion on pass and a parseable fallback on block', async () => {
    for (const [p, expected, verdict] of [
      [0.97, 'She was English.', 'pass'],
      [0.02, FALLBACK, 'block'],
    ] as const) {
      const { env, upstream } = await setup({ json: completion('She was English.') }, judgeSays(p))
      const client = new OpenAI({
        apiKey: 'client-own-key',
        baseURL: 'https://guard.example.com/v1',
        maxRetries: 0,
        fetch: (url, init) => callWorker(new Request(url, init), env),
      })
      const { data, response } = await client.chat.completions
        .create(chatRequest as never)
        .withResponse()
      expect(response.headers.get('x-rag-guard-verdict')).toBe(verdict)
      expect(data.object).toBe('chat.completion')
      expect(data.choices[0]!.message.content).toBe(expected)
      expect(data.choices[0]!.finish_reason).toBe('stop')
      expect(data.model).toBe('rag-model')
      // The client's own credentials are the upstream's business, forwarded as they came.
      expect((await upstream.requests())[0]!.headers.authorization).toBe('Bearer client-own-key')
    }
  })

  it('block, context from Azure "On Your Data" citations in the response', async () => {
    const upstream = completion('He did.', {
      context: {
        citations: [{ content: 'Dickens was a friend of Lovelace.', title: 'Ada' }],
        intent: '[]',
      },
    })
    const { send, judge } = await setup({ json: upstream }, judgeSays(0.01))
    const response = await send(
      '/azure/chat/completions',
      postJson({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Did Ada work with Dickens?' }],
      }),
    )
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const body = (await response.json()) as ReturnType<typeof completion>
    expect(body).toMatchObject({
      id: 'chatcmpl-upstream1',
      object: 'chat.completion',
      model: 'rag-model',
      usage: upstream.usage,
    })
    expect(body.choices).toEqual([
      {
        index: 0,
        message: { role: 'assistant', content: FALLBACK, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ])
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toContain('Dickens was a friend of Lovelace.')
  })
})

describe('format langserve', () => {
  const invokeOutput = (answer: string, key: 'pageContent' | 'page_content' = 'page_content') => ({
    output: {
      input: 'What nationality was Ada?',
      context: [
        {
          [key]: 'Ada Lovelace was an English mathematician.',
          metadata: { source: 'ada.txt' },
          type: 'Document',
        },
      ],
      answer,
    },
    metadata: { run_id: '0b3c6a6e-6a7e-4d1b-9d6e-3c1d2f7a9b10', feedback_tokens: [] },
    callback_events: [],
  })

  it('pass on /invoke: the upstream bytes', async () => {
    const body = JSON.stringify(invokeOutput('English.'))
    const { send, judge } = await setup(
      { headers: { 'content-type': 'application/json' }, body },
      judgeSays(0.9),
    )
    const response = await send(
      '/rag/invoke',
      postJson({ input: { input: 'What nationality was Ada?' }, config: {}, kwargs: {} }),
    )
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(body)
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toMatch(/>>>\nWhat nationality was Ada\?\n<<</)
    expect(prompt).toContain('\nAda Lovelace was an English mathematician.\n')
  })

  it('block on /invoke: a valid LangServe output with the fallback as the answer', async () => {
    const { send } = await setup(
      { json: invokeOutput('English, and she sailed with Dickens.', 'pageContent') },
      judgeSays(0.1),
    )
    const response = await send('/rag/invoke', postJson({ input: 'What nationality was Ada?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const expected = invokeOutput(FALLBACK, 'pageContent')
    expect(await response.json()).toEqual(expected)
  })

  it('a retrieval chain answered directly ({input, context, answer}), blocked', async () => {
    const chain = invokeOutput('x').output
    const { send } = await setup({ json: chain }, judgeSays(0.1))
    const response = await send('/chain', postJson({ input: 'What nationality was Ada?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.json()).toEqual({ ...chain, answer: FALLBACK })
  })
})

describe('a format without streaming', () => {
  it('refuses a json-format stream (400, streaming-not-supported): nothing goes out unjudged', async () => {
    const chunks = ['data: {"answer": "part"}\n\n', 'data: [DONE]\n\n']
    const { send, judge, upstream } = await setup(
      { headers: { 'content-type': 'text/event-stream' }, chunks },
      judgeSays(0.01),
      { ON_ERROR: 'block' },
    )
    const response = await send('/ask', postJson({ question: 'q?', context: 'c', stream: true }))
    expect(response.status).toBe(400)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe('streaming-not-supported')
    expect(await upstream.requests()).toHaveLength(0)
    expect(await judge.requests()).toHaveLength(0)
  })

  it('with ON_UNJUDGEABLE = "flag", passes it on unjudged, flagged (never below the policy)', async () => {
    const chunks = ['data: {"answer": "part"}\n\n', 'data: [DONE]\n\n']
    const { send } = await setup(
      { headers: { 'content-type': 'text/event-stream' }, chunks },
      judgeSays(0.01),
      { ON_UNJUDGEABLE: 'flag' },
    )
    const response = await send('/ask', postJson({ question: 'q?', context: 'c', stream: true }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-reason')).toBe('streaming-not-supported')
    expect(await response.text()).toBe(chunks.join(''))
  })
})

describe('flag, in every format: the upstream bytes with verdict flag', () => {
  it.each([
    ['json', '/ask', { question: 'q?', context: ['c'] }, { answer: 'a', sources: [] }],
    [
      'openai-chat',
      '/v1/chat/completions',
      {
        messages: [
          { role: 'system', content: 'docs' },
          { role: 'user', content: 'q?' },
        ],
      },
      completion('a'),
    ],
    [
      'langserve',
      '/rag/invoke',
      { input: 'q?' },
      { output: { input: 'q?', context: [{ page_content: 'doc' }], answer: 'a' }, metadata: {} },
    ],
  ])('%s', async (_, path, request, reply) => {
    const body = `${JSON.stringify(reply, null, 1)}\n`
    const { send } = await setup(
      { headers: { 'content-type': 'application/json' }, body },
      judgeSays(0.4),
    )
    const response = await send(path, postJson(request))
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.4000')
    expect(await response.text()).toBe(body)
  })
})

/** Every path open to the upstream, unjudged, where no route guards it. */
const OPEN = {
  PASS_THROUGH: [{ path: '/*', methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] }],
}

describe('PASS_THROUGH paths are proxied untouched', () => {
  it('without a PASS_THROUGH rule, a path no route guards is refused with 404, and nothing is forwarded', async () => {
    const { send, upstream, judge } = await setup({ body: 'secret admin page' }, judgeSays(0.5))
    for (const [path, method] of [
      ['/admin/secrets', 'GET'],
      ['/other', 'PUT'],
      ['/ask', 'GET'],
    ] as const) {
      const response = await send(path, { method })
      expect(response.status).toBe(404)
      expect(((await response.json()) as { error: { type: string } }).error.type).toBe('not_found')
    }
    expect(await upstream.requests()).toHaveLength(0)
    expect(await judge.requests()).toHaveLength(0)
  })

  it('method, path, query, headers and body go up; status, headers and body come back', async () => {
    const { send, upstream, judge } = await setup(
      {
        status: 418,
        headers: { 'content-type': 'application/x-custom', 'x-reply': 'r', 'set-cookie': 'a=1' },
        body: 'short and stout',
      },
      judgeSays(0.5),
      OPEN,
    )
    const response = await send('/other/path?x=1&y=%20two', {
      method: 'PUT',
      headers: {
        'x-custom': 'c',
        authorization: 'Bearer user',
        'content-type': 'text/plain',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': 'hop',
      },
      body: 'raw\u0000bytes',
    })
    expect(response.status).toBe(418)
    expect(response.headers.get('x-reply')).toBe('r')
    expect(response.headers.get('set-cookie')).toBe('a=1')
    expect(response.headers.get('x-rag-guard-verdict')).toBeNull()
    // Bytes, as a client of an application/x-custom body reads them (not .text()).
    expect(new TextDecoder().decode(await response.arrayBuffer())).toBe('short and stout')
    const [forwarded] = await upstream.requests()
    expect(forwarded).toMatchObject({
      method: 'PUT',
      path: '/other/path',
      query: '?x=1&y=%20two',
      rawBody: 'raw\u0000bytes',
    })
    expect(forwarded!.headers).toMatchObject({
      'x-custom': 'c',
      authorization: 'Bearer user',
      'content-type': 'text/plain',
    })
    expect(forwarded!.headers['x-drop-me']).toBeUndefined()
    expect(await judge.requests()).toHaveLength(0)
  })

  it('GET on a guarded path, allow-listed, is proxied untouched', async () => {
    const { send } = await setup({ body: 'docs page' }, judgeSays(0.01), OPEN)
    const response = await send('/ask')
    expect(await response.text()).toBe('docs page')
    expect(response.headers.get('x-rag-guard-verdict')).toBeNull()
  })

  it('streams a streamed body through, chunk by chunk', async () => {
    const { send } = await setup(
      {
        headers: { 'content-type': 'text/plain' },
        chunks: ['first chunk|', 'second chunk'],
        chunkDelayMs: 1500,
      },
      judgeSays(0.5),
      OPEN,
    )
    const response = await send('/download')
    const reader = response.body!.getReader()
    const first = await reader.read()
    // Buffered, the first read would hold both chunks, 1.5 s later.
    expect(new TextDecoder().decode(first.value)).toBe('first chunk|')
    let rest = ''
    for (let next = await reader.read(); !next.done; next = await reader.read())
      rest += new TextDecoder().decode(next.value)
    expect(rest).toBe('second chunk')
  })

  it('forwards only to the configured upstream, whatever the URL or Host header says', async () => {
    const { env, upstream } = await setup({ body: 'from the real upstream' }, judgeSays(0.5), OPEN)
    for (const [url, host] of [
      ['https://evil.example/steal?x=1', 'evil.example'],
      ['http://169.254.169.254/latest/meta-data', '169.254.169.254'],
      ['https://guard.example.com//evil.example/path', 'guard.example.com'],
    ]) {
      const response = await callWorker(new Request(url!, { headers: { host: host! } }), env)
      expect(await response.text()).toBe('from the real upstream')
    }
    const forwarded = await upstream.requests()
    expect(forwarded.map((request) => request.path)).toEqual([
      '/steal',
      '/latest/meta-data',
      '//evil.example/path',
    ])
    for (const request of forwarded) expect(request.headers.host).toBe(new URL(upstream.root).host)
  })

  it('a service binding UPSTREAM is used in place of the network', async () => {
    const seen: string[] = []
    const model = await scriptModel(judgeSays(0.99))
    const env: GuardEnv = {
      UPSTREAM: {
        fetch: async (input: RequestInfo | URL) => (
          seen.push(input instanceof Request ? input.url : String(input)),
          Response.json({ answer: 'a' })
        ),
      } as unknown as Fetcher,
      OPENAI_BASE_URL: model.baseURL,
      GUARD_AUTH: 'none',
      GUARD_DETAILS: 'everyone',
      CACHE_TTL_SECONDS: 0,
      LOG_DECISIONS: false,
      GUARD_ROUTES: JSON.stringify([{ path: '/ask', format: 'json', answer: '/answer' }]),
    }
    const response = await callWorker(
      new Request('https://guard.example.com/ask?q=1', postJson({ question: 'q?', context: 'c' })),
      env,
    )
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-mode')).toBe('shadow')
    expect(seen).toEqual(['https://upstream.invalid/ask?q=1'])
  })
})

describe('upstream down', () => {
  // The operator's log says which upstream could not be reached (asserted, kept off the output).
  const expectUnreachableLogged = (logged: { mock: { calls: unknown[][] } }) =>
    expect(logged.mock.calls.map((call) => String(call[0]))).toContainEqual(
      expect.stringContaining(
        '"message":"RAG Guard: upstream unreachable","upstream":"http://127.0.0.1:9"',
      ),
    )

  it('answers a clear 502 JSON on an unguarded path', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { send } = await setup({}, judgeSays(0.5), {
      UPSTREAM_URL: 'http://127.0.0.1:9',
      ...OPEN,
    })
    const response = await send('/anything')
    expect(response.status).toBe(502)
    expect(await response.json()).toEqual({
      error: {
        type: 'upstream_unreachable',
        message: 'The upstream RAG endpoint could not be reached.',
      },
    })
    expectUnreachableLogged(logged)
    logged.mockRestore()
  })

  it('answers the same 502 on a guarded path, and does not wait for the judge', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { send } = await setup(
      {},
      { ...judgeSays(0.5), delayMs: 5000 },
      { UPSTREAM_URL: 'http://127.0.0.1:9' },
    )
    const response = await send('/ask', postJson({ question: 'q?', context: 'c' }))
    expect(response.status).toBe(502)
    expect(response.headers.get('x-rag-guard-reason')).toBe('response-not-ok')
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe(
      'upstream_unreachable',
    )
    expectUnreachableLogged(logged)
    logged.mockRestore()
  })
})

describe('configuration', () => {
  const base: GuardEnv = {
    UPSTREAM_URL: 'https://rag.example.com',
    OPENAI_API_KEY: SECRET,
    GUARD_AUTH: 'none',
    GUARD_ROUTES: [{ path: '/ask', format: 'json' }],
  }

  it.each([
    [{ GUARD_AUTH: undefined }, 'GUARD_AUTH', /GUARD_AUTH is required: "token"/],
    [{ GUARD_AUTH: 'token' }, 'GUARD_TOKENS', /GUARD_TOKENS is required with GUARD_AUTH "token"/],
    [{ GUARD_AUTH: 'none,token' }, 'GUARD_AUTH', /GUARD_AUTH must be "none" alone/],
    [{ GUARD_AUTH: 'anyone' }, 'GUARD_AUTH', /GUARD_AUTH must be "token", "access"/],
    [
      { GUARD_AUTH: 'token', GUARD_TOKENS: 'short' },
      'GUARD_TOKENS',
      /GUARD_TOKENS must be tokens of at least 16 characters/,
    ],
    [
      { GUARD_AUTH: 'access' },
      'ACCESS_TEAM_DOMAIN',
      /ACCESS_TEAM_DOMAIN is required with GUARD_AUTH "access"/,
    ],
    [{ ON_OVERSIZE: 'pass' }, 'ON_OVERSIZE', /ON_OVERSIZE was removed: .*ON_UNJUDGEABLE/],
    [
      { ON_UNJUDGEABLE: 'allow' },
      'ON_UNJUDGEABLE',
      /ON_UNJUDGEABLE must be "pass", "flag" or "block"/,
    ],
    [
      { PASS_THROUGH: [{ path: 'health' }] },
      'PASS_THROUGH[0].path',
      /PASS_THROUGH\[0\].path must start with "\/"/,
    ],
    [{ BLOCK_BELOW: 'abc' }, 'BLOCK_BELOW', /BLOCK_BELOW must be a number from 0 to 1, got "abc"/],
    [{ FLAG_BELOW: '1.5' }, 'FLAG_BELOW', /FLAG_BELOW must be a number from 0 to 1, got 1.5/],
    [
      { BLOCK_BELOW: 0.9, FLAG_BELOW: 0.5 },
      'BLOCK_BELOW',
      /BLOCK_BELOW \(0.9\) must not be greater than FLAG_BELOW \(0.5\)/,
    ],
    [{ GUARD_MODE: 'on' }, 'GUARD_MODE', /GUARD_MODE must be "enforce" or "shadow", got "on"/],
    [{ ON_ERROR: 'allow' }, 'ON_ERROR', /ON_ERROR must be "pass", "flag" or "block", got "allow"/],
    [
      { UPSTREAM_URL: 'ftp://rag.example.com' },
      'UPSTREAM_URL',
      /UPSTREAM_URL must be an http\(s\) URL, got "ftp:\/\/rag.example.com"/,
    ],
    [{ UPSTREAM_URL: undefined }, 'UPSTREAM_URL', /UPSTREAM_URL is required/],
    [{ OPENAI_API_KEY: undefined }, 'OPENAI_API_KEY', /OPENAI_API_KEY is required/],
    [
      { OPENAI_BASE_URL: 'localhost:8000' },
      'OPENAI_BASE_URL',
      /OPENAI_BASE_URL must be an http\(s\) URL/,
    ],
    [
      { JUDGE_TOP_LOGPROBS: '50' },
      'JUDGE_TOP_LOGPROBS',
      /JUDGE_TOP_LOGPROBS must be an integer from 1 to 20, got 50/,
    ],
    [
      { JUDGE_TIMEOUT_MS: '2.5' },
      'JUDGE_TIMEOUT_MS',
      /JUDGE_TIMEOUT_MS must be an integer \(milliseconds\) from 1 to 600000, got 2.5/,
    ],
    [{ GUARD_ROUTES: undefined }, 'GUARD_ROUTES', /GUARD_ROUTES must be an array of route rules/],
    [
      { GUARD_ROUTES: '[{"path": "/ask",' },
      'GUARD_ROUTES',
      /GUARD_ROUTES is a string that is not valid JSON/,
    ],
    [{ GUARD_ROUTES: [] }, 'GUARD_ROUTES', /GUARD_ROUTES must hold at least one route rule/],
    [
      { GUARD_ROUTES: [{ path: '/ask', format: 'xml' }] },
      'GUARD_ROUTES[0].format',
      /GUARD_ROUTES\[0\].format must be "json", "openai-chat" or "langserve", got "xml"/,
    ],
    [
      {
        GUARD_ROUTES: [
          { path: '/a', format: 'json' },
          { path: 'ask', format: 'json' },
        ],
      },
      'GUARD_ROUTES[1].path',
      /GUARD_ROUTES\[1\].path must start with "\/", got "ask"/,
    ],
    [
      { GUARD_ROUTES: [{ path: '/ask', format: 'json', blockbelow: 0.2 }] },
      'GUARD_ROUTES[0]',
      /GUARD_ROUTES\[0\] has unknown keys "blockbelow"/,
    ],
    [
      { GUARD_ROUTES: [{ path: '/ask', format: 'json', answer: 'answer' }] },
      'GUARD_ROUTES[0].answer',
      /GUARD_ROUTES\[0\].answer must be a JSON Pointer/,
    ],
    [
      { GUARD_ROUTES: [{ path: '/ask', format: 'json', blockBelow: 0.6, flagBelow: 0.4 }] },
      'GUARD_ROUTES[0].blockBelow',
      /GUARD_ROUTES\[0\].blockBelow \(0.6\) must not be greater than GUARD_ROUTES\[0\].flagBelow \(0.4\)/,
    ],
    [
      { GUARD_ROUTES: [{ path: '/c', format: 'openai-chat', answer: '/x' }] },
      'GUARD_ROUTES[0].answer',
      /question and answer are fixed for the openai-chat format/,
    ],
    [
      { GUARD_ROUTES: [{ path: '/c', format: 'json', context: 'system' }] },
      'GUARD_ROUTES[0].context',
      /context "system" is only for the openai-chat format/,
    ],
  ] as const)('%j is refused at startup, naming %s', async (change, setting, message) => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const env = { ...base, ...change } as GuardEnv
    let error: unknown
    try {
      createGuardApp(env)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as ConfigurationError).setting).toBe(setting)
    expect((error as Error).message).toMatch(message)

    // Every request gets a 503, never a crash or a 500; the reason goes to the logs only.
    const response = await callWorker(new Request('https://guard.example.com/ask'), env)
    expect(response.status).toBe(503)
    const body = (await response.json()) as { error: { type: string; message: string } }
    expect(body.error).toEqual({
      type: 'guard_misconfigured',
      message: "The guard is misconfigured. Its operator can find the reason in the Worker's logs.",
    })
    expect(logged).toHaveBeenCalledWith(expect.stringMatching(message))
    logged.mockRestore()
  })

  it('never repeats a secret in its errors', () => {
    expect(() => createGuardApp({ ...base, OPENAI_API_KEY: 12345 as unknown as string })).toThrow(
      /^RAG Guard configuration: OPENAI_API_KEY must be a string/,
    )
    expect(() =>
      createGuardApp({ ...base, JUDGE_HEADERS: `{"cf-aig-authorization": ${SECRET}` }),
    ).toThrow(/JUDGE_HEADERS must be a JSON object/)
    for (const env of [
      { ...base, JUDGE_HEADERS: `{"x": "${SECRET}"` },
      { ...base, OPENAI_API_KEY: [SECRET] as unknown as string },
    ]) {
      try {
        createGuardApp(env)
      } catch (error) {
        expect(String(error)).not.toContain(SECRET)
        continue
      }
      throw new Error('expected a configuration error')
    }
  })

  it('takes numbers as strings (wrangler --var) and routes as a JSON string', async () => {
    const { send } = await setup({ json: { answer: 'a' } }, judgeSays(0.5), {
      BLOCK_BELOW: '0.6',
      FLAG_BELOW: '0.9',
      GUARD_ROUTES: JSON.stringify([{ path: '/ask', format: 'json', answer: '/answer' }]),
    })
    const response = await send('/ask', postJson({ question: 'q?', context: 'c' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
  })

  it('per-route thresholds and fallback message override the global ones', async () => {
    const { send } = await setup({ json: { answer: 'a' } }, judgeSays(0.5), {
      GUARD_ROUTES: [
        {
          path: '/strict',
          format: 'json',
          answer: '/answer',
          blockBelow: 0.6,
          flagBelow: 0.9,
          fallbackMessage: 'Strict: no.',
        },
        { path: '/ask', format: 'json', answer: '/answer' },
      ],
    })
    const strict = await send('/strict', postJson({ question: 'q?', context: 'c' }))
    expect(strict.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await strict.json()).toEqual({ answer: 'Strict: no.' })
    const normal = await send('/ask', postJson({ question: 'q?', context: 'c' }))
    expect(normal.headers.get('x-rag-guard-verdict')).toBe('flag')
  })

  it('defaults to shadow mode: reports, never alters', async () => {
    const { send } = await setup({ json: { answer: 'a' } }, judgeSays(0.01), {
      GUARD_MODE: undefined,
    })
    const response = await send('/ask', postJson({ question: 'q?', context: 'c' }))
    expect(response.headers.get('x-rag-guard-mode')).toBe('shadow')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.json()).toEqual({ answer: 'a' })
  })

  it('sends JUDGE_HEADERS with every judge request', async () => {
    const { send, judge } = await setup({ json: { answer: 'a' } }, judgeSays(0.9), {
      JUDGE_HEADERS: JSON.stringify({ 'cf-aig-authorization': 'Bearer gateway-token' }),
    })
    await send('/ask', postJson({ question: 'q?', context: 'c' }))
    expect((await judge.requests())[0]!.headers['cf-aig-authorization']).toBe(
      'Bearer gateway-token',
    )
  })
})
