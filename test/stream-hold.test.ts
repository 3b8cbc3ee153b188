/**
 * Hold mode at the edges, with long streams (hundreds of events, so that they are read in blocks
 * while the verdict is pending): whatever happens, every byte the upstream sent reaches the
 * client when the verdict lets it through, nothing waits for a read that can no longer end, and
 * a stream the guard no longer needs is stopped upstream.
 */
import { describe, expect, it } from 'vitest'
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
    { role: 'system', content: 'Documents: Harbor stations close during storm warnings.' },
    { role: 'user', content: 'When do harbor stations close?' },
  ],
}

/** `count` content events, each its own chunk, then [DONE]. */
const events = (count: number) =>
  sse(
    { data: chunk({ role: 'assistant', content: '' }) },
    ...Array.from({ length: count }, (_, index) => ({
      data: chunk({ content: `word${index} ` }),
    })),
    { data: '[DONE]' },
  )

const streamed = (chunks: string[], extra: Record<string, unknown> = {}) => ({
  headers: { 'content-type': 'text/event-stream' },
  chunks,
  ...extra,
})

/** Reads a body to its end or its break, `pauseMs` between reads. */
async function readAll(response: Response, pauseMs = 0) {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { text, ending: 'ended' as const }
      text += decoder.decode(value, { stream: true })
      if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs))
    }
  } catch {
    return { text, ending: 'broken' as const }
  }
}

describe('hold mode, long streams', () => {
  it('an upstream that breaks off while held: every byte it sent reaches the client (ON_UNJUDGEABLE = "flag")', async () => {
    const all = events(400)
    const { send } = await setupGuard(
      // 300 chunks, 1 ms apart, then the connection is reset: a block read is waiting for more.
      streamed(all, { chunkDelayMs: 1, resetAfterChunks: 300 }),
      judgeSays(0.9, { delayMs: 3000 }),
      { ON_UNJUDGEABLE: 'flag' },
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-reason')).toBe('upstream-stream-error')
    const { text, ending } = await readAll(response)
    expect(text).toBe(all.slice(0, 300).join(''))
    expect(ending).toBe('ended')
  })

  it('a stream held whole, then passed: byte-identical, in one piece and the rest natively', async () => {
    const all = events(2000)
    const { send } = await setupGuard(
      streamed(all, { chunkDelayMs: 0 }),
      judgeSays(0.95, { delayMs: 300 }),
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(all.join(''))
  })

  it('a block while hundreds of events are held: only the fallback goes out, and the upstream is stopped', async () => {
    const all = events(600)
    const { send } = await setupGuard(
      streamed(all, { chunkDelayMs: 0 }),
      judgeSays(0.05, { delayMs: 300 }),
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const text = await response.text()
    expect(text).toContain(FALLBACK)
    expect(text).not.toContain('word0 ')
    // Shaped after the held events: the upstream's id is kept.
    expect(text).toContain('chatcmpl-up1')
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
  })

  it('a block while the upstream is still streaming: the upstream request is stopped', async () => {
    const { send, upstream } = await setupGuard(
      streamed(events(100), { chunkDelayMs: 50 }),
      judgeSays(0.05, { delayMs: 300 }),
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await response.text()).toContain(FALLBACK)
    await eventually(async () => (await upstream.requests())[0]?.abandoned === true)
  })

  it('a client that leaves after the verdict, while a block read was waiting: the upstream request is stopped', async () => {
    const { send, upstream } = await setupGuard(
      streamed(events(100), { chunkDelayMs: 100 }),
      judgeSays(0.9, { delayMs: 250 }),
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    await leaveAfter(response, 'word3 ')
    await eventually(async () => (await upstream.requests())[0]?.abandoned === true)
  })

  it('a client that leaves before the verdict, with the stream held: the upstream and the judge are stopped', async () => {
    const { send, upstream, judge } = await setupGuard(
      streamed(events(300), { chunkDelayMs: 20 }),
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
    await new Promise((resolve) => setTimeout(resolve, 300))
    client.abort()
    await eventually(async () => (await upstream.requests())[0]!.abandoned)
    await eventually(async () => (await judge.requests())[0]!.abandoned)
    await pending
  })

  it('a slow client after the verdict: every byte, in order, to the end (held, then past the buffer limit)', async () => {
    // 4,000 events of about 180 bytes: 700 KB, past a 64 KB buffer before the verdict.
    const all = events(4000)
    const { send } = await setupGuard(
      streamed(all, { chunkDelayMs: 0 }),
      judgeSays(0.9, { delayMs: 500 }),
      { STREAM_BUFFER_BYTES: String(64 * 1024), ON_UNJUDGEABLE: 'flag' },
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-reason')).toBe('stream-buffer-exceeded')
    const { text, ending } = await readAll(response, 2)
    expect(ending).toBe('ended')
    expect(text.length).toBe(all.join('').length)
    expect(text).toBe(all.join(''))
  })
})

describe('hold mode, a verdict known before the stream begins', () => {
  it('passed: the stream goes out untouched', async () => {
    const all = events(50)
    const { send } = await setupGuard(
      streamed(all, { delayMs: 300, chunkDelayMs: 1 }),
      judgeSays(0.95),
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await response.text()).toBe(all.join(''))
  })

  it('blocked: the fallback stream, and the upstream request is stopped', async () => {
    const { send, upstream } = await setupGuard(
      streamed(events(50), { delayMs: 300, chunkDelayMs: 50 }),
      judgeSays(0.05),
    )
    const response = await send('/v1/chat/completions', postJson(chatRequest))
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const text = await response.text()
    expect(text).toContain(FALLBACK)
    expect(text).not.toContain('word0 ')
    await eventually(async () => (await upstream.requests())[0]?.abandoned === true)
  })
})

describe('annotate mode, long streams', () => {
  it('a slow client: every byte, in order, then the verdict comment', async () => {
    const all = events(4000)
    const { send } = await setupGuard(
      streamed(all, { chunkDelayMs: 0 }),
      judgeSays(0.9, { delayMs: 200 }),
    )
    const response = await send('/annotated/chat/completions', postJson(chatRequest))
    const { text, ending } = await readAll(response, 2)
    expect(ending).toBe('ended')
    expect(text.startsWith(all.join(''))).toBe(true)
    // Piped natively, its last byte unseen: a line end comes first.
    expect(text.slice(all.join('').length)).toMatch(/^\n?: rag-guard \{"verdict":"pass".*\}\n\n$/)
  })
})
