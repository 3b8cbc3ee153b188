import { createExecutionContext } from 'cloudflare:test'
import { parse } from 'smol-toml'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { GuardEnv } from '../src/config'
import worker from '../src/worker'
import sampleService from '../samples/rag-service/worker'
import rootConfig from '../wrangler.toml?raw'
import { scriptModel } from './helpers'

const FALLBACK = "I can't answer that reliably from the information I have."
const OPERATOR_TOKEN = 'sample-operator-token-0123456789'

/** The guard, configured by the repository's wrangler.toml, in front of the sample service. */
async function guardInFrontOfSample(pTrue: number) {
  const generator = await scriptModel({ content: 'A day pass costs $12.' })
  const judge = await scriptModel({
    token: pTrue >= 0.5 ? 'True' : 'False',
    logprob: Math.log(Math.max(pTrue, 1 - pTrue)),
    topLogprobs: [
      { token: 'True', logprob: Math.log(pTrue) },
      { token: 'False', logprob: Math.log(1 - pTrue) },
    ],
  })
  const sampleEnv = { OPENAI_BASE_URL: generator.baseURL, GENERATION_MODEL: 'stub' }
  const vars = (parse(rootConfig) as unknown as { vars: GuardEnv }).vars
  const env: GuardEnv = {
    ...vars,
    UPSTREAM: {
      fetch: (input: RequestInfo, init?: RequestInit) =>
        sampleService.fetch(new Request(input, init), sampleEnv),
    } as unknown as Fetcher,
    OPENAI_BASE_URL: judge.baseURL,
    GUARD_MODE: 'enforce',
    // wrangler.toml asks for a caller token; an operator's also shows the details.
    GUARD_OPERATOR_TOKENS: OPERATOR_TOKEN,
  }
  const send = (path: string, body: unknown) =>
    worker.fetch(
      new Request(`https://guard.example.com${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${OPERATOR_TOKEN}` },
        body: JSON.stringify(body),
      }) as Parameters<typeof worker.fetch>[0],
      env,
      createExecutionContext(),
    )
  return { send, judge }
}

const judgedDocuments = async (judge: Awaited<ReturnType<typeof scriptModel>>) =>
  ((await judge.requests())[0]!.body as { messages: Array<{ content: string }> }).messages[1]!
    .content

describe('the sample RAG service behind the guard, as wrangler.toml configures it', () => {
  // wrangler.toml turns the decision log on: every guarded request writes its line (asserted here,
  // kept off the test output).
  let logged: string[] = []
  beforeEach(() => {
    logged = []
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => void logged.push(String(line)))
  })
  afterEach(() => {
    vi.restoreAllMocks()
    expect(logged.length).toBeGreaterThan(0)
    for (const line of logged)
      expect(JSON.parse(line)).toMatchObject({ message: 'rag-guard decision' })
  })

  it('json /ask: retrieved sources reach the judge; pass keeps the answer, block replaces it', async () => {
    const passed = await guardInFrontOfSample(0.95)
    const response = await passed.send('/ask', { question: 'What does a day pass cost?' })
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    const body = (await response.json()) as {
      answer: string
      sources: Array<{ pageContent: string }>
    }
    expect(body.answer).toBe('A day pass costs $12.')
    expect(body.sources[0]!.pageContent).toContain('A day pass costs $12')
    expect(await judgedDocuments(passed.judge)).toContain('A day pass costs $12')

    const blocked = await guardInFrontOfSample(0.05)
    const blockedResponse = await blocked.send('/ask', { question: 'What does a day pass cost?' })
    expect(blockedResponse.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(((await blockedResponse.json()) as { answer: string }).answer).toBe(FALLBACK)
  })

  it('openai-chat: citations in the response are the context; block is a chat.completion', async () => {
    const { send, judge } = await guardInFrontOfSample(0.05)
    const response = await send('/v1/chat/completions', {
      model: 'sample',
      messages: [{ role: 'user', content: 'Are helmets required for adults?' }],
    })
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const body = (await response.json()) as {
      object: string
      choices: Array<{ message: { content: string } }>
    }
    expect(body.object).toBe('chat.completion')
    expect(body.choices[0]!.message.content).toBe(FALLBACK)
    expect(await judgedDocuments(judge)).toContain('Helmets are not provided at stations.')
  })

  it('langserve /rag/invoke: the documents of output.context are judged', async () => {
    const { send, judge } = await guardInFrontOfSample(0.5)
    const response = await send('/rag/invoke', {
      input: { input: 'How old do I have to be to rent a bike?' },
    })
    expect(response.headers.get('x-rag-guard-verdict')).toBe('flag')
    const body = (await response.json()) as {
      output: { answer: string; context: unknown[] }
      metadata: { run_id: string }
    }
    expect(body.output.answer).toBe('A day pass costs $12.')
    expect(body.metadata.run_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(await judgedDocuments(judge)).toContain('Riders must be at least 16 years old')
  })

  it('langserve /rag/stream: held until the verdict, then replaced by a fallback stream on block', async () => {
    const { send } = await guardInFrontOfSample(0.05)
    const response = await send('/rag/stream', { input: { input: 'What does a day pass cost?' } })
    expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
    const text = await response.text()
    expect(text).toMatch(/^event: metadata\n/)
    expect(text).toContain(JSON.stringify({ answer: FALLBACK }))
    expect(text).not.toContain('A day pass costs $12.')
    expect(text.endsWith('event: end\n\n')).toBe(true)
  })

  it('openai-chat streamed: a passed stream is the sample’s own', async () => {
    const { send } = await guardInFrontOfSample(0.95)
    const response = await send('/v1/chat/completions', {
      model: 's',
      stream: true,
      messages: [{ role: 'user', content: 'What does a day pass cost?' }],
    })
    expect(response.headers.get('x-rag-guard-verdict')).toBe('pass')
    const text = await response.text()
    expect(text).toContain('"citations"')
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true)
  })
})
