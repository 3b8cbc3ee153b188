/**
 * Bad input: what clients and upstreams may send. The guard answers with the documented verdict
 * and reason, forwards the client's bytes unchanged, and never throws: checked on chosen cases
 * through the Worker, and on generated ones (fast-check) against the extractors and the scorer.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  createFormat,
  parseJsonPointer,
  readContext,
  readJsonPointer,
  readQuestion,
  replaceAtJsonPointer,
  scoreLogprobs,
  SSEParser,
} from '../src'
import { judgeSays, postJson, setupGuard } from './guard-helpers'

const answer = { answer: 'a', sources: [{ pageContent: 'doc' }] }

describe('bad requests through the Worker: refused with the reason by default; with ON_UNJUDGEABLE = "flag", the bytes forwarded as sent', () => {
  const cases: Array<[string, string, BodyInit, string, Record<string, string>?]> = [
    ['malformed JSON', '/ask', '{"question": "q?", "context": [', 'invalid-request-body'],
    ['an empty body', '/ask', '', 'invalid-request-body'],
    ['a JSON content type on plain text', '/ask', 'question=q&context=c', 'invalid-request-body'],
    [
      'a number as the question',
      '/ask',
      JSON.stringify({ question: 42, context: 'c' }),
      'invalid-question',
    ],
    [
      'an object as the question',
      '/ask',
      JSON.stringify({ question: { text: 'q?' }, context: 'c' }),
      'invalid-question',
    ],
    [
      'null as the question',
      '/ask',
      JSON.stringify({ question: null, context: 'c' }),
      'no-question',
    ],
    [
      'a number as the context',
      '/ask',
      JSON.stringify({ question: 'q?', context: 7 }),
      'invalid-context',
    ],
    [
      'nested arrays as the context',
      '/ask',
      JSON.stringify({ question: 'q?', context: [['a']] }),
      'invalid-context',
    ],
    [
      'a document without text',
      '/ask',
      JSON.stringify({ question: 'q?', context: [{ metadata: {} }] }),
      'invalid-context',
    ],
    ['JSON that is an array', '/ask', JSON.stringify(['q?', 'c']), 'no-question'],
    [
      'chat messages that are not a list',
      '/v1/chat/completions',
      JSON.stringify({ model: 'm', messages: 'hello' }),
      'no-question',
    ],
    [
      'a user message of images only',
      '/v1/chat/completions',
      JSON.stringify({
        model: 'm',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
      }),
      'invalid-question',
    ],
    [
      'a LangServe input that is a number',
      '/rag/invoke',
      JSON.stringify({ input: 12 }),
      'invalid-question',
    ],
    ['deeply nested JSON', '/ask', `${'['.repeat(20000)}${']'.repeat(20000)}`, 'no-question'],
  ]

  const upstreamBodyFor = (path: string) =>
    path === '/v1/chat/completions'
      ? {
          id: 'c',
          object: 'chat.completion',
          created: 1,
          model: 'm',
          choices: [
            { index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' },
          ],
        }
      : path === '/rag/invoke'
        ? { output: { answer: 'x', context: [] }, metadata: {} }
        : answer

  it.each(cases)(
    '%s → %s: refused with 400, never forwarded, never judged',
    async (_, path, body, reason) => {
      const { send, upstream, judge } = await setupGuard(
        { json: upstreamBodyFor(path) },
        judgeSays(0.9),
      )
      const response = await send(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      expect(response.status).toBe(400)
      expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
      expect(
        ((await response.json()) as { error: { type: string; reason: string } }).error,
      ).toMatchObject({
        type: 'unjudgeable_request',
        reason,
      })
      expect(await upstream.requests()).toHaveLength(0)
      expect(await judge.requests()).toHaveLength(0)
    },
  )

  it.each(cases)(
    '%s → %s: with ON_UNJUDGEABLE = "flag", forwarded as sent, flagged',
    async (_, path, body, reason) => {
      const upstreamBody = upstreamBodyFor(path)
      const { send, upstream, judge } = await setupGuard({ json: upstreamBody }, judgeSays(0.9), {
        ON_UNJUDGEABLE: 'flag',
      })
      const response = await send(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      expect(response.status).toBe(200)
      expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
      expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
      expect(await response.json()).toEqual(upstreamBody)
      expect((await upstream.requests())[0]!.rawBody).toBe(typeof body === 'string' ? body : '')
      expect(await judge.requests()).toHaveLength(0)
    },
  )

  it('a body that is not valid UTF-8 reaches the upstream byte for byte (ON_UNJUDGEABLE = "flag")', async () => {
    const { send, upstream } = await setupGuard({ json: answer }, judgeSays(0.9), {
      ON_UNJUDGEABLE: 'flag',
    })
    const bytes = new Uint8Array([
      0x7b, 0x22, 0x71, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d,
    ]) // {"q":"\xff\xfe\xc3(")}
    const response = await send('/ask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bytes,
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-question')
    const received = (await upstream.requests())[0]!.rawBody
    // The stub decodes as UTF-8; the same decoding of the bytes sent must match.
    expect(received).toBe(new TextDecoder().decode(bytes))
    expect(received).toContain('\uFFFD')
  })

  it('a JSON body sent as text/plain is judged all the same (the content type is not trusted either way)', async () => {
    const { send, judge } = await setupGuard({ json: answer }, judgeSays(0.9))
    const response = await send('/ask', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ question: 'q?', context: 'c' }),
    })
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await judge.requests()).toHaveLength(1)
  })

  it('a long question within the judge\u2019s input limit is judged whole, not cut', async () => {
    const question = `${'Why '.repeat(40_000)}?`
    const { send, judge } = await setupGuard({ json: answer }, judgeSays(0.9))
    const response = await send('/ask', postJson({ question, context: 'c' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toContain(question)
  })

  it('a question longer than JUDGE_MAX_INPUT_CHARS is refused (413, judge-input-too-large), never sent', async () => {
    const question = `${'Why '.repeat(60_000)}?`
    const { send, judge, upstream } = await setupGuard({ json: answer }, judgeSays(0.9))
    const response = await send('/ask', postJson({ question, context: 'c' }))
    expect(response.status).toBe(413)
    expect(response.headers.get('x-rag-guard-reason')).toBe('judge-input-too-large')
    expect(await judge.requests()).toHaveLength(0)
    expect(await upstream.requests()).toHaveLength(0)
  })
})

describe('properties: no input makes the pure parts throw anything but their documented errors', () => {
  const formats = [
    createFormat('json'),
    createFormat('json', {
      question: '/a/0/b',
      context: { in: 'response', pointer: '/x/y' },
      answer: '/z',
    }),
    createFormat('openai-chat'),
    createFormat('openai-chat', {
      context: { in: 'response', pointer: '/choices/0/message/context/citations' },
    }),
    createFormat('langserve'),
    createFormat('langserve', {
      question: '/input/q',
      context: '/output/docs',
      answer: '/output/text',
    }),
  ]

  it('the three formats read, shape blocks and watch streams from any JSON without throwing', () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.jsonValue(),
        fc.string(),
        (requestBody, responseBody, text) => {
          for (const format of formats) {
            const reading = format.readRequest(requestBody)
            expect(typeof reading.question.ok).toBe('boolean')
            expect(typeof format.readResponse(responseBody).ok).toBe('boolean')
            format.isStreaming(requestBody, `/${text}`)
            const block = format.blockBody(responseBody, requestBody, 'fallback')
            if (block !== undefined) expect(() => JSON.stringify(block)).not.toThrow()
            format.stream?.contextFromEvent({ event: text, data: JSON.stringify(responseBody) })
            format.stream?.contextFromEvent({ data: text })
            expect(
              typeof format.stream?.blockStream(
                [{ data: JSON.stringify(responseBody) }, { event: 'data', data: text }],
                requestBody,
                'fallback',
              ),
            ).not.toBe('number')
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('context and question readers take anything', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const context = readContext(value, '/c')
        if (context.ok)
          expect(
            context.documents.every(
              (document) => typeof document === 'string' && document.trim() !== '',
            ),
          ).toBe(true)
        const question = readQuestion(value, '/q')
        if (question.ok) expect(typeof question.question).toBe('string')
      }),
      { numRuns: 500 },
    )
  })

  it('JSON Pointers: a bad pointer is a ConfigurationError, a good one reads and replaces anything', () => {
    fc.assert(
      fc.property(fc.string(), fc.jsonValue(), (source, document) => {
        let pointer
        try {
          pointer = parseJsonPointer(source, 'p')
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigurationError)
          return
        }
        const found = readJsonPointer(document, pointer)
        const replaced = replaceAtJsonPointer(document, pointer, 'x')
        if (found === undefined) expect(replaced).toBeUndefined()
        else expect(readJsonPointer(replaced, pointer)).toBe('x')
      }),
      { numRuns: 500 },
    )
  })

  it('scoring takes anything, and a score is always a number in [0, 1]', () => {
    const token = fc.oneof(
      fc.constantFrom('True', ' True', 'true', 'ĠTrue', '▁False', 'False', 'FALSE', 'Maybe', ''),
      fc.string(),
    )
    const logprob = fc.oneof(
      fc.double(),
      fc.constantFrom(-9999, 0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
      fc.anything(),
    )
    const entry = fc.record(
      {
        token,
        logprob,
        top_logprobs: fc.oneof(
          fc.constant(null),
          fc.array(fc.record({ token, logprob }), { maxLength: 25 }),
          fc.anything(),
        ),
      },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record(
            {
              content: fc.oneof(fc.array(entry, { maxLength: 3 }), fc.anything()),
              refusal: fc.anything(),
            },
            { requiredKeys: [] },
          ),
        ),
        (logprobs) => {
          const result = scoreLogprobs(logprobs)
          if (result.ok) {
            for (const value of [result.score, result.pTrue, result.pFalse]) {
              expect(Number.isFinite(value)).toBe(true)
              expect(value).toBeGreaterThanOrEqual(0)
              expect(value).toBeLessThanOrEqual(1 + 1e-9)
            }
          } else
            expect([
              'no-logprobs',
              'no-content-tokens',
              'unexpected-token',
              'judge-refusal',
            ]).toContain(result.reason)
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('the SSE parser takes any bytes, in any pieces, and finds the same events however they are cut', () => {
    const stream = fc.array(
      fc.oneof(
        fc.constantFrom(
          'data: ',
          'event: x\n',
          '\n',
          '\r\n',
          '\r',
          ': c\n',
          'data:{"a":1}\n\n',
          'é',
          '\uFFFD',
        ),
        fc.string(),
      ),
      { maxLength: 40 },
    )
    fc.assert(
      fc.property(
        stream,
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.uint8Array({ maxLength: 64 }),
        (parts, cuts, noise) => {
          const bytes = new Uint8Array([...new TextEncoder().encode(parts.join('')), ...noise])
          const whole = new SSEParser()
          const expected = [...whole.push(bytes), ...whole.end()]
          const pieces = new SSEParser()
          const positions = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort(
            (a, b) => a - b,
          )
          const events = []
          let start = 0
          for (const position of [...positions, bytes.length]) {
            events.push(...pieces.push(bytes.subarray(start, position)))
            start = position
          }
          events.push(...pieces.end())
          expect(events).toEqual(expected)
        },
      ),
      { numRuns: 500 },
    )
  })
})
