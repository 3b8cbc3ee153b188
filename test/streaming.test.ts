import { createExecutionContext } from 'cloudflare:test'
import OpenAI from 'openai'
import { describe, expect, it, vi } from 'vitest'
import type { GuardEnv } from '../src/config'
import { readAnnotation, SSEParser } from '../src'
import worker from '../src/worker'
import {
  chunk,
  eventually,
  FALLBACK,
  judgeSays,
  leaveAfter,
  postJson,
  setupGuard,
  sse,
} from './guard-helpers'

const chatRequest = {
  model: 'rag-model',
  stream: true,
  messages: [
    { role: 'system', content: 'Documents: Ada Lovelace was an English mathematician.' },
    { role: 'user', content: 'Did Ada sail with Dickens?' },
  ],
}

const UNSUPPORTED = 'she sailed with Dickens in 1843.'
const chatEvents = sse(
  { data: chunk({ role: 'assistant', content: '' }) },
  { data: chunk({ content: 'Yes, ' }) },
  { data: chunk({ content: UNSUPPORTED }) },
  { data: chunk({}, 'stop') },
  { data: '[DONE]' },
)
const streamed = (chunks: string[], chunkDelayMs = 10) => ({
  headers: { 'content-type': 'text/event-stream; charset=utf-8' },
  chunks,
  chunkDelayMs,
})

function parse(text: string) {
  const parser = new SSEParser()
  return [...parser.push(new TextEncoder().encode(text)), ...parser.end()]
}

function openaiClient(env: GuardEnv, baseURL = 'https://guard.example.com/v1') {
  return new OpenAI({
    apiKey: 'client-key',
    baseURL,
    maxRetries: 0,
    fetch: async (url, init) =>
      worker.fetch(
        new Request(url, init) as Parameters<typeof worker.fetch>[0],
        env,
        createExecutionContext(),
      ),
  })
}

describe('hold mode (the default when enforcing): openai-chat', () => {
  it('a passed stream arrives byte-identical to the upstream’s, with the verdict in the headers', async () => {
    const { send } = await setupGuard(streamed(chatEvents), judgeSays(0.95))
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9500')
    expect(await response.text()).toBe(chatEvents.join(''))
  })

  it('a blocked stream never reaches the client: a well-formed fallback stream takes its place', async () => {
    const { send } = await setupGuard(streamed(chatEvents), judgeSays(0.02))
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const text = await response.text()
    expect(text).not.toContain('Dickens')
    const events = parse(text)
    expect(events.map((event) => event.data)).toHaveLength(3)
    expect(JSON.parse(events[0]!.data)).toMatchObject({
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta: { role: 'assistant', content: FALLBACK }, finish_reason: null }],
    })
    expect(JSON.parse(events[1]!.data)).toMatchObject({
      choices: [{ delta: {}, finish_reason: 'stop' }],
    })
    expect(events[2]).toEqual({ event: undefined, data: '[DONE]' })
  })

  it('the official openai client reads a passed and a blocked stream without error', async () => {
    for (const [p, expected] of [
      [0.95, `Yes, ${UNSUPPORTED}`],
      [0.02, FALLBACK],
    ] as const) {
      const { env } = await setupGuard(streamed(chatEvents), judgeSays(p))
      const stream = await openaiClient(env).chat.completions.create(chatRequest as never)
      let content = ''
      let finish: string | null = null
      for await (const part of stream as unknown as AsyncIterable<{
        choices: Array<{ delta: { content?: string }; finish_reason: string | null }>
      }>) {
        content += part.choices[0]?.delta.content ?? ''
        finish = part.choices[0]?.finish_reason ?? finish
      }
      expect(content).toBe(expected)
      expect(finish).toBe('stop')
    }
  })

  it('judges context that arrives in the stream as soon as it is seen, and a block stops the upstream', async () => {
    const withCitations = sse(
      {
        data: chunk({
          role: 'assistant',
          content: '',
          context: { citations: [{ content: 'Ada Lovelace was an English mathematician.' }] },
        }),
      },
      { data: chunk({ content: 'Yes, ' }) },
      { data: chunk({ content: UNSUPPORTED }) },
      { data: '[DONE]' },
    )
    // After the first chunk the upstream takes 3 s per chunk: the verdict must not wait for it.
    const { send, upstream, judge } = await setupGuard(
      streamed(withCitations, 3000),
      judgeSays(0.02),
    )
    const startedAt = Date.now()
    const response = await send(
      '/azure/chat/completions',
      postJson({
        ...chatRequest,
        messages: [{ role: 'user', content: 'Did Ada sail with Dickens?' }],
      }),
    )
    const text = await response.text()
    expect(Date.now() - startedAt).toBeLessThan(2500)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(text).toContain(FALLBACK)
    expect(JSON.parse(parse(text)[0]!.data).id).toBe('chatcmpl-up1')
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toContain('Ada Lovelace was an English mathematician.')
    await eventually(async () => (await upstream.requests())[0]!.abandoned)
  })

  it('past the buffer limit, the ON_UNJUDGEABLE verdict applies with reason stream-buffer-exceeded', async () => {
    const big = sse(
      ...Array.from({ length: 6 }, (_, index) => ({
        data: chunk({ content: `${index}`.repeat(600) }),
      })),
      { data: '[DONE]' },
    )
    for (const [policy, passesBytes] of [
      ['flag', true],
      ['block', false],
    ] as const) {
      const { send } = await setupGuard(streamed(big, 5), judgeSays(0.99, { delayMs: 2000 }), {
        STREAM_BUFFER_BYTES: '1024',
        ON_UNJUDGEABLE: policy,
      })
      const response = await send('/v1/chat/completions', postJson(chatRequest))
      expect(response.headers.get('x-rag-guard-reason')).toBe('stream-buffer-exceeded')
      expect(response.headers.get('x-rag-guard-verdict')).toBe(policy)
      const text = await response.text()
      if (passesBytes) expect(text).toBe(big.join(''))
      else expect(text).toContain(FALLBACK)
    }
  })

  it('an upstream that ignores stream: true and answers JSON is judged as JSON', async () => {
    const completion = {
      id: 'c',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'stop' }],
    }
    const { send } = await setupGuard({ json: completion }, judgeSays(0.02))
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(((await response.json()) as typeof completion).choices[0]!.message.content).toBe(
      FALLBACK,
    )
  })
})

const langServeEvents = sse(
  { event: 'metadata', data: { run_id: 'run-1' } },
  { event: 'data', data: { input: 'Did Ada sail with Dickens?' } },
  {
    event: 'data',
    data: {
      context: [
        {
          page_content: 'Ada Lovelace was an English mathematician.',
          metadata: {},
          type: 'Document',
        },
      ],
    },
  },
  { event: 'data', data: { answer: 'Yes, ' } },
  { event: 'data', data: { answer: UNSUPPORTED } },
  { event: 'end' },
)

describe('hold mode: LangServe /stream', () => {
  it('passes a supported stream byte for byte, judged on the documents it streamed', async () => {
    const { send, judge } = await setupGuard(streamed(langServeEvents), judgeSays(0.9))
    const response = await send(
      '/rag/stream',
      postJson({ input: { input: 'Did Ada sail with Dickens?' } }),
    )
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(langServeEvents.join(''))
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toContain('\nAda Lovelace was an English mathematician.\n')
  })

  it('judges a context event larger than the hold buffer (read whole, up to the body limit)', async () => {
    // 8 documents of about 2,000 characters: a 16 KB context event, with a 4 KB hold buffer.
    const documents = Array.from({ length: 8 }, (_, index) => ({
      page_content: `Document ${index}: ${'Ada Lovelace wrote the first program. '.repeat(52)}`,
      metadata: {},
      type: 'Document',
    }))
    const events = sse(
      { event: 'metadata', data: { run_id: 'run-2' } },
      { event: 'data', data: { input: 'Who wrote the first program?' } },
      { event: 'data', data: { context: documents } },
      { event: 'data', data: { answer: 'Ada Lovelace.' } },
      { event: 'end' },
    )
    expect(events[2]!.length).toBeGreaterThan(3 * 4096)
    const { send, judge } = await setupGuard(
      { headers: { 'content-type': 'text/event-stream' }, chunks: events },
      judgeSays(0.9),
      { STREAM_BUFFER_BYTES: '4096', GUARD_DETAILS: 'everyone' },
    )
    const response = await send('/rag/stream', postJson({ input: 'Who wrote the first program?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9000')
    expect(await response.text()).toBe(events.join(''))
    const prompt = ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> })
      .messages[1]!.content
    expect(prompt).toContain('Document 7: Ada Lovelace')
  })

  it('replaces a blocked stream with the same run, the documents, the fallback answer and end', async () => {
    const { send } = await setupGuard(streamed(langServeEvents), judgeSays(0.05))
    const response = await send('/rag/stream', postJson({ input: 'Did Ada sail with Dickens?' }))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const text = await response.text()
    expect(text).not.toContain('Dickens in 1843')
    const events = parse(text)
    expect(events.map((event) => event.event)).toEqual(['metadata', 'data', 'data', 'data', 'end'])
    expect(JSON.parse(events[0]!.data)).toEqual({ run_id: 'run-1' })
    expect(JSON.parse(events[3]!.data)).toEqual({ answer: FALLBACK })
  })
})

describe('annotate mode', () => {
  it('streams every chunk as is and adds exactly one comment line with the verdict after [DONE]', async () => {
    const { send } = await setupGuard(streamed(chatEvents), judgeSays(0.4))
    const response = await send('/annotated/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBeNull()
    const text = await response.text()
    expect(text.startsWith(chatEvents.join(''))).toBe(true)
    const added = text.slice(chatEvents.join('').length)
    // A comment: no event for any SSE client, the verdict for one that reads the line.
    expect(parse(added)).toEqual([])
    // A line end first: the guard piped the stream's tail natively, unseen (the context was in
    // the request), so it cannot know the stream ended at one; a blank line dispatches nothing.
    expect(added).toMatch(/^\n: rag-guard \{.*\}\n\n$/)
    // The score to the same 4 decimals as the header.
    expect(readAnnotation(text)).toEqual({
      verdict: 'flag',
      score: 0.4,
      reason: null,
      mode: 'enforce',
    })
  })

  it('never blocks: a block verdict is reported, the answer has already gone out', async () => {
    const { send } = await setupGuard(streamed(langServeEvents), judgeSays(0.01))
    const text = await (await send('/annotated/rag/stream', postJson({ input: 'q?' }))).text()
    expect(text.startsWith(langServeEvents.join(''))).toBe(true)
    expect(parse(text.slice(langServeEvents.join('').length))).toEqual([])
    expect(readAnnotation(text)).toMatchObject({ verdict: 'block' })
  })

  it('an upstream stream that does not end at a line end gets one before the comment', async () => {
    const unended = [...chatEvents.slice(0, -1), 'data: [DONE]']
    const { send } = await setupGuard(streamed(unended), judgeSays(0.9))
    const text = await (await send('/annotated/chat/completions', postJson(chatRequest))).text()
    expect(text).toBe(
      `${unended.join('')}\n: rag-guard ${JSON.stringify({ verdict: 'pass', score: 0.9, reason: null, mode: 'enforce' })}\n\n`,
    )
    // The [DONE] line keeps its meaning: a parser sees it as the last event.
    expect(parse(text).at(-1)).toEqual({ event: undefined, data: '[DONE]' })
  })

  it('records applied: false for a block it could only report', async () => {
    const logged: string[] = []
    const spy = vi
      .spyOn(console, 'log')
      .mockImplementation((line: string) => void logged.push(line))
    try {
      const { send, settle } = await setupGuard(streamed(langServeEvents), judgeSays(0.01), {
        LOG_DECISIONS: true,
      })
      await (await send('/annotated/rag/stream', postJson({ input: 'q?' }))).text()
      await settle()
    } finally {
      spy.mockRestore()
    }
    const record = logged
      .map((line) => JSON.parse(line))
      .find((line) => line.message === 'rag-guard decision')
    expect(record).toMatchObject({ verdict: 'block', stream: 'annotate', applied: false })
  })

  it('the official openai client reads an annotated stream without error or extra chunks', async () => {
    const { env } = await setupGuard(streamed(chatEvents), judgeSays(0.4))
    const client = openaiClient(env, 'https://guard.example.com/annotated')
    const parts: unknown[] = []
    for await (const part of (await client.chat.completions.create(
      chatRequest as never,
    )) as unknown as AsyncIterable<unknown>)
      parts.push(part)
    expect(parts).toHaveLength(4)
  })
})

describe('shadow mode on streams', () => {
  it('passes the stream untouched at once, adds nothing, and logs the would-be verdict', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    try {
      const { send, settle } = await setupGuard(streamed(chatEvents), judgeSays(0.02), {
        GUARD_MODE: 'shadow',
        LOG_DECISIONS: true,
      })
      const response = await send('/v1/chat/completions', postJson(chatRequest))
      expect(response.headers.get('x-rag-guard-mode')).toBe('shadow')
      expect(await response.text()).toBe(chatEvents.join(''))
      await settle()
      const records = log.mock.calls.map(
        ([line]) =>
          JSON.parse(String(line)) as {
            message: string
            verdict: string
            stream: string
            applied: boolean
          },
      )
      expect(records).toContainEqual(
        expect.objectContaining({
          message: 'rag-guard decision',
          verdict: 'block',
          stream: 'shadow',
          applied: false,
        }),
      )
    } finally {
      log.mockRestore()
    }
  })
})

describe('a client that goes away', () => {
  it('mid-stream: the upstream and the judge requests are stopped', async () => {
    const slow = sse(
      ...Array.from({ length: 8 }, (_, index) => ({ data: chunk({ content: `part ${index} ` }) })),
      { data: '[DONE]' },
    )
    const { send, upstream, judge } = await setupGuard(
      streamed(slow, 500),
      judgeSays(0.9, { delayMs: 10_000 }),
    )
    const response = await send('/annotated/chat/completions', postJson(chatRequest))
    const reader = response.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('part 0')
    await reader.cancel()
    await eventually(async () => (await upstream.requests())[0]?.abandoned === true)
    await eventually(async () => (await judge.requests())[0]?.abandoned === true)
  })

  it('after the verdict (held, then piped natively): the upstream request is stopped', async () => {
    const slow = sse(
      ...Array.from({ length: 8 }, (_, index) => ({ data: chunk({ content: `part ${index} ` }) })),
      { data: '[DONE]' },
    )
    const { send, upstream } = await setupGuard(streamed(slow, 300), judgeSays(0.9))
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    await leaveAfter(response, 'part 2')
    await eventually(async () => (await upstream.requests())[0]?.abandoned === true)
  })

  it('before the answer (held): the upstream and the judge requests are stopped', async () => {
    const slow = sse(
      ...Array.from({ length: 8 }, (_, index) => ({ data: chunk({ content: `part ${index} ` }) })),
      { data: '[DONE]' },
    )
    const { send, upstream, judge } = await setupGuard(
      streamed(slow, 1000),
      judgeSays(0.9, { delayMs: 10_000 }),
    )
    const client = new AbortController()
    const pending = send('/v1/chat/completions', postJson(chatRequest, { signal: client.signal }))
      // Whatever the client was doing ends with the abort; only its effect upstream matters here.
      .then((response) => response.text())
      .catch((error: unknown) => error)
    await eventually(
      async () => (await judge.requests()).length === 1 && (await upstream.requests()).length === 1,
    )
    client.abort()
    await eventually(async () => (await upstream.requests())[0]!.abandoned)
    await eventually(async () => (await judge.requests())[0]!.abandoned)
    await pending
  })
})
