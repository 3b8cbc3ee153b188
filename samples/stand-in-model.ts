/**
 * A stand-in for the OpenAI API, so the demo and the calibration walk-through run with no key
 * and no network. IT IS NOT A LANGUAGE MODEL, and its scores say nothing about how well a real
 * judge separates good context from bad: they only make the flow visible.
 *
 * It speaks the chat completions protocol (JSON and server-sent events, with logprobs):
 * - a judge call (the RAG Guard judge prompt) gets P(True) = how much of the question's
 *   vocabulary the documents contain (sufficiency), or, for the least covered sentence of the
 *   answer, of that sentence's vocabulary (groundedness: one unsupported sentence is enough),
 *   through a logistic curve. A per-sentence groundedness prompt (numbered sentences, one line
 *   each asked for) is answered `1: True`, `2: False`, … with each sentence's own P(True) in the
 *   `top_logprobs` at its line's answer token, or per sample line when sampling.
 *   With `logprobs: true` it is answered True or False with that
 *   P(True) in `top_logprobs` (the logprobs estimator); without, it gives `n` answers (1 by
 *   default), "True" or "False", True for a share P(True) of them (the sampling estimator). The
 *   answers are not random: sample k of a question is True when frac(h + k·0.618…) < P(True), h
 *   a hash of question, documents and answer — a Weyl sequence, so the share of True among any N
 *   answers in a row stays close to P(True), and a fresh stand-in gives the same scores for the
 *   same data;
 * - the model `stand-in-reasoning` plays a reasoning model: it refuses `logprobs` with OpenAI's
 *   400, so `JUDGE_ESTIMATOR = "auto"` is seen turning to sampling;
 * - any other call is answered with the sentence of the system message that shares the most
 *   words with the question ("I don't know." when none does), one word per streamed chunk. To
 *   show the groundedness check at work, it invents a detail for a question about families:
 *   the documents never mention them.
 *
 * Run alone: `npx tsx samples/stand-in-model.ts [port]`.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { words } from './rag-service/retriever'

export const STAND_IN_NOTICE =
  'The stand-in model is NOT a language model: its True/False probabilities come from word overlap between question and documents, and only show how the guard flows.'

export const STAND_IN_MODEL = 'stand-in-word-overlap'

/** A stand-in for a reasoning model, which refuses logprobs. */
export const STAND_IN_REASONING_MODEL = 'stand-in-reasoning'

interface ChatRequest {
  model?: string
  messages?: Array<{ role?: string; content?: unknown }>
  tools?: Array<{ function?: { name?: string; parameters?: { properties?: object } } }>
  logprobs?: boolean
  top_logprobs?: number
  n?: number
  max_tokens?: number
  max_completion_tokens?: number
  stream?: boolean
  stream_options?: { include_usage?: boolean }
}

const text = (content: unknown): string =>
  typeof content === 'string'
    ? content
    : Array.isArray(content)
      ? content.map((part) => (typeof part?.text === 'string' ? part.text : '')).join('\n')
      : ''

/** The share of the question's words that appear in the documents, in [0, 1]. */
export function coverage(question: string, documents: string[]): number {
  const asked = new Set(words(question))
  if (asked.size === 0) return 0
  const known = new Set(words(documents.join('\n')))
  let found = 0
  for (const word of asked) if (known.has(word)) found += 1
  return found / asked.size
}

/** Coverage → P(True): about 0.5 at 60% coverage, 0.98 at full coverage, 0.05 at a third. */
export function standInProbability(share: number): number {
  const p = 1 / (1 + Math.exp(-10 * (share - 0.6)))
  return Math.min(Math.max(p, 1e-6), 1 - 1e-6)
}

/** Reads question, documents and answer out of the RAG Guard judge prompt, by its boundary markers. */
function judgeInput(prompt: string): {
  question: string
  documents: string[]
  answer?: string
  /** A per-sentence prompt: the answer's numbered sentences. */
  sentences?: string[]
} {
  const boundary = prompt.match(/<<<QUESTION ([0-9a-f]+)>>>/)?.[1]
  if (!boundary) return { question: prompt, documents: [] }
  const blocks = [
    ...prompt.matchAll(
      new RegExp(`<<<([A-Z0-9 ]+) ${boundary}>>>\\n([\\s\\S]*?)\\n<<<END \\1 ${boundary}>>>`, 'g'),
    ),
  ]
  const answer = blocks.find((block) => block[1] === 'ANSWER')?.[2]
  const marker = new RegExp(`<<<SENTENCE \\d+ ${boundary}>>> ?`)
  const sentences =
    answer !== undefined && marker.test(answer)
      ? answer
          .split(marker)
          .slice(1)
          .map((sentence) => sentence.trim())
      : undefined
  return {
    question: blocks.find((block) => block[1] === 'QUESTION')?.[2] ?? '',
    documents: blocks
      .filter((block) => block[1]?.startsWith('DOCUMENT'))
      .map((block) => block[2] ?? ''),
    answer,
    ...(sentences ? { sentences } : {}),
  }
}

/** A detail no document supports, added to answers about families (see the header). */
export const INVENTED_DETAIL = 'A family of four rides for $30 a day.'

function bestSentence(question: string, context: string): string {
  const asked = new Set(words(question))
  let best = { sentence: "I don't know.", hits: 0 }
  for (const sentence of context.split(/(?<=[.!?])\s+/)) {
    const hits = new Set(words(sentence).filter((word) => asked.has(word))).size
    if (hits > best.hits) best = { sentence: sentence.trim(), hits }
  }
  return best.sentence
}

/** The judge prompt's last user message, when the request is a judge call. */
function judgePrompt(request: ChatRequest): string | undefined {
  const prompt = text(request.messages?.findLast((message) => message.role === 'user')?.content)
  return /<<<QUESTION [0-9a-f]+>>>/.test(prompt) ? prompt : undefined
}

const GOLDEN = (Math.sqrt(5) - 1) / 2

/** Samples drawn so far per question and documents (bounded: cleared past 10,000 of them). */
const drawn = new Map<string, number>()

/** FNV-1a, as a fraction of 2^32. */
function fraction(text: string): number {
  let hash = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash / 2 ** 32
}

/** `count` answers to a judge prompt, True for a share P(True) of them (a Weyl sequence). */
export function sampledAnswers(prompt: string, count: number): string[] {
  const { question, documents, answer, sentences } = judgeInput(prompt)
  const key = JSON.stringify([question, documents, answer ?? null])
  if (drawn.size > 10_000) drawn.clear()
  const first = drawn.get(key) ?? 0
  drawn.set(key, first + count)
  const word = (p: number, salt: string, k: number) =>
    (fraction(key + salt) + (first + k) * GOLDEN) % 1 < p ? 'True' : 'False'
  if (sentences) {
    // One line per sentence, each drawn with its own P(True).
    const ps = sentences.map((sentence) => standInProbability(coverage(sentence, documents)))
    return Array.from({ length: count }, (_, k) =>
      ps.map((p, index) => `${index + 1}: ${word(p, String(index), k)}`).join('\n'),
    )
  }
  const p = judgeProbability(prompt)
  return Array.from({ length: count }, (_, k) => word(p, '', k))
}

/**
 * The stand-in's P(True) for a judge prompt. Sufficiency: how much of the question's vocabulary
 * the documents hold. Groundedness: the same for the answer's least covered sentence.
 */
function judgeProbability(prompt: string): number {
  const { question, documents, answer } = judgeInput(prompt)
  const share =
    answer === undefined
      ? coverage(question, documents)
      : Math.min(
          ...answer
            .split(/(?<=[.!?])\s+/)
            .filter((sentence) => words(sentence).length > 0)
            .map((sentence) => coverage(sentence, documents)),
          1,
        )
  return standInProbability(share)
}

/** A per-sentence reply: `i: True|False` lines, each answer token with its sentence's P(True). */
function sentenceLines(request: ChatRequest, sentences: string[], documents: string[]) {
  const plain = (token: string) => ({
    token,
    logprob: 0,
    bytes: null,
    top_logprobs: request.top_logprobs ? [{ token, logprob: 0, bytes: null }] : [],
  })
  const content = sentences.flatMap((sentence, index) => {
    const p = standInProbability(coverage(sentence, documents))
    const alternatives = [
      { token: ' True', logprob: Math.log(p), bytes: null },
      { token: ' False', logprob: Math.log(1 - p), bytes: null },
    ].sort((a, b) => b.logprob - a.logprob)
    return [
      plain(String(index + 1)),
      plain(':'),
      {
        ...alternatives[0]!,
        top_logprobs: alternatives.slice(0, Math.max(request.top_logprobs ?? 0, 0)),
      },
      ...(index < sentences.length - 1 ? [plain('\n')] : []),
    ]
  })
  return {
    content: content.map((token) => token.token).join(''),
    logprobs: { content, refusal: null },
    finishReason: 'stop',
  }
}

function judgeAnswer(request: ChatRequest, prompt: string) {
  const { sentences, documents } = judgeInput(prompt)
  if (sentences) return sentenceLines(request, sentences, documents)
  const p = judgeProbability(prompt)
  const alternatives = [
    { token: 'True', logprob: Math.log(p) },
    { token: 'False', logprob: Math.log(1 - p) },
  ].sort((a, b) => b.logprob - a.logprob)
  const chosen = alternatives[0]!
  return {
    content: chosen.token,
    logprobs: {
      content: [
        {
          ...chosen,
          bytes: null,
          top_logprobs: alternatives
            .slice(0, Math.max(request.top_logprobs ?? 0, 0))
            .map((alternative) => ({ ...alternative, bytes: null })),
        },
      ],
      refusal: null,
    },
    finishReason: 'length',
  }
}

function generationAnswer(request: ChatRequest) {
  const messages = request.messages ?? []
  const question = text(messages.findLast((message) => message.role === 'user')?.content)
  const context = messages
    .filter((message) => message.role === 'system')
    .map((message) => text(message.content))
    .join('\n')
  const sentence = bestSentence(question, context)
  const content = /\bfamil(?:y|ies)\b/i.test(question) ? `${sentence} ${INVENTED_DETAIL}` : sentence
  return { content, logprobs: null, finishReason: 'stop' }
}

/**
 * An agent's call (one that offers tools): before any tool has answered since the last user
 * message, it calls the first tool with the question, as an agent retrieves first; after, it
 * answers as any other call, with the tools' results as context beside the system message.
 */
function agentAnswer(request: ChatRequest) {
  const messages = request.messages ?? []
  const asked = messages.findLastIndex((message) => message.role === 'user')
  const tool = request.tools?.[0]?.function
  if (!tool?.name) return generationAnswer(request)
  if (messages.slice(asked + 1).some((message) => message.role === 'tool')) {
    const context = messages.map((message) =>
      message.role === 'tool' ? { ...message, role: 'system' } : message,
    )
    return generationAnswer({ ...request, messages: context })
  }
  const argument = Object.keys(tool.parameters?.properties ?? {})[0] ?? 'query'
  const question = text(messages[asked]?.content)
  return {
    content: null,
    toolCalls: [
      {
        id: `call_standin${Date.now().toString(36)}`,
        type: 'function' as const,
        function: { name: tool.name, arguments: JSON.stringify({ [argument]: question }) },
      },
    ],
    logprobs: null,
    finishReason: 'tool_calls',
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => (body += chunk))
    request.on('end', () => resolve(body))
    request.on('error', reject)
  })
}

export interface StandInServer {
  origin: string
  baseURL: string
  close(): Promise<void>
}

/** Starts the stand-in on 127.0.0.1 (port 0: any free port). */
export async function startStandInModel(port = 0): Promise<StandInServer> {
  const server: Server = createServer(async (incoming, response) => {
    const json = (status: number, value: unknown) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
    if (incoming.method !== 'POST' || !incoming.url?.endsWith('/chat/completions')) {
      return json(404, {
        error: {
          message: 'the stand-in model only serves POST /v1/chat/completions',
          type: 'invalid_request_error',
        },
      })
    }
    let request: ChatRequest
    try {
      request = JSON.parse(await readBody(incoming)) as ChatRequest
    } catch {
      return json(400, {
        error: { message: 'the body is not JSON', type: 'invalid_request_error' },
      })
    }
    const prompt = judgePrompt(request)
    if (prompt && request.logprobs && request.model === STAND_IN_REASONING_MODEL) {
      return json(400, {
        error: {
          message: "Unsupported parameter: 'logprobs' is not supported with this model.",
          type: 'invalid_request_error',
          param: 'logprobs',
          code: 'unsupported_parameter',
        },
      })
    }
    const answer = prompt
      ? request.logprobs
        ? judgeAnswer(request, prompt)
        : { sampled: sampledAnswers(prompt, Math.max(1, request.n ?? 1)) }
      : agentAnswer(request)
    const base = {
      id: `chatcmpl-standin${Date.now().toString(36)}`,
      created: Math.floor(Date.now() / 1000),
      model: request.model?.startsWith('stand-in') ? request.model : STAND_IN_MODEL,
      system_fingerprint: 'stand-in',
    }
    const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }

    if ('sampled' in answer) {
      return json(200, {
        ...base,
        object: 'chat.completion',
        choices: answer.sampled.map((content, index) => ({
          index,
          message: { role: 'assistant', content, refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        })),
        usage,
      })
    }
    if (!request.stream) {
      return json(200, {
        ...base,
        object: 'chat.completion',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: answer.content,
              refusal: null,
              ...('toolCalls' in answer ? { tool_calls: answer.toolCalls } : {}),
            },
            logprobs: answer.logprobs,
            finish_reason: answer.finishReason,
          },
        ],
        usage,
      })
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const send = (choices: unknown[], extra: object = {}) =>
      response.write(
        `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...extra })}\n\n`,
      )
    send([
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
    ])
    if ('toolCalls' in answer && answer.toolCalls) {
      const toolCalls = answer.toolCalls.map((call, index) => ({ index, ...call }))
      send([{ index: 0, delta: { tool_calls: toolCalls }, logprobs: null, finish_reason: null }])
    }
    for (const token of answer.content?.match(/\s*\S+/g) ?? [])
      send([{ index: 0, delta: { content: token }, logprobs: null, finish_reason: null }])
    send([{ index: 0, delta: {}, logprobs: null, finish_reason: answer.finishReason }])
    if (request.stream_options?.include_usage) send([], { usage })
    response.end('data: [DONE]\n\n')
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    baseURL: `${origin}/v1`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

// Run directly: serve until stopped.
if (import.meta.url === `file://${process.argv[1]}`) {
  void startStandInModel(Number(process.argv[2] ?? 0)).then((server) =>
    console.log(
      `${STAND_IN_NOTICE}\nServing the OpenAI chat completions protocol at ${server.baseURL}`,
    ),
  )
}
