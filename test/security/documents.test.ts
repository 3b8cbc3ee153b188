/**
 * Issue 12, findings 4 and 5: what the client's documents can make the guard do. Zero
 * documents are no reason to pass (score NO_DOCUMENTS_SCORE, 0 by default, reason
 * no-documents, no judge call); a flood of documents never reaches the judge whole (at most
 * JUDGE_MAX_DOCUMENTS documents and JUDGE_MAX_INPUT_CHARS characters; the rest cut and the
 * decision marked truncated, or refused with JUDGE_INPUT_OVERFLOW=refuse).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { judgeSays } from '../guard-helpers'
import {
  calls,
  CHAT_COMPLETION,
  expectBlockedAnswer,
  expectRefused,
  judgePrompt,
  LANGSERVE_OUTPUT,
  post,
  requestSizes,
  secureGuard,
  sse,
  streamed,
  UPSTREAM_ANSWER,
} from './helpers'

const QUESTION = 'Which company manufactures the bikes?'

let logged: string[] = []
beforeEach(() => {
  logged = []
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    logged.push(args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' '))
  })
})
afterEach(() => {
  vi.restoreAllMocks()
})

/** The decision log lines written so far, parsed. */
function decisions(): Array<Record<string, unknown>> {
  return logged
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>]
      } catch {
        return []
      }
    })
    .filter((record) => record.message === 'rag-guard decision')
}

describe('finding 4: zero retrieved documents are scored 0 (no-documents) and blocked, without a judge call', () => {
  it.each([
    ['an empty array', { question: QUESTION, context: [] }],
    ['no context field', { question: QUESTION }],
    ['null', { question: QUESTION, context: null }],
    ['only empty strings', { question: QUESTION, context: ['', '   ', '\n'] }],
    ['one empty string', { question: QUESTION, context: '' }],
    ['documents whose texts are empty', { question: QUESTION, context: [{ pageContent: '' }] }],
  ])('json, context in the request: %s', async (_, body) => {
    const { send, judge } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.99),
    )
    const response = await send('/ask', post(body), 'operator')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0000')
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-documents')
    await expectBlockedAnswer(response)
    expect(await calls(judge)).toBe(0)
  })

  it('json, context in the response: an empty sources list', async () => {
    const { send, judge } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER, sources: [] } },
      judgeSays(0.99),
    )
    const response = await send('/ask-late', post({ question: QUESTION }), 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0000')
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-documents')
    await expectBlockedAnswer(response)
    expect(await calls(judge)).toBe(0)
  })

  it('openai-chat: a conversation without any system, developer or tool message', async () => {
    const { send, judge } = await secureGuard({ json: CHAT_COMPLETION }, judgeSays(0.99))
    const response = await send(
      '/v1/chat/completions',
      post({ model: 'rag-model', messages: [{ role: 'user', content: QUESTION }] }),
      'operator',
    )
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0000')
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-documents')
    await expectBlockedAnswer(response)
    expect(await calls(judge)).toBe(0)
  })

  it('langserve /invoke: an output whose context is empty', async () => {
    const { send, judge } = await secureGuard(
      { json: { ...LANGSERVE_OUTPUT, output: { ...LANGSERVE_OUTPUT.output, context: [] } } },
      judgeSays(0.99),
    )
    const response = await send('/rag/invoke', post({ input: QUESTION }), 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0000')
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-documents')
    await expectBlockedAnswer(response)
    expect(await calls(judge)).toBe(0)
  })

  it('langserve /stream: a stream that ends without a context event (hold mode)', async () => {
    const events = sse(
      { event: 'metadata', data: { run_id: 'run-1' } },
      { event: 'data', data: { answer: UPSTREAM_ANSWER } },
      { event: 'end' },
    )
    const { send, judge } = await secureGuard(streamed(events), judgeSays(0.99))
    const response = await send('/rag/stream', post({ input: QUESTION }), 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-score')).toBe('0.0000')
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-documents')
    await expectBlockedAnswer(response)
    expect(await calls(judge)).toBe(0)
  })

  it('NO_DOCUMENTS_SCORE sets the score, and the thresholds the verdict (0.5 → flag)', async () => {
    const { send, judge } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.99),
      { NO_DOCUMENTS_SCORE: '0.5' },
    )
    const response = await send('/ask', post({ question: QUESTION, context: [] }), 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    expect(response.headers.get('x-rag-guard-score')).toBe('0.5000')
    expect(response.headers.get('x-rag-guard-reason')).toBe('no-documents')
    expect(await calls(judge)).toBe(0)
  })
})

/** The body of a request with this many one-character documents: about 4 bytes each. */
function manyDocuments(count: number): string {
  return `{"question":${JSON.stringify(QUESTION)},"context":[${'"x",'.repeat(count - 1)}"x"]}`
}

/**
 * Today's code builds a ~100 MB prompt from these requests; the longer timeout lets it fail on
 * its assertions rather than on the test's default 5 s. Bounded, they take a fraction of that.
 */
const MILLION_DOCUMENTS_TIMEOUT = 60_000

describe('finding 5: the judge input is bounded, whatever the request holds', () => {
  it(
    '1,040,000 one-character documents in a ~4 MB request: the judge request stays under 1 MB, the decision says truncated',
    async () => {
      const body = manyDocuments(1_040_000)
      expect(body.length).toBeGreaterThan(4_000_000)
      expect(body.length).toBeLessThan(4_194_304)
      const { send, settle, judge } = await secureGuard(
        { json: { answer: UPSTREAM_ANSWER } },
        judgeSays(0.9),
        { LOG_DECISIONS: true },
      )
      const response = await send(
        '/ask',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body },
        'operator',
      )
      expect(response.status).toBe(200)
      expect(response.headers.get('x-rag-guard-score')).toBe('0.9000')
      await response.text()
      await settle()
      const sizes = await requestSizes(judge)
      expect(sizes).toHaveLength(1)
      expect(sizes[0]!.bodyBytes).toBeLessThan(1_000_000)
      expect(decisions().map((record) => record.truncated)).toEqual([true])
    },
    MILLION_DOCUMENTS_TIMEOUT,
  )

  it(
    'the same request with JUDGE_INPUT_OVERFLOW=refuse: 413 judge-input-too-large, before the judge and the upstream',
    async () => {
      const { send, judge, upstream } = await secureGuard(
        { json: { answer: UPSTREAM_ANSWER } },
        judgeSays(0.9),
        { JUDGE_INPUT_OVERFLOW: 'refuse' },
      )
      const response = await send(
        '/ask',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: manyDocuments(1_040_000),
        },
        'operator',
      )
      await expectRefused(response, 413, 'judge-input-too-large')
      expect((await requestSizes(judge)).length).toBe(0)
      expect((await requestSizes(upstream)).length).toBe(0)
    },
    MILLION_DOCUMENTS_TIMEOUT,
  )

  it('JUDGE_MAX_DOCUMENTS (default 64): the judge sees the first 64 documents and no more', async () => {
    const context = Array.from(
      { length: 100 },
      (_, index) => `document-${String(index + 1).padStart(3, '0')}`,
    )
    const { send, settle, judge } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      { LOG_DECISIONS: true },
    )
    const response = await send('/ask', post({ question: QUESTION, context }), 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9000')
    await settle()
    const prompt = await judgePrompt(judge)
    expect(prompt).toContain('document-001')
    expect(prompt).toContain('document-064')
    expect(prompt).not.toContain('document-065')
    expect(prompt).not.toContain('document-100')
    expect(decisions().map((record) => record.truncated)).toEqual([true])
  })

  it('JUDGE_MAX_INPUT_CHARS (default 200,000): the first documents that fit are kept, the last one cut, the rest left out', async () => {
    const context = [
      `DOC-ONE ${'a'.repeat(99_000)}`,
      `DOC-TWO ${'b'.repeat(150_000)}`,
      `DOC-THREE ${'c'.repeat(50_000)}`,
    ]
    const { send, settle, judge } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      { LOG_DECISIONS: true },
    )
    const response = await send('/ask', post({ question: QUESTION, context }), 'operator')
    expect(response.status).toBe(200)
    expect(response.headers.get('x-rag-guard-score')).toBe('0.9000')
    await settle()
    const prompt = await judgePrompt(judge)
    expect(prompt).toContain(context[0])
    expect(prompt).toContain('DOC-TWO bbbb')
    expect(prompt).not.toContain(context[1])
    expect(prompt).not.toContain('DOC-THREE')
    // The instructions and block markers come on top of the 200,000 characters of data.
    expect(prompt.length).toBeLessThan(200_000 + 10_000)
    expect(decisions().map((record) => record.truncated)).toEqual([true])
  })

  it('JUDGE_MAX_INPUT_CHARS with JUDGE_INPUT_OVERFLOW=refuse: 413 judge-input-too-large before the upstream', async () => {
    const { send, judge, upstream } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      { JUDGE_INPUT_OVERFLOW: 'refuse' },
    )
    const context = ['a'.repeat(120_000), 'b'.repeat(120_000)]
    const response = await send('/ask', post({ question: QUESTION, context }), 'operator')
    await expectRefused(response, 413, 'judge-input-too-large')
    expect(await calls(judge)).toBe(0)
    expect(await calls(upstream)).toBe(0)
  })

  it('a judge input within the limits is not marked truncated', async () => {
    const { send, settle } = await secureGuard(
      { json: { answer: UPSTREAM_ANSWER } },
      judgeSays(0.9),
      { LOG_DECISIONS: true },
    )
    const response = await send(
      '/ask',
      post({ question: QUESTION, context: ['The bikes are blue.'] }),
      'operator',
    )
    expect(response.status).toBe(200)
    await settle()
    expect(decisions().map((record) => record.truncated ?? false)).toEqual([false])
  })
})
