/**
 * `npm run test:load`: at least 2,000 guarded requests at concurrency 64 against the guard Worker
 * (the deploy bundle, in local workerd), mixed formats, streamed and not, with a share of judge
 * failures. Every request has one expected outcome (verdict, reason, exact body); the run passes
 * only when every request got it. Loopback only, bounded in count (--requests) and time (120 s).
 *
 *   npm run test:load                     2,400 requests, concurrency 64
 *   npm run test:load -- --requests 5000 --concurrency 128
 *   npm run test:load -- --config path/to/wrangler.toml   another build of the guard (e.g. a
 *                                                          benchmark variant with build trims)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { scriptScenario, startOpenAIStub } from '../stub/openai-stub'
import { buildBundle, percentile, startLocalWorker } from '../support/local-worker'

/** The caller token every request of the load test carries. */
const OPERATOR_TOKEN = 'load-test-operator-token-0123456789'

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`)
  return index === -1 ? fallback : Number(process.argv[index + 1])
}
const REQUESTS = Math.max(2000, argument('requests', 2400))
const CONCURRENCY = argument('concurrency', 64)
const DEADLINE_MS = 120_000
const FALLBACK = "I can't answer that reliably from the information I have."

const DOCUMENT = 'Harbor district stations close during storm warnings issued by the city.'
const jsonAnswer = JSON.stringify({
  answer: 'During storm warnings.',
  sources: [{ pageContent: DOCUMENT }],
})
const completion = JSON.stringify({
  id: 'chatcmpl-load',
  object: 'chat.completion',
  created: 1,
  model: 'rag',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'During storm warnings.' },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
})
const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-load', object: 'chat.completion.chunk', created: 1, model: 'rag', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`
const chatStream = [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content: 'During ' }),
  chunk({ content: 'storm warnings.' }),
  chunk({}, 'stop'),
  'data: [DONE]\n\n',
]
const langServe = JSON.stringify({
  output: {
    input: 'q',
    context: [{ page_content: DOCUMENT, metadata: {}, type: 'Document' }],
    answer: 'During storm warnings.',
  },
  metadata: { run_id: 'run-load', feedback_tokens: [] },
})
const langServeStream = [
  'event: metadata\ndata: {"run_id": "run-load"}\n\n',
  `event: data\ndata: ${JSON.stringify({ context: [{ page_content: DOCUMENT }] })}\n\n`,
  'event: data\ndata: {"answer": "During storm warnings."}\n\n',
  'event: end\n\n',
]

type Kind = 'pass' | 'block' | 'fail'

interface Shape {
  name: string
  path: string
  body: (question: string) => unknown
  /** The upstream's exact bytes. */
  upstream: string
  /** What a blocked response must contain. */
  blocked: (text: string) => boolean
}

const SHAPES: Shape[] = [
  {
    name: 'json',
    path: '/up-json/ask',
    body: (question) => ({ question, context: [DOCUMENT] }),
    upstream: jsonAnswer,
    blocked: (text) => JSON.parse(text).answer === FALLBACK,
  },
  {
    name: 'json, context in response',
    path: '/up-json/ask-late',
    body: (question) => ({ question }),
    upstream: jsonAnswer,
    blocked: (text) => JSON.parse(text).answer === FALLBACK,
  },
  {
    name: 'openai-chat',
    path: '/up-chat/v1/chat/completions',
    body: (question) => ({
      model: 'rag',
      messages: [
        { role: 'system', content: DOCUMENT },
        { role: 'user', content: question },
      ],
    }),
    upstream: completion,
    blocked: (text) => JSON.parse(text).choices[0].message.content === FALLBACK,
  },
  {
    name: 'openai-chat, streamed',
    path: '/up-chat-sse/v1/chat/completions',
    body: (question) => ({
      model: 'rag',
      stream: true,
      messages: [
        { role: 'system', content: DOCUMENT },
        { role: 'user', content: question },
      ],
    }),
    upstream: chatStream.join(''),
    blocked: (text) =>
      text.includes(JSON.stringify(FALLBACK)) &&
      text.endsWith('data: [DONE]\n\n') &&
      !text.includes('storm'),
  },
  {
    name: 'langserve',
    path: '/up-ls/rag/invoke',
    body: (question) => ({ input: { input: question } }),
    upstream: langServe,
    blocked: (text) => JSON.parse(text).output.answer === FALLBACK,
  },
  {
    name: 'langserve, streamed',
    path: '/up-ls-sse/rag/stream',
    body: (question) => ({ input: { input: question } }),
    upstream: langServeStream.join(''),
    blocked: (text) =>
      text.includes(JSON.stringify({ answer: FALLBACK })) &&
      text.endsWith('event: end\n\n') &&
      !text.includes('During storm'),
  },
]

/** Every fifth request is blocked, every seventh meets a failing judge; the rest pass. */
const kindOf = (index: number): Kind =>
  index % 7 === 3 ? 'fail' : index % 5 === 1 ? 'block' : 'pass'

async function main(): Promise<void> {
  const stub = await startOpenAIStub()
  const workDir = mkdtempSync(join(tmpdir(), 'rag-guard-load-'))
  let guard: Awaited<ReturnType<typeof startLocalWorker>> | undefined
  const deadline = setTimeout(() => {
    console.error(`load test: not done after ${DEADLINE_MS / 1000} s, stopping`)
    process.exit(1)
  }, DEADLINE_MS)
  try {
    const configIndex = process.argv.indexOf('--config')
    const bundle = buildBundle(
      workDir,
      configIndex === -1 ? {} : { config: resolve(process.argv[configIndex + 1]!) },
    )
    const sse = { 'content-type': 'text/event-stream' }
    await scriptScenario(stub.origin, 'up-json', {
      delayMs: 20,
      upstream: { headers: { 'content-type': 'application/json' }, body: jsonAnswer },
    })
    await scriptScenario(stub.origin, 'up-chat', {
      delayMs: 20,
      upstream: { headers: { 'content-type': 'application/json' }, body: completion },
    })
    await scriptScenario(stub.origin, 'up-chat-sse', {
      delayMs: 20,
      upstream: { headers: sse, chunks: chatStream, chunkDelayMs: 2 },
    })
    await scriptScenario(stub.origin, 'up-ls', {
      delayMs: 20,
      upstream: { headers: { 'content-type': 'application/json' }, body: langServe },
    })
    await scriptScenario(stub.origin, 'up-ls-sse', {
      delayMs: 20,
      upstream: { headers: sse, chunks: langServeStream, chunkDelayMs: 2 },
    })
    // The judge answers by what the question says.
    const judged = (p: number) => ({
      delayMs: 10,
      token: p >= 0.5 ? 'True' : 'False',
      logprob: Math.log(Math.max(p, 1 - p)),
      topLogprobs: [
        { token: 'True', logprob: Math.log(p) },
        { token: 'False', logprob: Math.log(1 - p) },
      ],
    })
    await scriptScenario(stub.origin, 'judge', {
      rules: [
        { contains: '[fail]', step: { delayMs: 10, status: 500 } },
        { contains: '[block]', step: judged(0.02) },
      ],
      otherwise: judged(0.97),
    })

    guard = await startLocalWorker(bundle.path, {
      UPSTREAM_URL: `${stub.origin}/s`,
      OPENAI_BASE_URL: `${stub.origin}/s/judge/v1`,
      OPENAI_API_KEY: 'load-test-key',
      GUARD_MODE: 'enforce',
      // Every request passes the caller check, as an operator (who sees the reasons checked below).
      GUARD_AUTH: 'token',
      GUARD_OPERATOR_TOKENS: OPERATOR_TOKEN,
      ON_ERROR: 'flag',
      BLOCK_BELOW: 0.2,
      FLAG_BELOW: 0.8,
      JUDGE_MAX_RETRIES: 0,
      LOG_DECISIONS: false,
      GUARD_ROUTES: [
        { path: '/up-json/ask', format: 'json', answer: '/answer' },
        {
          path: '/up-json/ask-late',
          format: 'json',
          context: { in: 'response', pointer: '/sources' },
          answer: '/answer',
        },
        { path: '/up-chat/v1/chat/completions', format: 'openai-chat' },
        { path: '/up-chat-sse/v1/chat/completions', format: 'openai-chat' },
        { path: '/up-ls/rag/invoke', format: 'langserve' },
        { path: '/up-ls-sse/rag/stream', format: 'langserve' },
      ],
    })

    const latencies: number[] = []
    const failures: string[] = []
    const counts = new Map<string, number>()
    let next = 0
    const startedAt = performance.now()
    const one = async (index: number) => {
      const shape = SHAPES[index % SHAPES.length]!
      const kind = kindOf(index)
      const question = `When do harbor stations close? #${index}${kind === 'pass' ? '' : ` [${kind}]`}`
      const began = performance.now()
      try {
        const response = await fetch(`${guard!.url}${shape.path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${OPERATOR_TOKEN}`,
          },
          body: JSON.stringify(shape.body(question)),
        })
        const text = await response.text()
        latencies.push(performance.now() - began)
        const verdict = response.headers.get('x-rag-guard-verdict')
        const reason = response.headers.get('x-rag-guard-reason')
        const expected = kind === 'pass' ? 'pass' : kind === 'block' ? 'block' : 'flag'
        const bodyOk = kind === 'block' ? shape.blocked(text) : text === shape.upstream
        const reasonOk = kind === 'fail' ? reason === 'judge-http-error' : reason === null
        if (response.status !== 200 || verdict !== expected || !reasonOk || !bodyOk) {
          failures.push(
            `#${index} ${shape.name} ${kind}: status ${response.status}, verdict ${verdict}, reason ${reason}, body ${bodyOk ? 'as expected' : `unexpected: ${text.slice(0, 120)}`}`,
          )
        }
        counts.set(`${shape.name} · ${kind}`, (counts.get(`${shape.name} · ${kind}`) ?? 0) + 1)
      } catch (error) {
        latencies.push(performance.now() - began)
        failures.push(`#${index} ${shape.name} ${kind}: ${String(error)}`)
      }
    }
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) await one(next++)
      }),
    )
    const seconds = (performance.now() - startedAt) / 1000
    latencies.sort((a, b) => a - b)
    const judgeCalls = (
      (await (await fetch(`${stub.origin}/__scenarios/judge/requests`)).json()) as unknown[]
    ).length

    console.log(
      `\nRAG Guard load test: ${REQUESTS} guarded requests at concurrency ${CONCURRENCY} (upstream 20 ms, judge 10 ms)`,
    )
    console.log(
      `machine: ${cpus()[0]?.model.trim()} × ${cpus().length}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`,
    )
    console.log(
      `throughput: ${(REQUESTS / seconds).toFixed(0)} requests/s (${seconds.toFixed(1)} s)`,
    )
    console.log(
      `latency ms: p50 ${percentile(latencies, 50).toFixed(1)} · p90 ${percentile(latencies, 90).toFixed(1)} · p99 ${percentile(latencies, 99).toFixed(1)} · max ${latencies[latencies.length - 1]!.toFixed(1)}`,
    )
    console.log(`judge calls: ${judgeCalls}`)
    console.log(
      `outcomes: ${[...counts]
        .sort()
        .map(([name, count]) => `${name} ${count}`)
        .join(', ')}`,
    )
    console.log(`unexpected outcomes: ${failures.length}`)
    for (const failure of failures.slice(0, 20)) console.log(`  ${failure}`)
    if (failures.length) process.exitCode = 1
  } finally {
    clearTimeout(deadline)
    await guard?.dispose()
    await stub.close()
    rmSync(workDir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
