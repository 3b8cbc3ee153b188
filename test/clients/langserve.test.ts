/**
 * LangServe through the guard, seen by LangServe's JS client (`RemoteRunnable` of
 * @langchain/core 0.3), curl and plain fetch, against the sample RAG service (a real Worker
 * speaking LangServe's `/invoke` and `/stream`, its answer streamed token by token by
 * `ChatOpenAI` from the stub model).
 *
 * - hold, pass / flag: exactly what the service alone gives;
 * - hold, block: the same input and documents, the fallback as the answer, a clean end;
 * - annotate (pass, flag, block): exactly what the service alone gives; the verdict comes after
 *   `event: end` as one SSE comment line, `: rag-guard {json}`, which RemoteRunnable ignores and
 *   a client that wants it reads (verdict.ts);
 * - shadow: exactly what the service alone gives.
 */
import { describe, expect, inject, it } from 'vitest'
import { comparable, expectedVerdict, once, VERDICT_TAIL } from './helpers'
import { curl, remoteInvoke, remoteStream } from './observe'
import { API_KEY, CASES, FALLBACK, normalizedBytes, type GuardConfig } from './rig'
import { verdictFromSSE } from './verdict'

const rig = inject('clientRig')
const ALONE = rig.langserveEndpoint
const guard = (config: GuardConfig) => rig.guards.langserve[config]
const BLOCK = CASES.find((item) => item.verdict === 'block')!

/** RemoteRunnable's input: `{ input: question }`, sent as `{"input": {"input": question}, …}`. */
const input = (question: string) => ({ input: question })

type Part = Record<string, unknown>

describe('streamed, RemoteRunnable.stream()', () => {
  const alone = once((question: string) => remoteStream(`${ALONE}/rag`, input(question)))
  const through = (config: GuardConfig, question: string) =>
    remoteStream(`${guard(config)}/rag`, input(question))

  it('the service alone streams input, documents and the answer without error (the reference)', async () => {
    const observed = await alone(BLOCK.question)
    expect(observed.error).toBeUndefined()
    expect(observed.chunks[0]).toEqual({ input: BLOCK.question })
    expect((observed.chunks[1] as Part).context).toEqual(expect.any(Array))
    expect(observed.chunks.length).toBeGreaterThan(4)
  })

  for (const item of CASES)
    it(`hold, ${item.verdict}`, async () => {
      const [observed, expected] = await Promise.all([
        through('hold', item.question),
        alone(item.question),
      ])
      if (item.verdict !== 'block') return expect(observed).toEqual(expected)
      // A well-formed stream: what was not the answer (input, documents), then the fallback.
      expect(observed.error).toBeUndefined()
      const answer = (chunks: unknown[]) =>
        chunks.map((chunk) => (chunk as Part).answer ?? '').join('')
      const rest = (chunks: unknown[]) => chunks.filter((chunk) => !('answer' in (chunk as Part)))
      expect(answer(observed.chunks)).toBe(FALLBACK)
      expect(rest(observed.chunks)).toEqual(rest(expected.chunks))
    })

  for (const item of CASES)
    it(`annotate, ${item.verdict}: streams exactly what the service alone streams`, async () => {
      const [observed, expected] = await Promise.all([
        through('annotate', item.question),
        alone(item.question),
      ])
      expect(observed).toEqual(expected)
    })

  it('shadow (a block verdict): streams exactly what the service alone streams', async () => {
    const [observed, expected] = await Promise.all([
      through('shadow', BLOCK.question),
      alone(BLOCK.question),
    ])
    expect(observed).toEqual(expected)
  })
})

describe('not streamed, RemoteRunnable.invoke()', () => {
  const alone = once((question: string) => remoteInvoke(`${ALONE}/rag`, input(question)))

  it('the service alone answers without error (the reference)', async () => {
    const observed = await alone(BLOCK.question)
    expect(observed.error).toBeUndefined()
    expect(observed.output).toMatchObject({ input: BLOCK.question, context: expect.any(Array) })
  })

  for (const item of CASES)
    it(`enforce, ${item.verdict}`, async () => {
      const [observed, expected] = await Promise.all([
        remoteInvoke(`${guard('hold')}/rag`, input(item.question)),
        alone(item.question),
      ])
      expect(observed).toEqual(
        item.verdict === 'block'
          ? { ...expected, output: { ...(expected.output as Part), answer: FALLBACK } }
          : expected,
      )
    })

  it('shadow (a block verdict): the service’s answer', async () => {
    const [observed, expected] = await Promise.all([
      remoteInvoke(`${guard('shadow')}/rag`, input(BLOCK.question)),
      alone(BLOCK.question),
    ])
    expect(comparable(observed)).toEqual(comparable(expected))
  })
})

/** What RemoteRunnable sends to /stream. */
const streamBody = (question: string) => ({ input: input(question), config: {}, kwargs: {} })

describe('streamed, curl -N /rag/stream (no Accept-Encoding)', () => {
  const alone = once((question: string) => curl(`${ALONE}/rag/stream`, streamBody(question)))
  const through = (config: GuardConfig, question: string) =>
    curl(`${guard(config)}/rag/stream`, streamBody(question))

  for (const item of CASES.filter((item) => item.verdict !== 'block'))
    it(`hold, ${item.verdict}: the service’s bytes, plain text`, async () => {
      const [observed, expected] = await Promise.all([
        through('hold', item.question),
        alone(item.question),
      ])
      expect(observed.headers['content-encoding']).toBeUndefined()
      expect(observed.headers['x-rag-guard-verdict']).toBe(item.verdict)
      expect(normalizedBytes(observed.body)).toBe(normalizedBytes(expected.body))
    })

  it('hold, block: metadata, the parts that are not the answer, the fallback, end', async () => {
    const [observed, expected] = await Promise.all([
      through('hold', BLOCK.question),
      alone(BLOCK.question),
    ])
    expect(observed.headers['x-rag-guard-verdict']).toBe('block')
    const events = (text: string) => text.split(/\n\n/).filter(Boolean)
    const kept = events(normalizedBytes(expected.body)).filter(
      (event) => !event.includes('"answer"') && !event.startsWith('event: end'),
    )
    expect(events(normalizedBytes(observed.body))).toEqual([
      ...kept,
      `event: data\ndata: ${JSON.stringify({ answer: FALLBACK })}`,
      'event: end',
    ])
  })

  for (const item of CASES)
    it(`annotate, ${item.verdict}: the service’s bytes, then exactly one \`: rag-guard {verdict}\` line`, async () => {
      const [observed, expected] = await Promise.all([
        through('annotate', item.question),
        alone(item.question),
      ])
      expect(observed.headers['content-encoding']).toBeUndefined()
      const body = normalizedBytes(observed.body)
      const service = normalizedBytes(expected.body)
      expect(body.slice(0, service.length)).toBe(service)
      const tail = body.slice(service.length)
      expect(tail).toMatch(VERDICT_TAIL)
      expect(verdictFromSSE(tail)).toEqual(expectedVerdict(item))
    })

  it('shadow (a block verdict): the service’s bytes, nothing added', async () => {
    const [observed, expected] = await Promise.all([
      through('shadow', BLOCK.question),
      alone(BLOCK.question),
    ])
    expect(observed.headers['x-rag-guard-mode']).toBe('shadow')
    expect(normalizedBytes(observed.body)).toBe(normalizedBytes(expected.body))
  })
})

describe('streamed, annotate: plain fetch reads the verdict', () => {
  for (const item of CASES)
    it(item.verdict, async () => {
      const response = await fetch(`${guard('annotate')}/rag/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify(streamBody(item.question)),
      })
      expect(response.headers.get('x-rag-guard-verdict')).toBeNull()
      const text = await response.text()
      expect(text).toMatch(/event: end\r?\n/)
      expect(verdictFromSSE(text)).toEqual(expectedVerdict(item))
    })
})
