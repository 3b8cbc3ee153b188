/**
 * Where can a streamed answer carry the guard's verdict without any client noticing?
 *
 *   npm run probe:clients               the matrix, as a Markdown table
 *   npm run probe:clients -- --bytes    also print each candidate's bytes
 *   (or: npx tsx test/clients/probe-annotation.ts [--bytes])
 *
 * A local HTTP server sends a fixed openai-chat stream and a fixed LangServe stream, either as
 * they are ("none") or with the verdict added in one candidate shape. Each real client library
 * reads every variant; its observation (text, chunks, finish reason, usage, errors) is compared
 * with what it observed from the stream without the verdict:
 *
 *   ignored   the client shows its caller exactly what it shows without the verdict
 *   differs   no error, but the caller sees something more or else (which, in brief)
 *   breaks    the client reports an error or an error finish
 *
 * curl prints every byte, so it shows every candidate; its column says how.
 * Nothing here talks to the guard: this is about the clients alone.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import {
  aiStreamText,
  aiUIMessageStream,
  chatOpenAIStream,
  curl,
  openaiCreate,
  openaiCreateStream,
  openaiHelperStream,
  remoteStream,
  type ChatCase,
} from './observe'
import { verdictFetch, verdictFromSSE } from './verdict'

const VERDICT = { verdict: 'flag', score: 0.43, reason: null, mode: 'enforce' }
const VERDICT_JSON = JSON.stringify(VERDICT)

// ---------------------------------------------------------------------------------------------
// openai-chat: chat.completion.chunk events, a usage chunk when asked, then `data: [DONE]`.

const base = {
  id: 'chatcmpl-probe',
  object: 'chat.completion.chunk',
  created: 1_760_000_000,
  model: 'rag-model',
  system_fingerprint: 'fp_probe',
}
const chunk = (delta: object, finish: string | null = null) => ({
  ...base,
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
})
const USAGE = { prompt_tokens: 31, completion_tokens: 5, total_tokens: 36 }

function chatChunks(includeUsage: boolean): object[] {
  return [
    chunk({ role: 'assistant', content: '', refusal: null }),
    chunk({ content: 'A day pass ' }),
    chunk({ content: 'costs ' }),
    chunk({ content: '$12.' }),
    chunk({}, 'stop'),
    ...(includeUsage ? [{ ...base, choices: [], usage: USAGE }] : []),
  ]
}

const data = (value: unknown) =>
  `data: ${typeof value === 'string' ? value : JSON.stringify(value)}\n\n`
const DONE = 'data: [DONE]\n\n'
const verdictChunk = { ...base, choices: [], rag_guard: VERDICT }

/** Each candidate: the stream's events (as wire text), given the chunks without the verdict. */
const CHAT_CANDIDATES: Record<string, { label: string; events: (chunks: object[]) => string[] }> = {
  none: { label: 'no verdict (baseline)', events: (c) => [...c.map(data), DONE] },
  'event-after-done': {
    label: '`event: rag_guard` + `data: {verdict}` after [DONE] (current)',
    events: (c) => [...c.map(data), DONE, `event: rag_guard\n${data(VERDICT)}`],
  },
  'event-before-done': {
    label: '`event: rag_guard` + `data: {verdict}` before [DONE]',
    events: (c) => [...c.map(data), `event: rag_guard\n${data(VERDICT)}`, DONE],
  },
  'comment-after-done': {
    label: '`: rag-guard {verdict}` comment after [DONE]',
    events: (c) => [...c.map(data), DONE, `: rag-guard ${VERDICT_JSON}\n\n`],
  },
  'comment-after-done-no-blank': {
    label: '`: rag-guard {verdict}` comment after [DONE], no blank line after it',
    events: (c) => [...c.map(data), DONE, `: rag-guard ${VERDICT_JSON}\n`],
  },
  'comment-before-done': {
    label: '`: rag-guard {verdict}` comment before [DONE]',
    events: (c) => [...c.map(data), `: rag-guard ${VERDICT_JSON}\n\n`, DONE],
  },
  'comment-after-unterminated-done': {
    label:
      'the endpoint ends with `data: [DONE]` and no line end; then `\\n: rag-guard {verdict}` (line end first)',
    events: (c) => [...c.map(data), 'data: [DONE]', `\n: rag-guard ${VERDICT_JSON}\n\n`],
  },
  'comment-glued-to-unterminated-done': {
    label:
      'the endpoint ends with `data: [DONE]` and no line end; then `: rag-guard {verdict}` glued on',
    events: (c) => [...c.map(data), 'data: [DONE]', `: rag-guard ${VERDICT_JSON}\n\n`],
  },
  'chunk-before-done': {
    label: 'extra chunk `choices: []` + top-level `rag_guard` before [DONE]',
    events: (c) => [...c.map(data), data(verdictChunk), DONE],
  },
  'chunk-after-done': {
    label: 'extra chunk `choices: []` + top-level `rag_guard` after [DONE]',
    events: (c) => [...c.map(data), DONE, data(verdictChunk)],
  },
  'named-chunk-after-done': {
    label: '`event: rag_guard` + that extra chunk as data, after [DONE]',
    events: (c) => [...c.map(data), DONE, `event: rag_guard\n${data(verdictChunk)}`],
  },
  'field-in-last-chunk': {
    label: 'top-level `rag_guard` field added to the last chunk before [DONE]',
    events: (c) => [
      ...c.slice(0, -1).map(data),
      data({ ...c[c.length - 1], rag_guard: VERDICT }),
      DONE,
    ],
  },
  'data-after-done': {
    label: 'bare `data: {verdict}` after [DONE]',
    events: (c) => [...c.map(data), DONE, data(VERDICT)],
  },
}

// ---------------------------------------------------------------------------------------------
// LangServe /stream, as LangServe (sse_starlette) writes it: CRLF line ends, `event: end` last.

const crlf = (event: string, value?: unknown) =>
  `event: ${event}\r\n${value === undefined ? '' : `data: ${JSON.stringify(value)}\r\n`}\r\n`
const LANGSERVE_EVENTS = [
  crlf('metadata', { run_id: '6f1c0b9e-0000-4000-8000-000000000001' }),
  crlf('data', { input: 'What does a day pass cost?' }),
  crlf('data', {
    context: [
      {
        page_content: 'A day pass costs $12.',
        metadata: { id: 'passes' },
        type: 'Document',
      },
    ],
  }),
  crlf('data', { answer: 'A day pass ' }),
  crlf('data', { answer: 'costs $12.' }),
]
const END = crlf('end')

const LANGSERVE_CANDIDATES: Record<string, { label: string; events: string[] }> = {
  none: { label: 'no verdict (baseline)', events: [...LANGSERVE_EVENTS, END] },
  'event-after-end': {
    label: '`event: rag_guard` + `data: {verdict}` after `event: end` (current)',
    events: [...LANGSERVE_EVENTS, END, `event: rag_guard\n${data(VERDICT)}`],
  },
  'event-before-end': {
    label: '`event: rag_guard` + `data: {verdict}` before `event: end`',
    events: [...LANGSERVE_EVENTS, `event: rag_guard\n${data(VERDICT)}`, END],
  },
  'comment-after-end': {
    label: '`: rag-guard {verdict}` comment after `event: end`',
    events: [...LANGSERVE_EVENTS, END, `: rag-guard ${VERDICT_JSON}\n\n`],
  },
  'comment-before-end': {
    label: '`: rag-guard {verdict}` comment before `event: end`',
    events: [...LANGSERVE_EVENTS, `: rag-guard ${VERDICT_JSON}\n\n`, END],
  },
  'metadata-after-end': {
    label: 'a second `event: metadata` with `{"rag_guard": {verdict}}` after `event: end`',
    events: [...LANGSERVE_EVENTS, END, `event: metadata\n${data({ rag_guard: VERDICT })}`],
  },
  'metadata-before-end': {
    label: 'a second `event: metadata` with `{"rag_guard": {verdict}}` before `event: end`',
    events: [...LANGSERVE_EVENTS, `event: metadata\n${data({ rag_guard: VERDICT })}`, END],
  },
  'end-with-data': {
    label: '`event: end` carrying `data: {"rag_guard": {verdict}}`',
    events: [...LANGSERVE_EVENTS, `event: end\n${data({ rag_guard: VERDICT })}`],
  },
  'data-part-before-end': {
    label: '`event: data` with `{"rag_guard": {verdict}}` before `event: end`',
    events: [...LANGSERVE_EVENTS, `event: data\n${data({ rag_guard: VERDICT })}`, END],
  },
}

// ---------------------------------------------------------------------------------------------
// The server: one write per event, as a streaming endpoint sends them.

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (part: string) => (body += part))
    request.on('end', () => resolve(body))
    request.on('error', reject)
  })
}

const completion = {
  id: 'chatcmpl-probe',
  object: 'chat.completion',
  created: base.created,
  model: base.model,
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'A day pass costs $12.', refusal: null },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: USAGE,
}

async function startProbeServer() {
  const server = createServer(async (request, response) => {
    const body = await readBody(request)
    const path = new URL(request.url ?? '/', 'http://probe').pathname
    let events: string[] | undefined
    const chat = path.match(/^\/oa\/([^/]+)\/v1\/chat\/completions$/)
    const langserve = path.match(/^\/ls\/([^/]+)\/rag\/stream$/)
    if (chat && CHAT_CANDIDATES[chat[1]!]) {
      const parsed = JSON.parse(body) as {
        stream?: boolean
        stream_options?: { include_usage?: boolean }
      }
      if (!parsed.stream) {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(JSON.stringify(completion))
        return
      }
      events = CHAT_CANDIDATES[chat[1]!]!.events(
        chatChunks(parsed.stream_options?.include_usage === true),
      )
    } else if (langserve && LANGSERVE_CANDIDATES[langserve[1]!]) {
      events = LANGSERVE_CANDIDATES[langserve[1]!]!.events
    }
    if (!events) {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
    for (const event of events) {
      response.write(event)
      await new Promise((resolve) => setImmediate(resolve))
    }
    response.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

// ---------------------------------------------------------------------------------------------
// Comparing observations.

const short = (value: unknown, width = 90) => {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined')
  return text.length > width ? `${text.slice(0, width - 1)}…` : text
}

/** The first place two JSON values differ, as `path: baseline → candidate`. */
function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (isDeepStrictEqual(a, b)) return undefined
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let index = 0; index < Math.max(a.length, b.length); index++) {
      if (index >= a.length) return `${path}[${index}] extra: ${short(b[index], 120)}`
      if (index >= b.length) return `${path}[${index}] missing: ${short(a[index])}`
      const found = firstDifference(a[index], b[index], `${path}[${index}]`)
      if (found) return found
    }
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    for (const key of keys) {
      const found = firstDifference(
        (a as Record<string, unknown>)[key],
        (b as Record<string, unknown>)[key],
        `${path}.${key}`,
      )
      if (found) return found
    }
  }
  return `${path || '(value)'}: ${short(a, 60)} → ${short(b, 120)}`
}

interface Verdict {
  kind: 'ignored' | 'differs' | 'breaks'
  how: string
}

function judge(baseline: object, observed: object, error: (o: object) => string | undefined) {
  const failure = error(observed)
  if (failure && !error(baseline)) return { kind: 'breaks', how: short(failure, 160) } as Verdict
  const difference = firstDifference(baseline, observed)
  return difference
    ? ({ kind: 'differs', how: difference } as Verdict)
    : ({ kind: 'ignored', how: '' } as Verdict)
}

const anyError = (o: object) => {
  const record = o as {
    error?: string
    errors?: string[]
    finishReason?: string | null
    chunks?: unknown[]
  }
  if (record.error) return record.error
  if (record.errors?.length) return record.errors.join(' | ')
  if (record.finishReason === 'error') return 'finishReason "error"'
  const uiError = record.chunks?.find(
    (chunk) => typeof chunk === 'string' && chunk.startsWith('error:'),
  )
  return typeof uiError === 'string' ? `UI stream chunk ${uiError}` : undefined
}

const cell = (verdict: Verdict) =>
  verdict.kind === 'ignored'
    ? 'ignored'
    : `**${verdict.kind}**: ${verdict.how.replaceAll('|', '\\|').replaceAll('\n', ' ')}`

function curlCell(baseline: string, observed: string): string {
  if (baseline === observed) return 'identical'
  const before = new Set(baseline.split(/\r?\n/))
  const added = observed.split(/\r?\n/).filter((line) => line && !before.has(line))
  const removed = baseline.split(/\r?\n/).filter((line) => line && !observed.includes(line))
  return `shows ${added.length} more line(s)${removed.length ? `, ${removed.length} changed` : ''}`
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const showBytes = process.argv.includes('--bytes')
  const server = await startProbeServer()
  const chatCase = (includeUsage: boolean): ChatCase => ({
    system: 'Documents: A day pass costs $12.',
    question: 'What does a day pass cost?',
    includeUsage,
  })
  try {
    const chatClients: Array<{
      name: string
      run: (baseURL: string) => Promise<object>
    }> = [
      {
        name: 'openai create stream',
        run: (url) => openaiCreateStream(url, chatCase(false)),
      },
      {
        name: 'openai create stream + include_usage',
        run: (url) => openaiCreateStream(url, chatCase(true)),
      },
      { name: 'openai .stream() helper', run: (url) => openaiHelperStream(url, chatCase(true)) },
      { name: 'ChatOpenAI .stream()', run: (url) => chatOpenAIStream(url, chatCase(false)) },
      { name: 'AI SDK streamText', run: (url) => aiStreamText(url, chatCase(false)) },
      {
        name: 'AI SDK UI message stream',
        run: (url) => aiUIMessageStream(url, chatCase(false)),
      },
    ]
    const curlChat = async (candidate: string) =>
      (
        await curl(`${server.origin}/oa/${candidate}/v1/chat/completions`, {
          model: 'rag-model',
          stream: true,
          messages: [{ role: 'user', content: 'What does a day pass cost?' }],
        })
      ).body

    console.log('## openai-chat\n')
    console.log(`| candidate | ${chatClients.map((client) => client.name).join(' | ')} | curl -N |`)
    console.log(`| --- | ${chatClients.map(() => '---').join(' | ')} | --- |`)
    const chatBaseline = await Promise.all(
      chatClients.map((client) => client.run(`${server.origin}/oa/none/v1`)),
    )
    for (const [index, observed] of chatBaseline.entries()) {
      const failure = anyError(observed)
      if (failure)
        throw new Error(`${chatClients[index]!.name} fails without a verdict: ${failure}`)
    }
    const curlBaseline = await curlChat('none')
    for (const [candidate, { label }] of Object.entries(CHAT_CANDIDATES)) {
      if (candidate === 'none') continue
      const cells: string[] = []
      for (const [index, client] of chatClients.entries()) {
        const observed = await client.run(`${server.origin}/oa/${candidate}/v1`)
        cells.push(cell(judge(chatBaseline[index]!, observed, anyError)))
      }
      cells.push(curlCell(curlBaseline, await curlChat(candidate)))
      console.log(`| ${label} | ${cells.join(' | ')} |`)
    }

    console.log('\n## LangServe /stream\n')
    console.log('| candidate | RemoteRunnable .stream() (@langchain/core 0.3.80) | curl -N |')
    console.log('| --- | --- | --- |')
    const remoteUrl = (candidate: string) => `${server.origin}/ls/${candidate}/rag`
    const remoteBaseline = await remoteStream(remoteUrl('none'), { input: 'q' })
    if (remoteBaseline.error) throw new Error(`RemoteRunnable fails: ${remoteBaseline.error}`)
    const curlLangServe = async (candidate: string) =>
      (await curl(`${remoteUrl(candidate)}/stream`, { input: { input: 'q' } })).body
    const curlLangServeBaseline = await curlLangServe('none')
    for (const [candidate, { label }] of Object.entries(LANGSERVE_CANDIDATES)) {
      if (candidate === 'none') continue
      const observed = await remoteStream(remoteUrl(candidate), { input: 'q' })
      console.log(
        `| ${label} | ${cell(judge(remoteBaseline, observed, anyError))} | ${curlCell(curlLangServeBaseline, await curlLangServe(candidate))} |`,
      )
    }

    console.log('\n## What each client does with a usage chunk (no verdict added)\n')
    const withUsage = await openaiCreateStream(`${server.origin}/oa/none/v1`, chatCase(true))
    const withoutUsage = await openaiCreateStream(`${server.origin}/oa/none/v1`, chatCase(false))
    console.log(
      `- openai create stream: ${withoutUsage.chunks.length} chunks without include_usage, ${withUsage.chunks.length} with it; the extra one: ${short(withUsage.chunks.at(-1), 200)}`,
    )
    const helper = (await openaiHelperStream(`${server.origin}/oa/none/v1`, chatCase(true))) as {
      final: { usage?: unknown }
    }
    console.log(
      `- openai .stream() helper (include_usage): finalChatCompletion().usage = ${short(helper.final.usage, 200)}`,
    )
    const lc = await chatOpenAIStream(`${server.origin}/oa/none/v1`, chatCase(false))
    console.log(
      `- ChatOpenAI .stream(): ${lc.chunks.length} chunks; last: ${short(lc.chunks.at(-1), 300)}`,
    )
    const ai = await aiStreamText(`${server.origin}/oa/none/v1`, chatCase(false))
    console.log(`- AI SDK streamText: usage = ${short(ai.usage, 300)}`)

    console.log('\n## Reading the verdict of the recommended format\n')
    const { fetch: watching, verdictOf } = verdictFetch()
    const client = (await import('openai')).default
    const openai = new client({
      apiKey: 'k',
      baseURL: `${server.origin}/oa/comment-after-done/v1`,
      fetch: watching,
      maxRetries: 0,
    })
    const { data: stream, response } = await openai.chat.completions
      .create({
        model: 'rag-model',
        stream: true,
        messages: [{ role: 'user', content: 'What does a day pass cost?' }],
      })
      .withResponse()
    let text = ''
    for await (const part of stream) text += part.choices[0]?.delta?.content ?? ''
    console.log(
      `- openai client with verdictFetch: text ${JSON.stringify(text)}, verdict ${JSON.stringify(await verdictOf(response))}`,
    )
    const plainFetch = await fetch(`${server.origin}/ls/comment-after-end/rag/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'q' }),
    })
    console.log(
      `- plain fetch (LangServe): verdict ${JSON.stringify(verdictFromSSE(await plainFetch.text()))}`,
    )
    const nonStream = await openaiCreate(
      `${server.origin}/oa/comment-after-done/v1`,
      chatCase(false),
    )
    console.log(`- (non-stream create is not annotated: ${short(nonStream.completion, 80)})`)

    if (showBytes) {
      console.log('\n## Bytes\n')
      for (const [candidate, { events }] of Object.entries(CHAT_CANDIDATES))
        console.log(
          `### openai-chat ${candidate}\n${JSON.stringify(events(chatChunks(false)).join(''))}\n`,
        )
      for (const [candidate, { events }] of Object.entries(LANGSERVE_CANDIDATES))
        console.log(`### langserve ${candidate}\n${JSON.stringify(events.join(''))}\n`)
    }
  } finally {
    await server.close()
  }
}

await main()
