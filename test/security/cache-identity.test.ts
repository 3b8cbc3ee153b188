/**
 * Issue 12, finding 7: cache integrity. A score is cached under the judge that gave it: two
 * judges built from different chat models (another endpoint, other settings) or given different
 * `identity` never read each other's scores, and the keys are HMACs under CACHE_SECRET (or the
 * judge's API key), so a Worker with another secret never reads them either.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { ChatOpenAI } from '@langchain/openai'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import {
  cacheApiStore,
  ConfigurationError,
  createJudge,
  kvStore,
  ragGuard,
  type Judge,
  type RagGuardOptions,
  type VerdictCache,
} from '../../src'
import { judgeSays } from '../guard-helpers'
import { scriptModel } from '../helpers'
import { calls, post, secureGuard, UPSTREAM_ANSWER } from './helpers'

function chatModel(baseURL: string, topLogprobs = 20) {
  return new ChatOpenAI({
    model: 'gpt-4o-mini',
    apiKey: 'sk-test',
    configuration: { baseURL },
    logprobs: true,
    topLogprobs,
    maxTokens: 1,
    temperature: 0,
    maxRetries: 0,
  })
}

const request = {
  question: 'Which company manufactures the bikes?',
  context: ['The bikes are blue.'],
}

/** createJudge with the design's `identity` option, which JudgeOptions does not name yet. */
const judgeWith = (options: Record<string, unknown>) =>
  createJudge(options as Parameters<typeof createJudge>[0])

/** Sends the same request to /a and then /b, guarded by two judges that share one cache. */
async function sendBoth(a: Judge, b: Judge, cache: VerdictCache) {
  const app = new Hono()
  const handler = (c: { json(body: unknown): Response }) => c.json({ answer: UPSTREAM_ANSWER })
  // One scope for both routes: only the judge differs between them.
  const options = (judge: Judge) =>
    ({ judge, cache, answer: '/answer', cacheScope: 'shared' }) as RagGuardOptions
  app.post('/a', ragGuard(options(a)), handler)
  app.post('/b', ragGuard(options(b)), handler)
  // With an execution context, so the first cache write is done before the second request.
  const send = async (path: string) => {
    const ctx = createExecutionContext()
    const response = await app.fetch(
      new Request(`https://app.example.com${path}`, post(request)),
      {},
      ctx,
    )
    await waitOnExecutionContext(ctx)
    return response
  }
  const first = await send('/a')
  const second = await send('/b')
  return { first, second }
}

describe('finding 7: judges built from different chat models never share cached scores', () => {
  it.each([
    ['a KV namespace', () => kvStore(env.TEST_CACHE, 3600)],
    ['the Cache API', () => cacheApiStore(3600, { secret: 'cache-identity-test-secret' })],
  ])(
    '%s: ChatOpenAI models at two endpoints: the second judge is asked, and its block holds',
    async (_, store) => {
      const passing = await scriptModel(judgeSays(0.95))
      const blocking = await scriptModel(judgeSays(0.01))
      const { first, second } = await sendBoth(
        createJudge({ chatModel: chatModel(passing.baseURL) }),
        createJudge({ chatModel: chatModel(blocking.baseURL) }),
        store(),
      )
      expect(first.headers.get('x-rag-guard-verdict')).toBe('pass')
      expect(second.headers.get('x-rag-guard-verdict')).toBe('block')
      expect(await second.json()).toEqual({
        answer: "I can't answer that reliably from the information I have.",
      })
      expect(await calls(passing)).toBe(1)
      expect(await calls(blocking)).toBe(1)
    },
  )

  it('ChatOpenAI models that differ only in topLogprobs do not share scores', async () => {
    const judge = await scriptModel({ steps: [judgeSays(0.95), judgeSays(0.01)] })
    const { first, second } = await sendBoth(
      createJudge({ chatModel: chatModel(judge.baseURL, 20) }),
      createJudge({ chatModel: chatModel(judge.baseURL, 5) }),
      kvStore(env.TEST_CACHE, 3600),
    )
    expect(first.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(second.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await calls(judge)).toBe(2)
  })

  it('two chat models given different identity do not share scores', async () => {
    const passing = await scriptModel(judgeSays(0.95))
    const blocking = await scriptModel(judgeSays(0.01))
    const { second } = await sendBoth(
      judgeWith({ chatModel: chatModel(passing.baseURL), identity: 'judge-a' }),
      judgeWith({ chatModel: chatModel(blocking.baseURL), identity: 'judge-b' }),
      kvStore(env.TEST_CACHE, 3600),
    )
    expect(second.headers.get('x-rag-guard-verdict')).toBe('block')
    expect(await calls(blocking)).toBe(1)
  })

  it('two chat models given the same identity do share scores (identity is what the key names)', async () => {
    const passing = await scriptModel(judgeSays(0.95))
    const other = await scriptModel(judgeSays(0.01))
    const identity = `shared-judge-${crypto.randomUUID()}`
    const { second } = await sendBoth(
      judgeWith({ chatModel: chatModel(passing.baseURL), identity }),
      judgeWith({ chatModel: chatModel(other.baseURL, 5), identity }),
      kvStore(env.TEST_CACHE, 3600),
    )
    expect(second.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(await calls(other)).toBe(0)
  })

  it('a chat model with neither identity nor a LangChain serialisation is a ConfigurationError naming identity', () => {
    const bare = { invoke: async () => ({ response_metadata: {} }) }
    let thrown: unknown
    try {
      createJudge({ chatModel: bare })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(ConfigurationError)
    expect((thrown as ConfigurationError).message).toMatch(/identity/)
  })
})

describe('finding 7: cache keys are keyed by CACHE_SECRET (or the judge API key)', () => {
  const shared = { GUARD_CACHE: env.TEST_CACHE, CACHE_SCOPE: 'shared' }

  it('a Worker with another CACHE_SECRET does not read the first one’s scores', async () => {
    const first = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, judgeSays(0.42), {
      ...shared,
      CACHE_SECRET: 'cache-secret-one-5b8e2f1a9c7d',
    })
    await first.send('/ask', post(request), 'operator')
    await first.settle()
    const second = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, judgeSays(0.42), {
      ...shared,
      OPENAI_BASE_URL: first.env.OPENAI_BASE_URL, // the same judge
      CACHE_SECRET: 'cache-secret-two-0d4c6a8e2b1f',
    })
    const response = await second.send('/ask', post(request), 'operator')
    expect(response.headers.get('x-rag-guard-cache')).toBe('miss')
    expect(await calls(first.judge)).toBe(2)
  })

  it('without CACHE_SECRET, a Worker with another judge API key does not read the first one’s scores', async () => {
    const first = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, judgeSays(0.42), {
      ...shared,
      OPENAI_API_KEY: 'sk-first-key-7a1e3c5b9d2f',
    })
    await first.send('/ask', post(request), 'operator')
    await first.settle()
    const second = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, judgeSays(0.42), {
      ...shared,
      OPENAI_BASE_URL: first.env.OPENAI_BASE_URL,
      OPENAI_API_KEY: 'sk-second-key-4f6d8b0a2c1e',
    })
    const response = await second.send('/ask', post(request), 'operator')
    expect(response.headers.get('x-rag-guard-cache')).toBe('miss')
    expect(await calls(first.judge)).toBe(2)
  })

  it('the same CACHE_SECRET and judge do share scores', async () => {
    const secret = `cache-secret-${crypto.randomUUID()}`
    const first = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, judgeSays(0.42), {
      ...shared,
      CACHE_SECRET: secret,
    })
    await first.send('/ask', post(request), 'operator')
    await first.settle()
    const second = await secureGuard({ json: { answer: UPSTREAM_ANSWER } }, judgeSays(0.42), {
      ...shared,
      OPENAI_BASE_URL: first.env.OPENAI_BASE_URL,
      CACHE_SECRET: secret,
    })
    const response = await second.send('/ask', post(request), 'operator')
    expect(response.headers.get('x-rag-guard-cache')).toBe('hit')
    expect(await calls(first.judge)).toBe(1)
  })
})
