/**
 * Issue 12, finding 3: the client chose an unjudged answer. With the default settings in enforce
 * mode (ON_ERROR=flag, ON_UNJUDGEABLE=block), every request shape that made the guard pass the
 * upstream's answer on without a score is now judged, refused before the upstream (4xx naming
 * the reason), or answered with the fallback. Requests are sent as an operator, who sees the
 * score and reason headers.
 */
import { describe, expect, it } from 'vitest'
import { judgeSays } from '../guard-helpers'
import {
  calls,
  CHAT_COMPLETION,
  CHAT_EVENTS,
  compress,
  expectBlockedAnswer,
  expectRefused,
  FALLBACK,
  judgePrompt,
  LANGSERVE_EVENTS,
  post,
  secureGuard,
  streamed,
  UPSTREAM_ANSWER,
} from './helpers'

const QUESTION = 'Which company manufactures the bikes?'
const askBody = { question: QUESTION, context: ['The bikes are blue.'] }
const answer = { json: { answer: UPSTREAM_ANSWER } }

/** The judge API's answer to a prompt longer than the model's window (OpenAI's shape). */
const CONTEXT_OVERFLOW = {
  status: 400,
  json: {
    error: {
      message:
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 301234 tokens. Please reduce the length of the messages.",
      type: 'invalid_request_error',
      param: 'messages',
      code: 'context_length_exceeded',
    },
  },
}

describe('finding 3: a stream the format cannot judge, or a stream flag that is not a boolean', () => {
  it('"stream": true on a json route is refused before the upstream (400 streaming-not-supported)', async () => {
    const { send, upstream, judge } = await secureGuard(answer, judgeSays(0.9))
    const response = await send('/ask', post({ ...askBody, stream: true }), 'operator')
    await expectRefused(response, 400, 'streaming-not-supported')
    expect(await calls(upstream)).toBe(0)
    expect(await calls(judge)).toBe(0)
  })

  it.each([
    ['1', 1],
    ['"true"', 'true'],
    ['{}', {}],
  ])(
    '"stream": %s on openai-chat is refused before the upstream (400 invalid-stream-flag)',
    async (_, flag) => {
      const { send, upstream } = await secureGuard(streamed(CHAT_EVENTS), judgeSays(0.9))
      const response = await send(
        '/v1/chat/completions',
        post({
          model: 'rag-model',
          stream: flag,
          messages: [
            { role: 'system', content: 'The bikes are blue.' },
            { role: 'user', content: QUESTION },
          ],
        }),
        'operator',
      )
      await expectRefused(response, 400, 'invalid-stream-flag')
      expect(await calls(upstream)).toBe(0)
    },
  )
})

describe('finding 3: encoded request bodies', () => {
  it.each(['gzip', 'deflate'] as const)(
    'a %s-encoded body is decoded and judged; the upstream gets the original bytes',
    async (encoding) => {
      const { send, upstream, judge } = await secureGuard(answer, judgeSays(0.01))
      const bytes = await compress(JSON.stringify(askBody), encoding)
      const response = await send(
        '/ask',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          body: bytes,
        },
        'operator',
      )
      expect(response.status).toBe(200)
      expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(response.headers.get('x-rag-guard-score')).toBe('0.0100')
      expect(await response.json()).toEqual({ answer: FALLBACK })
      expect(await judgePrompt(judge)).toContain(QUESTION)
      const [forwarded] = await upstream.requests()
      expect(forwarded!.headers['content-encoding']).toBe(encoding)
      expect(forwarded!.rawBody).toBe(new TextDecoder().decode(bytes))
    },
  )

  it('a gzip body that decodes past MAX_BODY_BYTES is refused (413 request-too-large) before the upstream', async () => {
    const { send, upstream, judge } = await secureGuard(answer, judgeSays(0.9))
    const bomb = JSON.stringify({ question: QUESTION, context: ['0'.repeat(6 * 1024 * 1024)] })
    const bytes = await compress(bomb, 'gzip')
    expect(bytes.byteLength).toBeLessThan(64 * 1024)
    const response = await send(
      '/ask',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: bytes,
      },
      'operator',
    )
    await expectRefused(response, 413, 'request-too-large')
    expect(await calls(upstream)).toBe(0)
    expect(await calls(judge)).toBe(0)
  })

  it.each(['br', 'zstd', 'compress', 'x-custom'])(
    'Content-Encoding: %s is refused before the upstream (415 unsupported-encoding)',
    async (encoding) => {
      const { send, upstream, judge } = await secureGuard(answer, judgeSays(0.9))
      const response = await send(
        '/ask',
        post(askBody, { 'content-encoding': encoding }),
        'operator',
      )
      await expectRefused(response, 415, 'unsupported-encoding')
      expect(await calls(upstream)).toBe(0)
      expect(await calls(judge)).toBe(0)
    },
  )

  it('a UTF-16 body (charset=utf-16) is refused before the upstream (415 unsupported-encoding)', async () => {
    const { send, upstream } = await secureGuard(answer, judgeSays(0.9))
    const text = JSON.stringify(askBody)
    const utf16 = new Uint8Array(text.length * 2 + 2)
    utf16.set([0xff, 0xfe]) // byte order mark, little-endian
    for (let index = 0; index < text.length; index++) {
      const code = text.charCodeAt(index)
      utf16[2 + index * 2] = code & 0xff
      utf16[3 + index * 2] = code >> 8
    }
    const response = await send(
      '/ask',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-16' },
        body: utf16,
      },
      'operator',
    )
    await expectRefused(response, 415, 'unsupported-encoding')
    expect(await calls(upstream)).toBe(0)
  })

  it('a charset other than utf-8 or us-ascii (iso-8859-1) is refused (415 unsupported-encoding)', async () => {
    const { send, upstream } = await secureGuard(answer, judgeSays(0.9))
    const response = await send(
      '/ask',
      post(askBody, { 'content-type': 'application/json; charset=iso-8859-1' }),
      'operator',
    )
    await expectRefused(response, 415, 'unsupported-encoding')
    expect(await calls(upstream)).toBe(0)
  })

  it('shadow mode refuses nothing: a br-encoded request is forwarded and answered as the upstream answered', async () => {
    const { send, upstream } = await secureGuard(answer, judgeSays(0.9), { GUARD_MODE: 'shadow' })
    const response = await send('/ask', post(askBody, { 'content-encoding': 'br' }), 'operator')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ answer: UPSTREAM_ANSWER })
    expect(await calls(upstream)).toBe(1)
  })
})

describe('finding 3: sizes the judge cannot take', () => {
  it('a 1.1 MB question on LangServe /stream is refused before the upstream (413 judge-input-too-large)', async () => {
    const { send, upstream, judge } = await secureGuard(
      streamed(LANGSERVE_EVENTS),
      CONTEXT_OVERFLOW,
    )
    const question = `${'Why is the sky blue? '.repeat(55_000)}`
    expect(question.length).toBeGreaterThan(1_100_000)
    const response = await send('/rag/stream', post({ input: question }), 'operator')
    await expectRefused(response, 413, 'judge-input-too-large')
    expect(await calls(upstream)).toBe(0)
    expect(await calls(judge)).toBe(0)
  })

  it('an upstream that echoes a padded request past MAX_BODY_BYTES: response-too-large, the answer replaced', async () => {
    const { send, judge } = await secureGuard(
      {
        echo: `{"answer":"${UPSTREAM_ANSWER}","sources":["The bikes are blue."],"echo":[{{body}},{{body}}]}`,
      },
      judgeSays(0.9),
    )
    const padding = 'p'.repeat(2_200_000)
    const response = await send('/ask-late', post({ question: QUESTION, padding }), 'operator')
    expect(response.headers.get('x-rag-guard-reason')).toBe('response-too-large')
    await expectBlockedAnswer(response)
    expect(await calls(judge)).toBe(0)
  })

  it('a context larger than the judge’s window (context_length_exceeded): judge-context-overflow, blocked', async () => {
    const { send, judge } = await secureGuard(answer, CONTEXT_OVERFLOW)
    const response = await send('/ask', post(askBody), 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-reason')).toBe('judge-context-overflow')
    expect(response.headers.get('x-rag-guard-score')).toBeNull()
    expect(await response.json()).toEqual({ answer: FALLBACK })
    expect(await calls(judge)).toBe(1)
  })
})

describe('finding 3: where openai-chat requests hide documents and questions', () => {
  it('documents sent as a tool message are judged as documents', async () => {
    const { send, judge } = await secureGuard({ json: CHAT_COMPLETION }, judgeSays(0.01))
    const response = await send(
      '/v1/chat/completions',
      post({
        model: 'rag-model',
        messages: [
          { role: 'user', content: QUESTION },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'search', arguments: '{"q":"bikes"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: 'TOOL-DOCUMENT: The bikes are blue.' },
        ],
      }),
      'operator',
    )
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0100')
    const body = (await response.json()) as { choices: Array<{ message: { content: string } }> }
    expect(body.choices[0]!.message.content).toBe(FALLBACK)
    expect(await judgePrompt(judge)).toContain('TOOL-DOCUMENT: The bikes are blue.')
  })

  it('the question as an image content part is refused before the upstream (400 invalid-question)', async () => {
    const { send, upstream, judge } = await secureGuard({ json: CHAT_COMPLETION }, judgeSays(0.9))
    const response = await send(
      '/v1/chat/completions',
      post({
        model: 'rag-model',
        messages: [
          { role: 'system', content: 'The bikes are blue.' },
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            ],
          },
        ],
      }),
      'operator',
    )
    await expectRefused(response, 400, 'invalid-question')
    expect(await calls(upstream)).toBe(0)
    expect(await calls(judge)).toBe(0)
  })
})
