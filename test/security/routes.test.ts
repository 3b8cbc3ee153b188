/**
 * Issue 12, finding 2: routes matched around the guard. Every spelling of a guarded path that
 * the upstream may treat as that path (case, slashes, dot segments, percent-encoding, `;params`,
 * backslashes) is judged; LangServe's other endpoints under a runnable (`/batch`,
 * `/stream_log`, `/stream_events`, `/c/<config-hash>/…`) are judged or refused. The judge here
 * always blocks, so an answer that reaches the client unjudged shows as the upstream's marker.
 */
import fc from 'fast-check'
import { parse } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import type { GuardEnv } from '../../src/config'
import shippedConfig from '../../wrangler.toml?raw'
import { judgeSays } from '../guard-helpers'
import {
  calls,
  expectRefused,
  FALLBACK,
  LANGSERVE_EVENTS,
  LANGSERVE_OUTPUT,
  post,
  secureGuard,
  streamed,
  UPSTREAM_ANSWER,
} from './helpers'

const question = {
  question: 'Which company manufactures the bikes?',
  context: ['The bikes are blue.'],
}
const blocks = judgeSays(0.01)

describe('finding 2: every spelling of a guarded path is judged', () => {
  const spellings = [
    '/ASK',
    '/Ask',
    '/ask/',
    '/ask/.',
    '/x/../ask',
    '/%61sk',
    '//ask',
    '/ask;x=1',
    // Beyond the list: what the same normalisation also covers.
    '/%41SK',
    '/%2561sk',
    '/x/..%2Fask',
    '/x/%252e%252e/ask',
    '/%2Fask',
    '/ask%2F',
    '/x%5C..%5Cask',
    '///ask//',
    '/ASK;jsessionid=1/',
  ]

  it.each(spellings)('%s is judged: the judge is asked, and its block holds', async (path) => {
    const { send, judge } = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, blocks)
    const response = await send(path, post(question))
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.json()).toEqual({ answer: FALLBACK })
    expect(await calls(judge)).toBe(1)
  })

  it('the upstream still gets the request’s own path (/ASK;x=1 is judged, and forwarded as written)', async () => {
    const { send, upstream } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
    )
    const response = await send('/ASK;x=1', post(question))
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect((await upstream.requests()).map(({ path }) => path)).toEqual(['/ASK;x=1'])
  })

  it('property: any spelling built from case, extra slashes, dot segments, percent-encoding and ;params is judged', async () => {
    const { send, judge } = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, blocks, {
      CACHE_TTL_SECONDS: '0',
    })
    const letter = (char: string) =>
      fc
        .tuple(
          fc.boolean(),
          fc.constantFrom<'plain' | 'once' | 'twice'>('plain', 'once', 'twice'),
          fc.boolean(),
        )
        .map(([upper, encoding, upperHex]) => {
          const cased = upper ? char.toUpperCase() : char
          if (encoding === 'plain') return cased
          const hex = cased.charCodeAt(0).toString(16)
          const code = upperHex ? hex.toUpperCase() : hex
          return encoding === 'once' ? `%${code}` : `%25${code}`
        })
    const lead = fc.constantFrom(
      '/',
      '//',
      '///',
      '/./',
      '/x/../',
      '/x/y/../../',
      '/%2e/',
      '/x/%2e%2e/',
      '/x/%252e%252e/',
      '/x%5c..%5c',
      '/%2f',
    )
    const tail = fc.constantFrom('', '/', '/.', '/./', '//', ';x=1', ';', '%2f', '/%2e', ';a=b/')
    let sent = 0
    await fc.assert(
      fc.asyncProperty(
        lead,
        letter('a'),
        letter('s'),
        letter('k'),
        tail,
        async (start, a, s, k, end) => {
          const path = `${start}${a}${s}${k}${end}`
          const response = await send(path, post(question))
          sent += 1
          expect(response.headers.get('x-rag-guard-verdict'), path).toBe('block')
          expect(await response.text(), path).not.toContain(UPSTREAM_ANSWER)
        },
      ),
      { numRuns: 60 },
    )
    expect(await calls(judge)).toBe(sent)
  })
})

/** Routes with a LangServe runnable at /rag, as the design writes them. */
const RAG_ROUTES = [
  { path: '/ask', format: 'json', answer: '/answer' },
  { path: '/rag', format: 'langserve' },
]

describe('finding 2: a langserve route covers its runnable’s endpoints (path = "/rag")', () => {
  it('/rag/invoke is judged', async () => {
    const { send, judge } = await secureGuard({ json: LANGSERVE_OUTPUT }, blocks, {
      GUARD_ROUTES: RAG_ROUTES,
    })
    const response = await send(
      '/rag/invoke',
      post({ input: 'Which company manufactures the bikes?' }),
    )
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const body = (await response.json()) as { output: { answer: string } }
    expect(body.output.answer).toBe(FALLBACK)
    expect(await calls(judge)).toBe(1)
  })

  it('/rag/batch judges each input: as many judge requests as inputs, blocked items’ answers replaced', async () => {
    const inputs = [
      'Q-PASS What does a day pass cost?',
      'Q-BLOCK Which company manufactures the bikes?',
      'Q-PASS How long is a ride?',
    ]
    const output = inputs.map((input, index) => ({
      input,
      context: [{ page_content: `document ${index}`, metadata: {}, type: 'Document' }],
      answer: `${UPSTREAM_ANSWER} ${index}`,
    }))
    const { send, judge } = await secureGuard(
      { json: { output, metadata: { run_ids: ['r0', 'r1', 'r2'] } } },
      { rules: [{ contains: 'Q-BLOCK', step: judgeSays(0.01) }], otherwise: judgeSays(0.95) },
      { GUARD_ROUTES: RAG_ROUTES },
    )
    const response = await send('/rag/batch', post({ inputs, config: {}, kwargs: {} }))
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).not.toBeNull()
    const body = (await response.json()) as { output: Array<{ answer: string; input: string }> }
    expect(body.output.map((item) => item.answer)).toEqual([
      `${UPSTREAM_ANSWER} 0`,
      FALLBACK,
      `${UPSTREAM_ANSWER} 2`,
    ])
    expect(body.output.map((item) => item.input)).toEqual(inputs)
    expect(await calls(judge)).toBe(inputs.length)
  })

  it('/rag/stream is judged (hold): a blocked stream carries the fallback', async () => {
    const { send, judge } = await secureGuard(streamed(LANGSERVE_EVENTS), blocks, {
      GUARD_ROUTES: RAG_ROUTES,
    })
    const response = await send(
      '/rag/stream',
      post({ input: 'Which company manufactures the bikes?' }),
    )
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const text = await response.text()
    expect(text).not.toContain(UPSTREAM_ANSWER)
    expect(text).toContain(FALLBACK)
    expect(await calls(judge)).toBe(1)
  })

  it.each(['/rag/stream_log', '/rag/stream_events'])(
    '%s is refused before the upstream: unsupported-endpoint',
    async (path) => {
      const { send, judge, upstream } = await secureGuard(streamed(LANGSERVE_EVENTS), blocks, {
        GUARD_ROUTES: RAG_ROUTES,
      })
      const response = await send(
        path,
        post({ input: 'Which company manufactures the bikes?' }),
        'operator',
      )
      await expectRefused(response, 400, 'unsupported-endpoint')
      expect(await calls(upstream)).toBe(0)
      expect(await calls(judge)).toBe(0)
    },
  )

  it('/rag/c/<config-hash>/invoke is judged', async () => {
    const { send, judge } = await secureGuard({ json: LANGSERVE_OUTPUT }, blocks, {
      GUARD_ROUTES: RAG_ROUTES,
    })
    const response = await send(
      '/rag/c/N4XyA2VuYWJsZWQ/invoke',
      post({ input: 'Which company manufactures the bikes?' }),
    )
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const body = (await response.json()) as { output: { answer: string } }
    expect(body.output.answer).toBe(FALLBACK)
    expect(await calls(judge)).toBe(1)
  })

  it('/rag/c/<config-hash>/stream is judged (hold): a blocked stream carries the fallback', async () => {
    const { send, judge } = await secureGuard(streamed(LANGSERVE_EVENTS), blocks, {
      GUARD_ROUTES: RAG_ROUTES,
    })
    const response = await send(
      '/rag/c/N4XyA2VuYWJsZWQ/stream',
      post({ input: 'Which company manufactures the bikes?' }),
    )
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.text()).not.toContain(UPSTREAM_ANSWER)
    expect(await calls(judge)).toBe(1)
  })

  it.each(['/RAG/Invoke', '/rag//invoke', '/rag/invoke/', '/rag/%69nvoke', '/rag/x/../invoke'])(
    '%s is judged like /rag/invoke',
    async (path) => {
      const { send, judge } = await secureGuard({ json: LANGSERVE_OUTPUT }, blocks, {
        GUARD_ROUTES: RAG_ROUTES,
      })
      const response = await send(path, post({ input: 'Which company manufactures the bikes?' }))
      expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(await response.text()).not.toContain(UPSTREAM_ANSWER)
      expect(await calls(judge)).toBe(1)
    },
  )
})

describe('finding 2: with the shipped wrangler.toml routes, no LangServe endpoint answers unjudged', () => {
  const shipped = parse(shippedConfig) as { vars?: GuardEnv }
  const endpoints: Array<[string, 'json' | 'stream']> = [
    ['/rag/invoke', 'json'],
    ['/rag/stream', 'stream'],
    ['/rag/batch', 'json'],
    ['/rag/stream_log', 'stream'],
    ['/rag/stream_events', 'stream'],
    ['/rag/c/N4XyA2VuYWJsZWQ/invoke', 'json'],
    ['/rag/c/N4XyA2VuYWJsZWQ/stream', 'stream'],
    ['/rag/c/N4XyA2VuYWJsZWQ/batch', 'json'],
  ]

  it.each(endpoints)(
    '%s is judged or refused, never the upstream’s answer unjudged',
    async (path, kind) => {
      const reply =
        kind === 'stream'
          ? streamed(LANGSERVE_EVENTS)
          : path.endsWith('/batch')
            ? { json: { output: [LANGSERVE_OUTPUT.output], metadata: { run_ids: ['r0'] } } }
            : { json: LANGSERVE_OUTPUT }
      const { send, judge } = await secureGuard(reply, blocks, {
        GUARD_ROUTES: shipped.vars?.GUARD_ROUTES,
      })
      const body = path.endsWith('/batch')
        ? { inputs: ['Which company manufactures the bikes?'] }
        : { input: 'Which company manufactures the bikes?' }
      const response = await send(path, post(body))
      const judged =
        response.headers.get('x-rag-guard-verdict') !== null && (await calls(judge)) > 0
      const refused = response.status >= 400 && response.status < 500
      expect(judged || refused, `status ${response.status}, judged ${judged}`).toBe(true)
      expect(await response.text()).not.toContain(UPSTREAM_ANSWER)
    },
  )
})
