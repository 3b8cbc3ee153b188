/**
 * Issue 12, finding 6: score and cache oracles. A caller who is not an operator learns the
 * verdict and nothing else (no score, reason, cache or mode header; no score or reason in a 422
 * body or a stream annotation; nothing at all in shadow mode), and one caller's cached score is
 * never another caller's cache hit unless CACHE_SCOPE=shared.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { kvStore, ragGuard } from '../../src'
import { judgeSays } from '../guard-helpers'
import { scriptModel } from '../helpers'
import {
  CALLER_TOKEN,
  CALLER_TOKEN_2,
  calls,
  CHAT_EVENTS,
  FALLBACK,
  guardHeaders,
  OPERATOR_TOKEN,
  OPERATOR_TOKEN_2,
  post,
  secureGuard,
  streamed,
  UPSTREAM_ANSWER,
} from './helpers'

const ask = (question = 'What does a day pass cost?') =>
  post({ question, context: ['A day pass costs $12.'] })
const answer = { json: { answer: UPSTREAM_ANSWER } }

describe('finding 6: a caller who is not an operator sees the verdict only', () => {
  it('a pass carries x-rag-guard-verdict and no other x-rag-guard-* header', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.93))
    const response = await send('/ask', ask(), 'caller')
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({ 'x-rag-guard-verdict': 'pass' })
    expect(await response.json()).toEqual({ answer: UPSTREAM_ANSWER })
  })

  it('a flag for a judge failure carries the verdict, not the reason', async () => {
    const { send } = await secureGuard(answer, { status: 500 })
    const response = await send('/ask', ask(), 'caller')
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({ 'x-rag-guard-verdict': 'flag' })
  })

  it('a 422 block carries neither score nor reason, in its headers or its body', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.0123))
    const response = await send('/ask-422', ask(), 'caller')
    expect(response.status).toBe(422)
    expect(guardHeaders(response)).toEqual({ 'x-rag-guard-verdict': 'block' })
    const body = (await response.json()) as { error: Record<string, unknown> }
    expect(body.error.type).toBe('insufficient_context')
    expect(body.error.message).toBe(FALLBACK)
    expect(body.error).not.toHaveProperty('score')
    expect(body.error).not.toHaveProperty('reason')
    expect(JSON.stringify(body)).not.toContain('0.0123')
  })

  it('an annotated stream’s verdict comment carries the verdict, not the score or reason', async () => {
    const { send } = await secureGuard(streamed(CHAT_EVENTS), judgeSays(0.4321))
    const response = await send(
      '/annotated/chat/completions',
      post({
        model: 'rag-model',
        stream: true,
        messages: [
          { role: 'system', content: 'A day pass costs $12.' },
          { role: 'user', content: 'What does a day pass cost?' },
        ],
      }),
      'caller',
    )
    expect(response.status).toBe(200)
    const text = await response.text()
    const annotation = text.split('\n: rag-guard ')[1]
    expect(annotation, 'a rag-guard comment').toBeDefined()
    const data = JSON.parse(annotation!.split('\n')[0]!) as Record<string, unknown>
    expect(data).toEqual({ verdict: 'flag' })
    expect(data).not.toHaveProperty('score')
    expect(data).not.toHaveProperty('reason')
    expect(annotation).not.toContain('0.4321')
  })

  it('in shadow mode, a non-operator gets no x-rag-guard-* header at all', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.05), { GUARD_MODE: 'shadow' })
    const response = await send('/ask', ask(), 'caller')
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({})
    expect(await response.json()).toEqual({ answer: UPSTREAM_ANSWER })
  })

  it('in shadow mode, a non-operator’s stream carries no x-rag-guard-* header either', async () => {
    const { send } = await secureGuard(streamed(CHAT_EVENTS), judgeSays(0.05), {
      GUARD_MODE: 'shadow',
    })
    const response = await send(
      '/v1/chat/completions',
      post({
        model: 'rag-model',
        stream: true,
        messages: [
          { role: 'system', content: 'A day pass costs $12.' },
          { role: 'user', content: 'What does a day pass cost?' },
        ],
      }),
      'caller',
    )
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({})
    await response.text()
  })
})

describe('finding 6: operators and GUARD_DETAILS', () => {
  it('an operator (GUARD_OPERATOR_TOKENS) gets verdict, score and cache', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.93))
    const response = await send('/ask', ask(), 'operator')
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({
      'x-rag-guard-verdict': 'pass',
      'x-rag-guard-score': '0.9300',
      'x-rag-guard-cache': 'miss',
    })
  })

  it('an operator in shadow mode gets verdict, score, cache and mode', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.05), { GUARD_MODE: 'shadow' })
    const response = await send('/ask', ask(), 'operator')
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({
      'x-rag-guard-verdict': 'block',
      'x-rag-guard-score': '0.0500',
      'x-rag-guard-cache': 'miss',
      'x-rag-guard-mode': 'shadow',
    })
  })

  it('GUARD_DETAILS=everyone gives every caller the details', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.93), { GUARD_DETAILS: 'everyone' })
    const response = await send('/ask', ask(), 'caller')
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({
      'x-rag-guard-verdict': 'pass',
      'x-rag-guard-score': '0.9300',
      'x-rag-guard-cache': 'miss',
    })
  })

  it('GUARD_DETAILS=nobody gives even an operator the verdict only', async () => {
    const { send } = await secureGuard(answer, judgeSays(0.93), { GUARD_DETAILS: 'nobody' })
    const response = await send('/ask', ask(), 'operator')
    expect(response.status).toBe(200)
    expect(guardHeaders(response)).toEqual({ 'x-rag-guard-verdict': 'pass' })
  })
})

describe('finding 6: the verdict cache is per caller unless CACHE_SCOPE=shared', () => {
  it.each([
    ['the Cache API', {}],
    ['KV (GUARD_CACHE)', { GUARD_CACHE: env.TEST_CACHE }],
  ])(
    '%s: caller B’s request identical to caller A’s is a miss, and the judge is asked again',
    async (_, store) => {
      const { send, settle, judge } = await secureGuard(answer, judgeSays(0.93), store)
      const first = await send('/ask', ask(), { token: OPERATOR_TOKEN })
      expect(first.headers.get('x-rag-guard-cache')).toBe('miss')
      await settle()
      const second = await send('/ask', ask(), { token: OPERATOR_TOKEN_2 })
      expect(second.headers.get('x-rag-guard-cache')).toBe('miss')
      expect(await calls(judge)).toBe(2)
    },
  )

  it('two callers without details: the second is still judged anew (the judge gets two requests)', async () => {
    const { send, settle, judge } = await secureGuard(answer, judgeSays(0.93), {
      GUARD_CACHE: env.TEST_CACHE,
    })
    await send('/ask', ask(), { token: CALLER_TOKEN })
    await settle()
    await send('/ask', ask(), { token: CALLER_TOKEN_2 })
    expect(await calls(judge)).toBe(2)
  })

  it('the same caller’s repeated request is a hit', async () => {
    const { send, settle, judge } = await secureGuard(answer, judgeSays(0.93), {
      GUARD_CACHE: env.TEST_CACHE,
    })
    await send('/ask', ask(), { token: OPERATOR_TOKEN })
    await settle()
    const again = await send('/ask', ask(), { token: OPERATOR_TOKEN })
    expect(again.headers.get('x-rag-guard-cache')).toBe('hit')
    expect(await calls(judge)).toBe(1)
  })

  it('CACHE_SCOPE=shared: caller B’s identical request is a hit', async () => {
    const { send, settle, judge } = await secureGuard(answer, judgeSays(0.93), {
      GUARD_CACHE: env.TEST_CACHE,
      CACHE_SCOPE: 'shared',
    })
    await send('/ask', ask(), { token: OPERATOR_TOKEN })
    await settle()
    const second = await send('/ask', ask(), { token: OPERATOR_TOKEN_2 })
    expect(second.headers.get('x-rag-guard-cache')).toBe('hit')
    expect(await calls(judge)).toBe(1)
  })
})

describe('finding 6 in the middleware: isOperator, callerId and details', () => {
  async function app(options: Record<string, unknown> = {}) {
    const model = await scriptModel(judgeSays(0.93))
    const hono = new Hono()
    hono.post(
      '/ask',
      ragGuard({
        judge: { apiKey: 'sk-test', baseURL: model.baseURL, maxRetries: 0 },
        answer: '/answer',
        cache: kvStore(env.TEST_CACHE, 3600),
        callerId: (c: { req: { header(name: string): string | undefined } }) =>
          c.req.header('x-user'),
        isOperator: (c: { req: { header(name: string): string | undefined } }) =>
          c.req.header('x-user') === 'admin',
        ...options,
      } as Parameters<typeof ragGuard>[0]),
      (c) => c.json({ answer: UPSTREAM_ANSWER }),
    )
    // With an execution context, so the cache write is done before the next request.
    const send = async (user: string) => {
      const ctx = createExecutionContext()
      const response = await hono.fetch(
        new Request('https://app.example.com/ask', {
          ...ask(),
          headers: { 'content-type': 'application/json', 'x-user': user },
        }),
        {},
        ctx,
      )
      await waitOnExecutionContext(ctx)
      return response
    }
    return { send, model }
  }

  it('a user isOperator does not accept sees the verdict only; an operator sees the score', async () => {
    const { send } = await app()
    const user = await send('alice')
    const admin = await send('admin')
    expect([user.status, admin.status]).toEqual([200, 200])
    expect(user.headers.get('x-rag-guard-verdict')).toBe('pass')
    expect(user.headers.get('x-rag-guard-score')).toBeNull()
    expect(user.headers.get('x-rag-guard-cache')).toBeNull()
    expect(admin.headers.get('x-rag-guard-score')).toBe('0.9300')
  })

  it('callerId scopes the cache: bob’s request identical to alice’s asks the judge again', async () => {
    const { send, model } = await app()
    await send('alice')
    await send('bob')
    expect(await calls(model)).toBe(2)
  })
})
