import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { Hono, type Handler, type MiddlewareHandler } from 'hono'
import { ragGuard, type DecisionRecord, type GuardDecision, type RagGuardOptions } from '../src'
import type { GuardEnv } from '../src/config'
import worker from '../src/worker'
import { scriptModel, scriptUpstream, type ScriptedModel } from './helpers'
import type { StubScript, StubStep, UpstreamReply } from './stub/openai-stub'

export { judgeLine, judgeLines, judgeSays } from './judge-replies'

export const SECRET = 'sk-test-secret-4f9a'
export const FALLBACK = "I can't answer that reliably from the information I have."

/**
 * Reads a streamed response until its text holds `marker`, then cancels it: a client that leaves
 * in the middle of a stream.
 */
export async function leaveAfter(response: Response, marker: string): Promise<void> {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  while (!text.includes(marker)) {
    const { done, value } = await reader.read()
    if (done) throw new Error(`the stream ended before "${marker}"`)
    text += decoder.decode(value, { stream: true })
  }
  await reader.cancel()
}

/**
 * A Hono app with `ragGuard` on POST /ask in front of `handler`, judged by a scripted model (no
 * retries, details for everyone); `ask()` posts `request`. What the guard decided is kept: the
 * decision (`seen`) and the records it wrote.
 */
export async function guardedAsk(
  judge: Parameters<typeof scriptModel>[0],
  options: Partial<RagGuardOptions>,
  handler: Handler,
  request: unknown,
  /** Middleware that runs before the guard (after the one that keeps its decision). */
  before: MiddlewareHandler[] = [],
) {
  const model = await scriptModel(judge)
  const records: DecisionRecord[] = []
  const seen: { decision?: GuardDecision } = {}
  const app = new Hono()
  app.use('/ask', async (c, next) => {
    await next()
    seen.decision = await c.var.ragGuard
  })
  for (const middleware of before) app.use('/ask', middleware)
  app.post(
    '/ask',
    ragGuard({
      judge: { apiKey: 'sk-test', baseURL: model.baseURL, maxRetries: 0 },
      details: 'everyone',
      onDecision: (record) => records.push(record),
      ...options,
    }),
    handler,
  )
  const ask = () => app.request('/ask', postJson(request))
  return { app, model, ask, records, seen }
}

/** The user messages (the prompts) the judge was sent, in order. */
export const promptsOf = async (model: Pick<ScriptedModel, 'requests'>) =>
  (await model.requests()).map(
    (request) => (request.body as { messages: Array<{ content: string }> }).messages[1]!.content,
  )

export interface GuardSetup {
  upstream: ScriptedModel
  judge: ScriptedModel
  env: GuardEnv
  /** Sends a request to the guard Worker, as the runtime does for a client on the internet. */
  send(path: string, init?: RequestInit): Promise<Response>
  /** Waits for the work the Worker left running after its responses (logs, cache writes). */
  settle(): Promise<void>
}

export const ROUTES = [
  { path: '/ask', format: 'json', answer: '/answer' },
  {
    path: '/ask-late',
    format: 'json',
    context: { in: 'response', pointer: '/sources' },
    answer: '/answer',
  },
  { path: '/v1/chat/completions', format: 'openai-chat' },
  { path: '/annotated/chat/completions', format: 'openai-chat', streamMode: 'annotate' },
  {
    path: '/azure/chat/completions',
    format: 'openai-chat',
    context: { in: 'response', pointer: '/choices/0/message/context/citations' },
  },
  { path: '/rag/invoke', format: 'langserve' },
  { path: '/rag/stream', format: 'langserve' },
  { path: '/annotated/rag/stream', format: 'langserve', streamMode: 'annotate' },
  { path: '/chain', format: 'langserve' },
]

export async function setupGuard(
  reply: UpstreamReply | UpstreamReply[],
  judge: StubScript,
  env: Partial<GuardEnv> = {},
): Promise<GuardSetup> {
  const upstream = await scriptUpstream(...(Array.isArray(reply) ? reply : [reply]))
  const model = await scriptModel(judge)
  const fullEnv: GuardEnv = {
    UPSTREAM_URL: upstream.root,
    OPENAI_API_KEY: SECRET,
    OPENAI_BASE_URL: model.baseURL,
    JUDGE_MAX_RETRIES: '0',
    GUARD_MODE: 'enforce',
    BLOCK_BELOW: 0.2,
    FLAG_BELOW: 0.8,
    LOG_DECISIONS: false,
    // The behaviour suites read the details; who may call and who sees them is tested on its own.
    GUARD_AUTH: 'none',
    GUARD_DETAILS: 'everyone',
    GUARD_ROUTES: ROUTES,
    ...env,
  }
  const contexts: ExecutionContext[] = []
  return {
    upstream,
    judge: model,
    env: fullEnv,
    send: async (path, init) => {
      const ctx = createExecutionContext()
      contexts.push(ctx)
      const request = new Request(new URL(path, 'https://guard.example.com'), withLength(init))
      return worker.fetch(request as Parameters<typeof worker.fetch>[0], fullEnv, ctx)
    },
    settle: async () => {
      await Promise.all(contexts.map((ctx) => waitOnExecutionContext(ctx)))
    },
  }
}

/**
 * `init` as a request from the internet arrives: a body of fixed size with its `Content-Length`
 * (the runtime gives a request built in-process none), so that the guard reads it as it does in
 * production. Streamed bodies keep none, as a chunked upload has none.
 */
export function withLength(init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers)
  const { body } = init
  if (headers.has('content-length') || body === undefined || body === null) return init
  let length: number | undefined
  if (typeof body === 'string') length = new TextEncoder().encode(body).byteLength
  else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) length = body.byteLength
  if (length === undefined) return init
  headers.set('content-length', String(length))
  return { ...init, headers }
}

export const postJson = (body: unknown, init: RequestInit = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
  ...init,
})

/** Server-sent events in wire form. */
export const sse = (...events: Array<{ event?: string; data?: unknown }>) =>
  events.map(
    ({ event, data }) =>
      `${event ? `event: ${event}\n` : ''}${data === undefined ? '' : `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n`}\n`,
  )

/** A chat.completion.chunk. */
export const chunk = (delta: object, finishReason: string | null = null) => ({
  id: 'chatcmpl-up1',
  object: 'chat.completion.chunk',
  created: 1_760_000_000,
  model: 'rag-model',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
})

/** Waits until `check` holds, polling (for effects on the other side of a connection). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the condition did not hold in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
