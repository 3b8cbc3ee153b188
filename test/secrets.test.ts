/**
 * Secrets and routing. Runs the Worker through the situations of the other suites — pass, flag,
 * block in every format, streams, judge and upstream failures, a judge error that echoes the
 * key, bad input, oversize bodies, bad configuration, logging with content — and checks
 * everything it produced: no header, body or log line holds the API key or the gateway token, and
 * no request, however crafted, makes it fetch anything but its upstream and its judge.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { GuardEnv } from '../src/config'
import { chunk, judgeSays, postJson, setupGuard, sse, type GuardSetup } from './guard-helpers'
import type { StubStep, UpstreamReply } from './stub/openai-stub'

const KEY = 'sk-live-4c1f9e27b0d34a8e9f5512aa7d3e8c61'
const GATEWAY_TOKEN = 'cfaig-7f3e9a1b2c4d5e6f'
const SECRETS = [KEY, KEY.slice(8, 28), GATEWAY_TOKEN]

let logged: string[] = []
let fetched: string[] = []
beforeEach(() => {
  logged = []
  fetched = []
  for (const level of ['log', 'error', 'warn', 'info', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logged.push(
        args
          .map((arg) =>
            arg instanceof Error
              ? `${arg.name}: ${arg.message}\n${arg.stack}`
              : typeof arg === 'string'
                ? arg
                : JSON.stringify(arg),
          )
          .join(' '),
      )
    })
  }
  const original = globalThis.fetch
  vi.spyOn(globalThis, 'fetch').mockImplementation(
    (input: RequestInfo | URL, init?: RequestInit) => {
      fetched.push(input instanceof Request ? input.url : String(input))
      return original(input, init)
    },
  )
})
afterEach(() => {
  vi.restoreAllMocks()
})

/** Everything a response shows the client: status line, every header, the whole body. */
async function shown(response: Response): Promise<string> {
  return `${response.status} ${[...response.headers].map(([name, value]) => `${name}: ${value}`).join('\n')}\n${await response.text().catch((error: unknown) => String(error))}`
}

const env: Partial<GuardEnv> = {
  OPENAI_API_KEY: KEY,
  JUDGE_HEADERS: JSON.stringify({ 'cf-aig-authorization': `Bearer ${GATEWAY_TOKEN}` }),
  LOG_DECISIONS: true,
  LOG_CONTENT: true,
}
const chat = (stream = false) =>
  postJson({
    model: 'm',
    stream,
    messages: [
      { role: 'system', content: 'docs' },
      { role: 'user', content: 'q?' },
    ],
  })
const chatStream = sse({ data: chunk({ content: 'a' }) }, { data: '[DONE]' })

describe('secrets never leave the Worker except toward the judge', () => {
  const scenarios: Array<
    [string, UpstreamReply, StubStep, string, RequestInit, Partial<GuardEnv>?]
  > = [
    [
      'pass, json',
      { json: { answer: 'a' } },
      judgeSays(0.9),
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
    ],
    [
      'block, json',
      { json: { answer: 'a' } },
      judgeSays(0.01),
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
    ],
    [
      'block, openai-chat',
      { json: { id: 'c', object: 'chat.completion', model: 'm', choices: [] } },
      judgeSays(0.01),
      '/v1/chat/completions',
      chat(),
    ],
    [
      'block, langserve',
      { json: { output: { answer: 'a', context: [{ page_content: 'd' }] }, metadata: {} } },
      judgeSays(0.01),
      '/rag/invoke',
      postJson({ input: 'q?' }),
    ],
    [
      'stream held and blocked',
      { headers: { 'content-type': 'text/event-stream' }, chunks: chatStream },
      judgeSays(0.01),
      '/v1/chat/completions',
      chat(true),
    ],
    [
      'stream annotated',
      { headers: { 'content-type': 'text/event-stream' }, chunks: chatStream },
      judgeSays(0.4),
      '/annotated/chat/completions',
      chat(true),
    ],
    [
      'stream in shadow mode',
      { headers: { 'content-type': 'text/event-stream' }, chunks: chatStream },
      judgeSays(0.01),
      '/v1/chat/completions',
      chat(true),
      { GUARD_MODE: 'shadow' },
    ],
    [
      'judge 401 echoing the key',
      { json: { answer: 'a' } },
      {
        status: 401,
        json: {
          error: {
            message: `Incorrect API key provided: ${KEY}. Bearer ${GATEWAY_TOKEN}`,
            type: 'invalid_request_error',
            code: 'invalid_api_key',
          },
        },
      },
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
      { ON_ERROR: 'block' },
    ],
    [
      'judge 500 with the key in its body',
      { json: { answer: 'a' } },
      { status: 500, rawBody: `internal error for ${KEY}`, contentType: 'text/plain' },
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
    ],
    [
      'judge hangs',
      { json: { answer: 'a' } },
      { hang: true },
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
      { JUDGE_TIMEOUT_MS: '200' },
    ],
    [
      'judge resets',
      { json: { answer: 'a' } },
      { reset: true },
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
    ],
    [
      'upstream broken',
      { json: { answer: 'a' }, truncateAfter: 5 },
      judgeSays(0.9),
      '/ask-late',
      postJson({ question: 'q?' }),
    ],
    [
      'upstream down',
      {},
      judgeSays(0.9),
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
      { UPSTREAM_URL: 'http://127.0.0.1:9' },
    ],
    [
      'bad request body',
      { json: { answer: 'a' } },
      judgeSays(0.9),
      '/ask',
      { method: 'POST', body: '{nope' },
    ],
    [
      'oversize request',
      { json: { answer: 'a' } },
      judgeSays(0.9),
      '/ask',
      postJson({ question: 'q?', context: 'x'.repeat(5000) }),
      { MAX_BODY_BYTES: '1024' },
    ],
    ['unguarded path', { json: { ok: true } }, judgeSays(0.9), '/health', { method: 'GET' }],
    [
      'a bad setting',
      { json: {} },
      judgeSays(0.9),
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
      { BLOCK_BELOW: 'high' },
    ],
    [
      'a key of the wrong type',
      { json: {} },
      judgeSays(0.9),
      '/ask',
      postJson({ question: 'q?', context: 'c' }),
      { OPENAI_API_KEY: [KEY] as unknown as string },
    ],
  ]

  it.each(scenarios)('%s', async (_, reply, judgeStep, path, init, extra = {}) => {
    const { send, settle, judge } = await setupGuard(reply, judgeStep, { ...env, ...extra })
    const seen = await shown(await send(path, init))
    await settle()
    for (const secret of SECRETS) {
      expect(seen).not.toContain(secret)
      for (const line of logged) expect(line).not.toContain(secret)
    }
    // The judge is the one place the key goes, as a bearer token, with the gateway header.
    const judgeRequests = await judge.requests()
    for (const request of judgeRequests) {
      expect(request.headers.authorization).toBe(`Bearer ${KEY}`)
      expect(request.headers['cf-aig-authorization']).toBe(`Bearer ${GATEWAY_TOKEN}`)
    }
  })

  it('the key reaches the judge and nothing else: not the upstream, in no header', async () => {
    const { send, upstream, judge } = await setupGuard(
      { json: { answer: 'a' } },
      judgeSays(0.9),
      env,
    )
    await send('/ask', postJson({ question: 'q?', context: 'c' }))
    expect((await judge.requests())[0]!.headers.authorization).toBe(`Bearer ${KEY}`)
    expect(JSON.stringify(await upstream.requests())).not.toContain(KEY)
  })
})

describe('the Worker fetches only its upstream and its judge', () => {
  const hostile: Array<[string, string, RequestInit]> = [
    [
      'another host in the URL',
      'https://evil.example/ask',
      postJson({ question: 'q?', context: 'c' }),
    ],
    ['a metadata address', 'http://169.254.169.254/latest/meta-data/', { method: 'GET' }],
    [
      'a Host header',
      'https://guard.example.com/ask',
      postJson(
        { question: 'q?', context: 'c' },
        { headers: { host: 'evil.example', 'content-type': 'application/json' } },
      ),
    ],
    [
      'forwarding headers',
      'https://guard.example.com/ask',
      postJson(
        { question: 'q?', context: 'c' },
        {
          headers: {
            'x-forwarded-host': 'evil.example',
            forwarded: 'host=evil.example',
            'content-type': 'application/json',
          },
        },
      ),
    ],
    ['a protocol-relative path', 'https://guard.example.com//evil.example/x', { method: 'GET' }],
    ['an encoded path', 'https://guard.example.com/%2F%2Fevil.example%2Fx', { method: 'GET' }],
    ['a backslash path', 'https://guard.example.com/\\\\evil.example/x', { method: 'GET' }],
    ['dot segments', 'https://guard.example.com/a/../../../../etc/passwd', { method: 'GET' }],
    ['userinfo in the URL', 'https://guard.example.com@evil.example/ask', { method: 'GET' }],
    [
      'URLs in the question and the documents',
      'https://guard.example.com/ask',
      postJson({
        question: 'Fetch http://evil.example/x and answer',
        context: ['See https://evil.example/doc', { pageContent: 'http://169.254.169.254/' }],
      }),
    ],
    [
      'a URL as the upstream answer’s source',
      'https://guard.example.com/ask-late',
      postJson({ question: 'q?' }),
    ],
  ]

  it.each(hostile)('%s', async (_, url, init) => {
    const setup: GuardSetup = await setupGuard(
      { json: { answer: 'a', sources: [{ pageContent: 'https://evil.example/more' }] } },
      judgeSays(0.9),
      // Every path forwarded, so that where the proxy sends each one is what is checked.
      { ...env, PASS_THROUGH: [{ path: '/*', methods: ['GET', 'POST'] }] },
    )
    fetched = []
    const { default: worker } = await import('../src/worker')
    const { createExecutionContext } = await import('cloudflare:test')
    await (
      await worker.fetch(
        new Request(url, init) as Parameters<typeof worker.fetch>[0],
        setup.env,
        createExecutionContext(),
      )
    ).text()
    expect(fetched.length).toBeGreaterThan(0)
    // The spy sees the judge's calls too, so the check below covers them.
    if (new URL(url).pathname.startsWith('/ask') && init.method === 'POST')
      expect(fetched).toContain(`${setup.judge.baseURL}/chat/completions`)
    for (const target of fetched) {
      const allowed =
        target.startsWith(`${setup.upstream.root}/`) ||
        target === `${setup.judge.baseURL}/chat/completions`
      expect(allowed, `the Worker fetched ${target}`).toBe(true)
    }
  })
})
