/**
 * openai-chat through the guard, seen by real, unmodified clients: the official `openai` client,
 * LangChain's `ChatOpenAI`, the Vercel AI SDK (`streamText`, its UI message stream,
 * `generateText`) and curl. Each observation through the guard is compared with the same
 * client's observation of the endpoint alone.
 *
 * - hold, pass / flag: exactly what the endpoint alone gives (with the verdict in the headers);
 * - hold, block: a well-formed answer carrying the fallback (same id, model, finish reason, and a
 *   usage chunk when the client asked for one);
 * - annotate (pass, flag, block): exactly what the endpoint alone gives; the verdict comes after
 *   `data: [DONE]` as one SSE comment line, `: rag-guard {json}`, which a client that wants it
 *   reads (verdict.ts);
 * - shadow: exactly what the endpoint alone gives.
 */
import { describe, expect, inject, it } from 'vitest'
import { comparable, expectedVerdict, once, OPENAI_USAGE, VERDICT_TAIL } from './helpers'
import {
  aiGenerateText,
  aiStreamText,
  aiUIMessageStream,
  chatOpenAIInvoke,
  chatOpenAIStream,
  curl,
  MODEL,
  openaiCreate,
  openaiCreateStream,
  openaiHelperStream,
  type AIStreamObservation,
  type AIUIObservation,
  type ChatCase,
  type LangChainStreamObservation,
  type OpenAIHelperObservation,
  type OpenAIStreamObservation,
} from './observe'
import {
  ANSWER,
  API_KEY,
  CASES,
  DOCUMENTS,
  FALLBACK,
  normalizedBytes,
  withoutCreated,
  type Case,
  type GuardConfig,
} from './rig'
import { verdictFetch, verdictFromSSE } from './verdict'

const rig = inject('clientRig')
const ALONE = `${rig.chatEndpoint}/v1`
const guard = (config: GuardConfig) => `${rig.guards.chat[config]}/v1`
const chat = (question: string, includeUsage = false): ChatCase => ({
  system: DOCUMENTS,
  question,
  includeUsage,
})
const BLOCK = CASES.find((item) => item.verdict === 'block')!

interface StreamClient<O extends object> {
  name: string
  run(baseURL: string, question: string): Promise<O>
  /** Asserts a well-formed answer carrying the fallback, otherwise like the endpoint's. */
  expectFallback(observed: O, alone: O): void
}

function expectFallbackChunks(observed: OpenAIStreamObservation, alone: OpenAIStreamObservation) {
  expect(observed.error).toBeUndefined()
  expect(observed.content).toBe(FALLBACK)
  expect(observed.finishReason).toBe(alone.finishReason)
  const first = alone.chunks[0] as { id: string; model: string }
  // One id for the whole fallback: the upstream's when its first chunk came before the verdict,
  // else one of the guard's (a block known first stops the upstream before it says anything).
  const id = (observed.chunks[0] as { id: string }).id
  expect(id === first.id || id.startsWith('chatcmpl-ragguard')).toBe(true)
  for (const chunk of observed.chunks)
    expect(chunk).toMatchObject({
      id,
      object: 'chat.completion.chunk',
      model: first.model,
      choices: expect.any(Array),
    })
}

const STREAM_CLIENTS = [
  {
    name: 'openai chat.completions.create({ stream: true })',
    run: (url, question) => openaiCreateStream(url, chat(question)),
    expectFallback(observed, alone) {
      expectFallbackChunks(observed, alone)
      expect(observed.usage).toBeNull()
    },
  } satisfies StreamClient<OpenAIStreamObservation>,
  {
    name: 'openai chat.completions.create({ stream: true, stream_options: { include_usage: true } })',
    run: (url, question) => openaiCreateStream(url, chat(question, true)),
    expectFallback(observed, alone) {
      expectFallbackChunks(observed, alone)
      // The client asked for usage: the stream ends with the usage chunk, as the endpoint's does.
      expect(alone.chunks.at(-1)).toMatchObject({ choices: [], usage: OPENAI_USAGE })
      expect(observed.chunks.at(-1)).toMatchObject({ choices: [], usage: OPENAI_USAGE })
    },
  } satisfies StreamClient<OpenAIStreamObservation>,
  {
    name: 'openai chat.completions.stream() helper (include_usage)',
    run: (url, question) => openaiHelperStream(url, chat(question, true)),
    expectFallback(observed, alone) {
      expect(observed.error).toBeUndefined()
      expect(observed.content).toBe(FALLBACK)
      const expected = alone.final as { id: string; model: string; usage: unknown }
      expect(expected.usage).toMatchObject(OPENAI_USAGE)
      // The upstream's id when its first chunk came before the verdict, else one of the guard's.
      const id = (observed.final as { id: string }).id
      expect(id === expected.id || id.startsWith('chatcmpl-ragguard')).toBe(true)
      expect(observed.final).toMatchObject({
        object: 'chat.completion',
        model: expected.model,
        choices: [
          { index: 0, message: { role: 'assistant', content: FALLBACK }, finish_reason: 'stop' },
        ],
        usage: OPENAI_USAGE,
      })
    },
  } satisfies StreamClient<OpenAIHelperObservation>,
  {
    name: 'ChatOpenAI.stream() (asks for usage itself)',
    run: (url, question) => chatOpenAIStream(url, chat(question)),
    expectFallback(observed, alone) {
      expect(observed.error).toBeUndefined()
      expect(observed.content).toBe(FALLBACK)
      const finish = (o: LangChainStreamObservation) =>
        o.chunks
          .map(
            (chunk) =>
              (chunk as { response_metadata?: { finish_reason?: string } }).response_metadata
                ?.finish_reason,
          )
          .filter(Boolean)
      expect(finish(observed)).toEqual(finish(alone))
      const usage = {
        input_tokens: expect.any(Number),
        output_tokens: expect.any(Number),
        total_tokens: expect.any(Number),
      }
      expect(alone.chunks.at(-1)).toMatchObject({ usage_metadata: usage })
      expect(observed.chunks.at(-1)).toMatchObject({ usage_metadata: usage })
    },
  } satisfies StreamClient<LangChainStreamObservation>,
  {
    name: 'AI SDK streamText (asks for usage itself)',
    run: (url, question) => aiStreamText(url, chat(question)),
    expectFallback(observed, alone) {
      expect(observed.errors).toEqual([])
      expect(observed.text).toBe(FALLBACK)
      expect(observed.finishReason).toBe(alone.finishReason)
      expect(observed.parts.filter((part) => !part.startsWith('text-delta'))).toEqual(
        alone.parts.filter((part) => !part.startsWith('text-delta')),
      )
      const usage = {
        inputTokens: expect.any(Number),
        outputTokens: expect.any(Number),
        totalTokens: expect.any(Number),
      }
      expect(alone.usage).toMatchObject(usage)
      expect(observed.usage).toMatchObject(usage)
    },
  } satisfies StreamClient<AIStreamObservation>,
  {
    name: 'AI SDK UI message stream (toUIMessageStreamResponse, read by readUIMessageStream)',
    run: (url, question) => aiUIMessageStream(url, chat(question)),
    expectFallback(observed, alone) {
      expect(observed.errors).toEqual([])
      expect(observed.chunks.filter((chunk) => !chunk.startsWith('text-delta'))).toEqual(
        alone.chunks.filter((chunk) => !chunk.startsWith('text-delta')),
      )
      expect(observed.message).toEqual({
        role: 'assistant',
        parts: [{ type: 'step-start' }, { type: 'text', text: FALLBACK, state: 'done' }],
      })
    },
  } satisfies StreamClient<AIUIObservation>,
] as Array<StreamClient<object>>

for (const client of STREAM_CLIENTS)
  describe(`streamed, ${client.name}`, () => {
    const alone = once((question: string) => client.run(ALONE, question))

    it('the endpoint alone streams the answer without error (the reference)', async () => {
      const observed = (await alone(BLOCK.question)) as { error?: string; errors?: string[] }
      expect(observed.error ?? observed.errors?.join(' | ') ?? '').toBe('')
      expect(JSON.stringify(observed)).toContain('unlimited')
    })

    for (const item of CASES)
      it(`hold, ${item.verdict}`, async () => {
        const [observed, expected] = await Promise.all([
          client.run(guard('hold'), item.question),
          alone(item.question),
        ])
        if (item.verdict === 'block') client.expectFallback(observed, expected)
        else
          expect(withoutCreated(comparable(observed))).toEqual(withoutCreated(comparable(expected)))
      })

    for (const item of CASES)
      it(`annotate, ${item.verdict}: streams exactly what the endpoint alone streams`, async () => {
        const [observed, expected] = await Promise.all([
          client.run(guard('annotate'), item.question),
          alone(item.question),
        ])
        expect(withoutCreated(comparable(observed))).toEqual(withoutCreated(comparable(expected)))
      })

    it('shadow (a block verdict): streams exactly what the endpoint alone streams', async () => {
      const [observed, expected] = await Promise.all([
        client.run(guard('shadow'), BLOCK.question),
        alone(BLOCK.question),
      ])
      expect(withoutCreated(comparable(observed))).toEqual(withoutCreated(comparable(expected)))
    })
  })

describe('streamed: the verdict, where the openai client sees it', () => {
  for (const item of CASES)
    it(`hold, ${item.verdict}: in the headers (withResponse)`, async () => {
      const observed = await openaiCreateStream(guard('hold'), chat(item.question))
      expect(observed.headers).toEqual({
        'x-rag-guard-verdict': item.verdict,
        'x-rag-guard-score': item.score.toFixed(4),
      })
    })

  it('shadow: the mode header only (the headers leave before the verdict)', async () => {
    const observed = await openaiCreateStream(guard('shadow'), chat(BLOCK.question))
    expect(observed.headers).toEqual({ 'x-rag-guard-mode': 'shadow' })
  })

  for (const item of CASES)
    it(`annotate, ${item.verdict}: no verdict header; the comment line after [DONE], read through the client’s fetch`, async () => {
      const { fetch: watching, verdictOf } = verdictFetch()
      const observed = await openaiCreateStream(guard('annotate'), chat(item.question), watching)
      expect(observed.error).toBeUndefined()
      expect(observed.content).toBe(ANSWER)
      expect(observed.headers).toEqual({})
      expect(await verdictOf(observed.response!)).toEqual(expectedVerdict(item))
    })
})

/** The request curl and fetch send: what an OpenAI client sends, streamed. */
const streamBody = (question: string) => ({
  model: MODEL,
  stream: true,
  messages: [
    { role: 'system', content: DOCUMENTS },
    { role: 'user', content: question },
  ],
})

describe('streamed, curl -N (no Accept-Encoding)', () => {
  const alone = once((question: string) => curl(`${ALONE}/chat/completions`, streamBody(question)))
  const through = (config: GuardConfig, question: string) =>
    curl(`${guard(config)}/chat/completions`, streamBody(question))

  for (const item of CASES.filter((item) => item.verdict !== 'block'))
    it(`hold, ${item.verdict}: the endpoint’s bytes, plain text`, async () => {
      const [observed, expected] = await Promise.all([
        through('hold', item.question),
        alone(item.question),
      ])
      expect(observed.headers['content-encoding']).toBeUndefined()
      expect(observed.headers['x-rag-guard-verdict']).toBe(item.verdict)
      expect(normalizedBytes(observed.body)).toBe(normalizedBytes(expected.body))
    })

  it('hold, block: a fallback stream ending in [DONE], nothing of the answer', async () => {
    const observed = await through('hold', BLOCK.question)
    expect(observed.headers['content-type']).toMatch(/^text\/event-stream/)
    expect(observed.headers['x-rag-guard-verdict']).toBe('block')
    expect(observed.body).toContain(JSON.stringify(FALLBACK).slice(1, -1))
    expect(observed.body).not.toContain('unlimited')
    expect(observed.body.endsWith('data: [DONE]\n\n')).toBe(true)
  })

  for (const item of CASES)
    it(`annotate, ${item.verdict}: the endpoint’s bytes, then exactly one \`: rag-guard {verdict}\` line`, async () => {
      const [observed, expected] = await Promise.all([
        through('annotate', item.question),
        alone(item.question),
      ])
      expect(observed.headers['content-encoding']).toBeUndefined()
      const body = normalizedBytes(observed.body)
      const endpoint = normalizedBytes(expected.body)
      expect(body.slice(0, endpoint.length)).toBe(endpoint)
      const tail = body.slice(endpoint.length)
      expect(tail).toMatch(VERDICT_TAIL)
      expect(verdictFromSSE(tail)).toEqual(expectedVerdict(item))
    })

  it('shadow (a block verdict): the endpoint’s bytes, nothing added', async () => {
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
    it(`${item.verdict}`, async () => {
      const response = await fetch(`${guard('annotate')}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify(streamBody(item.question)),
      })
      expect(response.headers.get('x-rag-guard-verdict')).toBeNull()
      const text = await response.text()
      expect(text).toContain('data: [DONE]\n\n')
      expect(verdictFromSSE(text)).toEqual(expectedVerdict(item))
    })
})

interface PlainClient<O extends object> {
  name: string
  run(baseURL: string, question: string): Promise<O>
  /** The endpoint's observation with its answer replaced by the fallback. */
  withFallback(alone: O): O
}

const PLAIN_CLIENTS = [
  {
    name: 'openai chat.completions.create()',
    run: (url, question) => openaiCreate(url, chat(question)),
    withFallback: (alone) => {
      const completion = structuredClone(alone.completion) as {
        choices: Array<{ message: { content: string } }>
      }
      completion.choices[0]!.message.content = FALLBACK
      return { ...alone, completion }
    },
  } satisfies PlainClient<Awaited<ReturnType<typeof openaiCreate>>>,
  {
    name: 'ChatOpenAI.invoke()',
    run: (url, question) => chatOpenAIInvoke(url, chat(question)),
    withFallback: (alone) => ({
      ...alone,
      message: { ...(alone.message as object), content: FALLBACK },
    }),
  } satisfies PlainClient<Awaited<ReturnType<typeof chatOpenAIInvoke>>>,
  {
    name: 'AI SDK generateText',
    run: (url, question) => aiGenerateText(url, chat(question)),
    withFallback: (alone) => ({ ...alone, text: FALLBACK }),
  } satisfies PlainClient<Awaited<ReturnType<typeof aiGenerateText>>>,
] as Array<PlainClient<object>>

for (const client of PLAIN_CLIENTS)
  describe(`not streamed, ${client.name}`, () => {
    const alone = once((question: string) => client.run(ALONE, question))

    it('the endpoint alone answers without error (the reference)', async () => {
      const observed = (await alone(BLOCK.question)) as { error?: string }
      expect(observed.error).toBeUndefined()
      expect(JSON.stringify(observed)).toContain('unlimited')
    })

    for (const item of CASES)
      it(`enforce, ${item.verdict}`, async () => {
        const [observed, expected] = await Promise.all([
          client.run(guard('hold'), item.question),
          alone(item.question),
        ])
        const reference = item.verdict === 'block' ? client.withFallback(expected) : expected
        expect(withoutCreated(comparable(observed))).toEqual(withoutCreated(comparable(reference)))
      })

    it('shadow (a block verdict): the endpoint’s answer', async () => {
      const [observed, expected] = await Promise.all([
        client.run(guard('shadow'), BLOCK.question),
        alone(BLOCK.question),
      ])
      expect(withoutCreated(comparable(observed))).toEqual(withoutCreated(comparable(expected)))
    })
  })

describe('not streamed: the verdict headers reach the openai client', () => {
  for (const item of CASES)
    it(`enforce, ${item.verdict}`, async () => {
      const observed = await openaiCreate(guard('hold'), chat(item.question))
      expect(observed.headers).toEqual({
        'x-rag-guard-verdict': item.verdict,
        'x-rag-guard-score': item.score.toFixed(4),
      })
    })
})

describe('not streamed, curl (no Accept-Encoding) of an endpoint that compresses when asked', () => {
  const body = (question: string) => ({
    model: MODEL,
    messages: [
      { role: 'system', content: DOCUMENTS },
      { role: 'user', content: question },
    ],
  })
  const alone = once((question: string) => curl(`${ALONE}/chat/completions`, body(question)))
  const json = (text: string) => withoutCreated(JSON.parse(text) as unknown)

  it('the endpoint alone answers curl in plain JSON (the reference)', async () => {
    const observed = await alone(BLOCK.question)
    expect(observed.headers['content-encoding']).toBeUndefined()
    expect(json(observed.body)).toMatchObject({ object: 'chat.completion' })
  })

  for (const item of CASES)
    it(`enforce, ${item.verdict}: plain JSON, no Content-Encoding the client did not ask for`, async () => {
      const [observed, expected] = await Promise.all([
        curl(`${guard('hold')}/chat/completions`, body(item.question)),
        alone(item.question),
      ])
      expect(observed.headers['x-rag-guard-verdict']).toBe(item.verdict)
      expect(observed.headers['content-encoding']).toBeUndefined()
      const reference = json(expected.body) as { choices: Array<{ message: { content: string } }> }
      if (item.verdict === 'block') reference.choices[0]!.message.content = FALLBACK
      expect(json(observed.body)).toEqual(reference)
    })

  it('shadow (a block verdict): the endpoint’s JSON, plain', async () => {
    const [observed, expected] = await Promise.all([
      curl(`${guard('shadow')}/chat/completions`, body(BLOCK.question)),
      alone(BLOCK.question),
    ])
    expect(observed.headers['content-encoding']).toBeUndefined()
    expect(json(observed.body)).toEqual(json(expected.body))
  })
})
