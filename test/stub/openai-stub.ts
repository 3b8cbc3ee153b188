/**
 * A local server that speaks the OpenAI chat completions protocol (JSON and SSE, with logprobs)
 * and is scripted per test over HTTP. It is the only stand-in in the test suite: everything the
 * guard does, it does against this real HTTP server.
 *
 * Scripting, from any process (the tests run inside workerd and reach it by fetch):
 *   PUT  /__scenarios/:id            body: StubScript — what calls under /s/:id/ answer
 *   GET  /__scenarios/:id/requests   → the requests received under /s/:id/, in order
 *   GET  /__scenarios/:id/sizes      → method, path, query and body size of each request (for
 *                                      bodies too large to send back whole)
 * A judge or client then uses `${origin}/s/${id}` (or `${origin}/s/${id}/v1`) as its base URL.
 * Calls consume the script's steps in order; the last step repeats.
 *
 * It plays the models a judge meets: one that refuses `logprobs` as OpenAI's reasoning models
 * do (`rejectLogprobs`), one that honours, ignores or refuses `n` (`n`), answers that vary from
 * sample to sample (`samples`), and a reasoning model that thinks before it answers
 * (`reasoningTokens`).
 *
 * It also plays a Cloudflare Access team domain: `PUT /__jwks/:kid` (body: a public JWK) adds a
 * key to the set that `GET /cdn-cgi/access/certs` serves. Keys are only ever added, so tests
 * that run at the same time each use their own `kid` and never disturb one another.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'

export interface StubTopLogprob {
  token: string
  logprob: number
}

export interface StubLine {
  /** The answer word. @default 'True' */
  answer?: string
  /** The number the line carries. @default its position, from 1 */
  number?: number
  /** The answer token's logprob. @default 0 */
  logprob?: number
  /** The answer token's alternatives. @default [{ token: ' ' + answer, logprob }] */
  topLogprobs?: StubTopLogprob[]
}

export interface StubStep {
  /** Wait this long before answering. */
  delayMs?: number
  /** Never answer (the connection stays open until the client gives up). */
  hang?: boolean
  /** Reset the connection without answering. */
  reset?: boolean
  /** @default 200 */
  status?: number
  headers?: Record<string, string>
  /** Send exactly this body (with `contentType`), instead of a chat completion. */
  rawBody?: string
  /** @default 'application/json' for rawBody */
  contentType?: string
  /** Send this JSON value as the body, instead of a chat completion. */
  json?: unknown
  /** The first (or only) token. @default 'True' */
  token?: string
  /** Its logprob. @default 0 */
  logprob?: number
  /**
   * The alternatives for the first token. The server cuts the list to the request's
   * `top_logprobs`, as the API does. @default [{ token, logprob }]
   */
  topLogprobs?: StubTopLogprob[]
  /** `logprobs: null` in the answer, as servers that do not support them send. */
  noLogprobs?: boolean
  /**
   * A per-sentence reply: one line per entry, `n: <answer>`, tokenised as a real tokenizer does
   * (`n`, `:`, ` <answer>`, `\n`), with `topLogprobs` (and `logprob`) at the answer token.
   */
  lines?: StubLine[]
  /** Answer text when there is more than one token (streamed one word per chunk). */
  content?: string
  /**
   * Answer with these tool calls (`finish_reason: "tool_calls"`, no text), as a model driving an
   * agent does; streamed as one `delta.tool_calls` chunk per call.
   */
  toolCalls?: StubToolCall[]
  /** The `model` field of the answer. @default the request's model */
  model?: string
  /** The completion's `id` (an agent keeps messages apart by it). @default 'chatcmpl-stub' */
  id?: string
  /** Play an upstream RAG endpoint instead of the model: answer this, whatever the path. */
  upstream?: UpstreamReply
  /** Send this JSON body with its declared length, but reset the connection after this many bytes. */
  truncateAfter?: number
  /**
   * Compress a JSON completion with gzip (`Content-Encoding: gzip`) when the request's
   * Accept-Encoding allows it, as a web server in front of a model API does.
   */
  gzip?: boolean
  /**
   * Refuse a request that asks for `logprobs` or `top_logprobs` with OpenAI's 400 for reasoning
   * models (`param: "logprobs"`, `code: "unsupported_parameter"`); answer other requests.
   */
  rejectLogprobs?: boolean
  /**
   * What to do with `n` > 1: `honour` it (that many choices, the default), `ignore` it (one
   * choice, as many OpenAI-compatible servers do), or `reject` it with a 400 naming `n`.
   */
  n?: 'honour' | 'ignore' | 'reject'
  /**
   * The content of successive choices, across every call of the scenario (concurrent ones too):
   * each choice takes the next, round and round. Without it, every choice is `token`/`content`.
   */
  samples?: string[]
  /**
   * Play a reasoning model: it spends this many output tokens thinking before its answer, so a
   * budget (`max_completion_tokens`, else `max_tokens`) that leaves no room gets empty content
   * with `finish_reason: "length"`.
   */
  reasoningTokens?: number
}

export interface StubToolCall {
  /** The tool's name. */
  name: string
  /** Its arguments, sent as a JSON string. */
  arguments: unknown
  /** @default `call_<n>` */
  id?: string
}

export interface UpstreamReply {
  /** @default 200 */
  status?: number
  headers?: Record<string, string>
  /** The body, exactly. */
  body?: string
  /** A JSON body (content type application/json). */
  json?: unknown
  /** A body sent in these pieces, `chunkDelayMs` apart (chunked transfer encoding). */
  chunks?: string[]
  chunkDelayMs?: number
  /** Wait this long before answering. */
  delayMs?: number
  /** Reset the connection after this many bytes of the body (declared whole in content-length). */
  truncateAfter?: number
  /** Reset the connection after this many of the chunks. */
  resetAfterChunks?: number
  /**
   * Echo the request: this text with every `{{body}}` replaced by the request body's text, sent
   * as application/json (an endpoint that repeats its input in its answer).
   */
  echo?: string
}

/**
 * A script: one step for every call, steps taken in turn (the last repeating), or rules that
 * pick the step by what the request says (the first rule whose text occurs in the body).
 */
export type StubScript =
  | StubStep
  | { steps: StubStep[] }
  | { rules: Array<{ contains: string; step: StubStep }>; otherwise: StubStep }

export interface RecordedRequest {
  method: string
  path: string
  /** The query string, with its `?`, or ''. */
  query: string
  headers: Record<string, string | string[] | undefined>
  /** The body parsed as JSON, or its text when it is not JSON. */
  body: unknown
  /** The body's text, exactly as received. */
  rawBody: string
  /** Whether the client closed the connection before the answer was complete. */
  abandoned: boolean
  /** Requests of the scenario in progress when this one arrived, itself included. */
  inFlight: number
}

interface Scenario {
  steps: StubStep[]
  rules?: Array<{ contains: string; step: StubStep }>
  calls: number
  requests: RecordedRequest[]
  /** Samples handed out so far (the cursor into a step's `samples`). */
  sampled: number
  /** Requests being answered now. */
  inFlight: number
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    request.on('error', reject)
  })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function tokenLogprobs(
  token: string,
  logprob: number,
  alternatives: StubTopLogprob[],
  topLogprobs: number,
) {
  return {
    token,
    logprob,
    bytes: [...Buffer.from(token, 'utf8')],
    top_logprobs: alternatives.slice(0, topLogprobs).map((alternative) => ({
      ...alternative,
      bytes: [...Buffer.from(alternative.token, 'utf8')],
    })),
  }
}

interface ChatRequest {
  model?: string
  stream?: boolean
  logprobs?: boolean
  top_logprobs?: number
  n?: number
  max_tokens?: number
  max_completion_tokens?: number
  stream_options?: { include_usage?: boolean }
}

/** OpenAI's 400 for a parameter the model does not take. */
function unsupported(param: string, message: string) {
  return { error: { message, type: 'invalid_request_error', param, code: 'unsupported_parameter' } }
}

/** Tokens of the answer: the scripted first token, then the rest of `content` word by word. */
function answerTokens(step: StubStep): string[] {
  const first = step.token ?? 'True'
  if (step.content === undefined) return [first]
  return step.content.match(/\s*\S+/g) ?? [first]
}

/** A per-sentence reply's tokens, each with its logprob and alternatives. */
function lineTokens(lines: readonly StubLine[]) {
  return lines.flatMap((line, index) => {
    const answer = ` ${line.answer ?? 'True'}`
    const logprob = line.logprob ?? 0
    const plain = (token: string) => ({ token, logprob: 0, alternatives: [{ token, logprob: 0 }] })
    return [
      plain(String(line.number ?? index + 1)),
      plain(':'),
      { token: answer, logprob, alternatives: line.topLogprobs ?? [{ token: answer, logprob }] },
      ...(index < lines.length - 1 ? [plain('\n')] : []),
    ]
  })
}

function completionBody(step: StubStep, request: ChatRequest, nextSample = () => '') {
  const logprob = step.logprob ?? 0
  const scripted = step.lines
    ? lineTokens(step.lines)
    : answerTokens(step).map((token, index) => ({
        token,
        logprob: index === 0 ? logprob : 0,
        alternatives:
          index === 0 ? (step.topLogprobs ?? [{ token, logprob }]) : [{ token, logprob: 0 }],
      }))
  const tokens = scripted.map(({ token }) => token)
  const logprobs =
    request.logprobs && !step.noLogprobs
      ? {
          content: scripted.map(({ token, logprob, alternatives }) =>
            tokenLogprobs(token, logprob, alternatives, request.top_logprobs ?? 0),
          ),
          refusal: null,
        }
      : null
  const toolCalls = step.toolCalls?.map((call, index) => ({
    id: call.id ?? `call_${index}`,
    type: 'function' as const,
    function: { name: call.name, arguments: JSON.stringify(call.arguments) },
  }))
  const count = (step.n ?? 'honour') === 'honour' ? Math.max(1, request.n ?? 1) : 1
  const budget = request.max_completion_tokens ?? request.max_tokens ?? Number.POSITIVE_INFINITY
  const thinking = step.reasoningTokens ?? 0
  const choices = Array.from({ length: count }, (_, index) => {
    const text = step.samples ? nextSample() : tokens.join('')
    const answerLength = step.samples ? Math.max(1, text.trim().split(/\s+/).length) : tokens.length
    const cut = thinking > 0 && budget <= thinking
    if (toolCalls) {
      const message = { role: 'assistant', content: null, refusal: null, tool_calls: toolCalls }
      return {
        choice: { index, message, logprobs: null, finish_reason: 'tool_calls' },
        used: tokens.length,
      }
    }
    return {
      choice: {
        index,
        message: { role: 'assistant', content: cut ? '' : text, refusal: null },
        logprobs: step.samples || cut ? null : logprobs,
        finish_reason:
          cut || (!step.samples && step.content === undefined && !step.lines) ? 'length' : 'stop',
      },
      used: cut ? budget : thinking + answerLength,
    }
  })
  const completionTokens = choices.reduce((total, { used }) => total + used, 0)
  return {
    id: step.id ?? 'chatcmpl-stub',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: step.model ?? request.model ?? 'stub-model',
    choices: choices.map(({ choice }) => choice),
    usage: {
      prompt_tokens: 42,
      completion_tokens: completionTokens,
      total_tokens: 42 + completionTokens,
      ...(thinking ? { completion_tokens_details: { reasoning_tokens: thinking * count } } : {}),
    },
  }
}

async function sendStream(
  response: ServerResponse,
  step: StubStep,
  request: ChatRequest,
): Promise<void> {
  const body = completionBody(step, request)
  const choice = body.choices[0]!
  const base = {
    id: body.id,
    object: 'chat.completion.chunk',
    created: body.created,
    model: body.model,
  }
  response.writeHead(step.status ?? 200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    ...step.headers,
  })
  const send = (value: unknown) => response.write(`data: ${JSON.stringify(value)}\n\n`)
  send({
    ...base,
    choices: [
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    ],
  })
  const { tool_calls: toolCalls } = choice.message as { tool_calls?: unknown[] }
  // A tool call streams as deltas of `tool_calls`, each with its index (no text).
  for (const [index, call] of (toolCalls ?? []).entries()) {
    send({
      ...base,
      choices: [
        {
          index: 0,
          delta: { tool_calls: [{ index, ...(call as object) }] },
          logprobs: null,
          finish_reason: null,
        },
      ],
    })
  }
  const tokens = toolCalls
    ? []
    : step.lines
      ? lineTokens(step.lines).map(({ token }) => token)
      : answerTokens(step)
  for (const [index, token] of tokens.entries()) {
    const logprobs = choice.logprobs
      ? { content: [choice.logprobs.content[index]], refusal: null }
      : null
    send({
      ...base,
      choices: [{ index: 0, delta: { content: token }, logprobs, finish_reason: null }],
    })
  }
  send({
    ...base,
    choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: choice.finish_reason }],
  })
  if (request.stream_options?.include_usage) send({ ...base, choices: [], usage: body.usage })
  response.end('data: [DONE]\n\n')
}

async function reply(
  response: ServerResponse,
  upstream: UpstreamReply,
  requestText: string,
): Promise<void> {
  if (upstream.delayMs) await sleep(upstream.delayMs)
  if (upstream.echo !== undefined) {
    response.writeHead(upstream.status ?? 200, {
      'content-type': 'application/json',
      ...upstream.headers,
    })
    response.end(upstream.echo.split('{{body}}').join(requestText))
    return
  }
  if (upstream.truncateAfter !== undefined) {
    const body = Buffer.from(
      upstream.json !== undefined ? JSON.stringify(upstream.json) : (upstream.body ?? ''),
    )
    response.writeHead(upstream.status ?? 200, {
      'content-type': 'application/json',
      'content-length': String(body.length),
      ...upstream.headers,
    })
    response.write(body.subarray(0, upstream.truncateAfter))
    await sleep(10)
    response.socket?.destroy()
    return
  }
  const headers = {
    ...(upstream.json !== undefined ? { 'content-type': 'application/json' } : {}),
    ...upstream.headers,
  }
  response.writeHead(upstream.status ?? 200, headers)
  if (upstream.chunks) {
    for (const [index, chunk] of upstream.chunks.entries()) {
      if (response.destroyed) return
      if (index === upstream.resetAfterChunks) {
        await sleep(10)
        response.socket?.destroy()
        return
      }
      response.write(chunk)
      if (upstream.chunkDelayMs) await sleep(upstream.chunkDelayMs)
    }
    response.end()
    return
  }
  response.end(upstream.json !== undefined ? JSON.stringify(upstream.json) : (upstream.body ?? ''))
}

async function answer(
  response: ServerResponse,
  step: StubStep,
  request: ChatRequest,
  requestText: string,
  acceptEncoding = '',
  nextSample?: () => string,
): Promise<void> {
  if (step.delayMs) await sleep(step.delayMs)
  if (step.hang) return
  if (step.reset) {
    response.socket?.destroy()
    return
  }
  if (step.upstream) return reply(response, step.upstream, requestText)
  const refuse = (body: unknown) =>
    response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  if (step.rejectLogprobs && (request.logprobs || request.top_logprobs !== undefined)) {
    return void refuse(
      unsupported(
        'logprobs',
        "Unsupported parameter: 'logprobs' is not supported with this model.",
      ),
    )
  }
  if (step.n === 'reject' && (request.n ?? 1) > 1) {
    return void refuse({
      error: {
        message: "'n' : number must be at most 1",
        type: 'invalid_request_error',
        param: 'n',
        code: null,
      },
    })
  }
  if (step.rawBody !== undefined) {
    response.writeHead(step.status ?? 200, {
      'content-type': step.contentType ?? 'application/json',
      ...step.headers,
    })
    response.end(step.rawBody)
    return
  }
  if (step.json !== undefined || (step.status ?? 200) >= 400) {
    const json = step.json ?? {
      error: { message: `stub error ${step.status}`, type: 'stub_error', code: null },
    }
    response.writeHead(step.status ?? 200, { 'content-type': 'application/json', ...step.headers })
    response.end(JSON.stringify(json))
    return
  }
  if (step.truncateAfter !== undefined) {
    const body = Buffer.from(JSON.stringify(completionBody(step, request, nextSample)))
    response.writeHead(step.status ?? 200, {
      'content-type': 'application/json',
      'content-length': String(body.length),
    })
    response.write(body.subarray(0, step.truncateAfter))
    await sleep(10)
    response.socket?.destroy()
    return
  }
  if (request.stream) return sendStream(response, step, request)
  const body = JSON.stringify(completionBody(step, request, nextSample))
  if (step.gzip && /\bgzip\b/.test(acceptEncoding)) {
    response.writeHead(step.status ?? 200, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      ...step.headers,
    })
    response.end(gzipSync(body))
    return
  }
  response.writeHead(step.status ?? 200, { 'content-type': 'application/json', ...step.headers })
  response.end(body)
}

export interface OpenAIStub {
  origin: string
  close(): Promise<void>
}

/** Starts the stub on 127.0.0.1 and a free port. */
export async function startOpenAIStub(): Promise<OpenAIStub> {
  const scenarios = new Map<string, Scenario>()
  const scenario = (id: string): Scenario => {
    let found = scenarios.get(id)
    if (!found) {
      found = { steps: [{}], calls: 0, requests: [], sampled: 0, inFlight: 0 }
      scenarios.set(id, found)
    }
    return found
  }

  // Public keys served as a Cloudflare Access team domain's certs, by kid.
  const accessKeys = new Map<string, unknown>()

  const server: Server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? '/', 'http://stub')
      const jwk = url.pathname.match(/^\/__jwks\/([^/]+)$/)
      if (jwk && request.method === 'PUT') {
        accessKeys.set(decodeURIComponent(jwk[1]!), JSON.parse(await readBody(request)))
        response.writeHead(204).end()
        return
      }
      if (url.pathname === '/cdn-cgi/access/certs' && request.method === 'GET') {
        const keys = [...accessKeys.values()]
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ keys }))
        return
      }
      const control = url.pathname.match(/^\/__scenarios\/([^/]+)(\/requests|\/sizes)?$/)
      if (control) {
        const id = decodeURIComponent(control[1]!)
        if (request.method === 'GET' && control[2] === '/sizes') {
          const sizes = scenario(id).requests.map(({ method, path, query, rawBody }) => ({
            method,
            path,
            query,
            bodyBytes: Buffer.byteLength(rawBody, 'utf8'),
          }))
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(sizes))
        } else if (request.method === 'PUT' && !control[2]) {
          const script = JSON.parse(await readBody(request)) as StubScript
          const fresh = { calls: 0, requests: [], sampled: 0, inFlight: 0 }
          scenarios.set(
            id,
            'rules' in script
              ? { steps: [script.otherwise], rules: script.rules, ...fresh }
              : { steps: 'steps' in script ? script.steps : [script], ...fresh },
          )
          response.writeHead(204).end()
        } else if (request.method === 'GET' && control[2]) {
          response
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify(scenario(id).requests))
        } else {
          response.writeHead(405).end()
        }
        return
      }
      const call = url.pathname.match(/^\/s\/([^/]+)(\/.*)$/)
      if (!call) {
        response
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: 'no scenario in path' } }))
        return
      }
      const current = scenario(decodeURIComponent(call[1]!))
      const text = await readBody(request)
      let body: unknown = text
      try {
        body = JSON.parse(text)
        JSON.stringify(body) // too deep to write back out: keep it as text
      } catch {
        body = text
      }
      current.requests.push({
        method: request.method ?? 'GET',
        path: call[2]!,
        query: url.search,
        headers: request.headers,
        body,
        rawBody: text,
        abandoned: false,
        inFlight: ++current.inFlight,
      })
      const recorded = current.requests[current.requests.length - 1]!
      response.on('close', () => {
        current.inFlight--
        if (!response.writableFinished) recorded.abandoned = true
      })
      const step =
        current.rules?.find((rule) => text.includes(rule.contains))?.step ??
        current.steps[Math.min(current.calls, current.steps.length - 1)] ??
        {}
      current.calls += 1
      if (!step.upstream && !call[2]!.endsWith('/chat/completions')) {
        response
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: `no route ${call[2]}` } }))
        return
      }
      const samples = step.samples ?? []
      await answer(
        response,
        step,
        (typeof body === 'object' && body !== null ? body : {}) as ChatRequest,
        text,
        String(request.headers['accept-encoding'] ?? ''),
        () => samples[current.sampled++ % samples.length] ?? '',
      )
    } catch (error) {
      if (response.headersSent) response.destroy()
      else
        response
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: String(error) } }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Scripts a scenario of a running stub from Node (the bench and load scripts). */
export async function scriptScenario(
  origin: string,
  id: string,
  script: StubScript,
): Promise<void> {
  const response = await fetch(`${origin}/__scenarios/${encodeURIComponent(id)}`, {
    method: 'PUT',
    body: JSON.stringify(script),
  })
  if (response.status !== 204)
    throw new Error(`scripting the stub scenario ${id} failed: ${response.status}`)
}
