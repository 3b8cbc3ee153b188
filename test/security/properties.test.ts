/**
 * Issue 12, "Done when", as properties (fast-check):
 * - no judge call and no upstream call without a valid caller, whatever the credential says;
 * - no client input yields an unjudged answer in enforce mode with the default settings: on every
 *   route format, for any request body and headers, the response is judged with a score, a
 *   block, or a 4xx refusal. (The judge here is healthy, so a pass or flag without a score can
 *   only come from the client's input; the minimum is "no pass without a score".)
 * The other two checks are properties in routes.test.ts (every spelling of a guarded path is
 * judged) and documents.test.ts (a 4 MB request of a million tiny documents stays bounded).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { judgeSays } from '../guard-helpers'
import type { UpstreamReply } from '../stub/openai-stub'
import {
  CALLER_TOKEN,
  CALLER_TOKEN_2,
  calls,
  CHAT_COMPLETION,
  LANGSERVE_OUTPUT,
  OPERATOR_TOKEN,
  OPERATOR_TOKEN_2,
  post,
  secureGuard,
  UPSTREAM_ANSWER,
} from './helpers'

const VALID = [CALLER_TOKEN, CALLER_TOKEN_2, OPERATOR_TOKEN, OPERATOR_TOKEN_2]

describe('done when: no judge call and no upstream call without a valid caller', () => {
  it('property: any Authorization value that does not carry a valid token gets 401, and nothing is called', async () => {
    const { send, judge, upstream } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
    )
    const printable = fc.stringMatching(/^[\x21-\x7e]{0,48}$/)
    // Near misses: a valid token with one character changed, cut or extended.
    const nearMiss = fc
      .tuple(fc.constantFrom(...VALID), fc.nat(), fc.constantFrom('change', 'cut', 'extend'))
      .map(([token, at, how]) => {
        const index = at % token.length
        if (how === 'cut') return token.slice(0, index)
        if (how === 'extend') return `${token}${token[index]}`
        const other = token[index] === 'a' ? 'b' : 'a'
        return `${token.slice(0, index)}${other}${token.slice(index + 1)}`
      })
    const credential = fc
      .tuple(fc.oneof(printable, nearMiss), fc.constantFrom('Bearer ', 'Basic ', 'Token ', ''))
      .filter(([token]) => !VALID.includes(token))
      .map(([token, scheme]) => `${scheme}${token}`)
    await fc.assert(
      fc.asyncProperty(credential, async (authorization) => {
        const response = await send(
          '/ask',
          post({ question: 'q?', context: ['c'] }, { authorization }),
          'nobody',
        )
        expect(response.status, authorization).toBe(401)
        await response.body?.cancel()
      }),
      { numRuns: 80 },
    )
    expect(await calls(judge)).toBe(0)
    expect(await calls(upstream)).toBe(0)
  })
})

/** Any JSON value, kept small. */
const anyJson = fc.jsonValue({ maxDepth: 3 })
const text = fc.string({ maxLength: 40 })
const documents = fc.oneof(
  text,
  fc.array(text, { maxLength: 4 }),
  fc.array(fc.record({ pageContent: text }), { maxLength: 3 }),
  fc.array(fc.record({ page_content: text, metadata: fc.constant({}) }), { maxLength: 3 }),
  anyJson,
)
const streamFlag = fc.oneof(fc.boolean(), anyJson)
const optional = { requiredKeys: [] as never[] }

const jsonRequest = fc.record(
  { question: fc.oneof(text, anyJson), context: documents, stream: streamFlag },
  optional,
)
const contentPart = fc.oneof(
  fc.record({ type: fc.constant('text'), text }),
  fc.record({
    type: fc.constant('image_url'),
    image_url: fc.record({ url: fc.constant('data:image/png;base64,iVBORw0KGgo=') }),
  }),
  anyJson,
)
const chatRequest = fc.record(
  {
    model: fc.constant('rag-model'),
    stream: streamFlag,
    messages: fc.oneof(
      fc.array(
        fc.record(
          {
            role: fc.constantFrom(
              'system',
              'developer',
              'user',
              'assistant',
              'tool',
              'function',
              'x',
            ),
            content: fc.oneof(text, fc.array(contentPart, { maxLength: 3 }), anyJson),
          },
          { requiredKeys: ['role'] },
        ),
        { maxLength: 5 },
      ),
      anyJson,
    ),
  },
  { requiredKeys: ['model'] },
)
const langServeRequest = fc.record(
  {
    input: fc.oneof(
      text,
      fc.record({ input: fc.oneof(text, anyJson), question: text, query: text }, optional),
      anyJson,
    ),
    config: fc.constant({}),
  },
  optional,
)

/** A body: one of the format's shapes as JSON, any JSON, or any text. */
const body = (shaped: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 6, arbitrary: shaped.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: anyJson.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  )

/** Headers a client may add: encodings and charsets. */
const headers = fc.record(
  {
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=utf-16',
      'text/plain',
      'application/x-www-form-urlencoded',
    ),
    'content-encoding': fc.constantFrom('identity', 'gzip', 'br', 'zstd', 'deflate'),
  },
  { requiredKeys: ['content-type'] },
)

const ROUTE_SHAPES: Array<[string, string, UpstreamReply, fc.Arbitrary<unknown>]> = [
  ['json, context in the request', '/ask', { json: { answer: UPSTREAM_ANSWER } }, jsonRequest],
  [
    'json, context in the response',
    '/ask-late',
    { json: { answer: UPSTREAM_ANSWER, sources: [{ pageContent: 'The bikes are blue.' }] } },
    jsonRequest,
  ],
  ['openai-chat', '/v1/chat/completions', { json: CHAT_COMPLETION }, chatRequest],
  ['langserve /invoke', '/rag/invoke', { json: LANGSERVE_OUTPUT }, langServeRequest],
]

describe('done when: no client input yields an unjudged answer (enforce mode, default settings)', () => {
  it.each(ROUTE_SHAPES)(
    'property, %s: every response is judged with a score, blocked, or refused with a 4xx',
    async (_, path, reply, shaped) => {
      const { send } = await secureGuard(reply, judgeSays(0.95))
      await fc.assert(
        fc.asyncProperty(body(shaped), headers, async (requestBody, requestHeaders) => {
          const response = await send(
            path,
            { method: 'POST', headers: requestHeaders, body: requestBody },
            'operator',
          )
          const verdict = response.headers.get('x-rag-guard-verdict')
          const score = response.headers.get('x-rag-guard-score')
          const reason = response.headers.get('x-rag-guard-reason')
          const shown = `${response.status} verdict=${verdict} score=${score} reason=${reason}`
          const answered = await response.text()
          expect(response.status, shown).toBeLessThan(500)
          if (response.status >= 400) return
          expect(verdict, shown).not.toBeNull()
          if (verdict !== 'block') expect(score, shown).not.toBeNull()
          if (answered.includes(UPSTREAM_ANSWER)) {
            expect(verdict, shown).not.toBe('block')
            expect(score, shown).not.toBeNull()
          }
        }),
        { numRuns: 40 },
      )
    },
  )
})
