/**
 * `npm run bench`: the guard Worker — the bundle `wrangler deploy` would upload — in local workerd
 * (through Miniflare, without wrangler dev's development proxy) in front of a stub upstream,
 * with a stub judge, each answering after a set delay. Measures end-to-end latency and the
 * latency the guard adds, per mode; the bundle size; the startup CPU time.
 *
 *   npm run bench                       upstream 300 ms, judge 200 ms, 120 requests per scenario at concurrency 2
 *   npm run bench -- --upstream 100 --judge 400 --requests 60 --concurrency 1
 *
 * Loopback only; every loop is bounded by --requests. Numbers from a laptop or a CI machine are
 * not Cloudflare's edge: they compare the modes with each other and with the upstream alone.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { scriptScenario, startOpenAIStub } from '../stub/openai-stub'
import { buildBundle, percentile, QUIET_ENV, ROOT, startLocalWorker } from '../support/local-worker'

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`)
  return index === -1 ? fallback : Number(process.argv[index + 1])
}
const UPSTREAM_MS = argument('upstream', 300)
const JUDGE_MS = argument('judge', 200)
const REQUESTS = argument('requests', 120)
const CONCURRENCY = argument('concurrency', 2)
const WARMUP = 10
const quietEnv = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
}

/** A retrieved context of about 16 KB, as the overhead budget is stated for. */
const CONTEXT = Array.from(
  { length: 8 },
  (_, index) =>
    `Document ${index}. ${'The harbor district stations close during storm warnings issued by the city. '.repeat(26)}`,
)

interface Scenario {
  name: string
  url: string
  /** The request body for the i-th request. */
  body?: (index: number) => unknown
  /** Measure the time to the first body byte instead of to the end of the body. */
  firstByte?: boolean
  /** What this scenario is compared with, and the allowed difference at p50. */
  baseline?: { name: string; extraMs?: number; budgetMs: number }
  check?: (response: Response) => void
}

async function measure(scenario: Scenario): Promise<number[]> {
  const run = async (index: number) => {
    const startedAt = performance.now()
    const response = await fetch(scenario.url, {
      method: scenario.body ? 'POST' : 'GET',
      headers: { 'content-type': 'application/json' },
      body: scenario.body ? JSON.stringify(scenario.body(index)) : undefined,
    })
    scenario.check?.(response)
    const reader = response.body!.getReader()
    let first: number | undefined
    for (let next = await reader.read(); !next.done; next = await reader.read())
      first ??= performance.now()
    return (scenario.firstByte ? (first ?? performance.now()) : performance.now()) - startedAt
  }
  for (let index = 0; index < WARMUP; index++) await run(-1 - index)
  const times: number[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) times.push(await run(next++))
    }),
  )
  return times.sort((a, b) => a - b)
}

/** CPU time of the Worker's startup (module evaluation), from `wrangler check startup`: the profile's non-idle samples. */
function startupCpuMs(): number[] {
  const outdir = mkdtempSync(join(tmpdir(), 'rag-guard-startup-'))
  try {
    return Array.from({ length: 9 }, (_, run) => {
      const outfile = join(outdir, `startup-${run}.cpuprofile`)
      const profiled = spawnSync(
        join(ROOT, 'node_modules/.bin/wrangler'),
        ['check', 'startup', '--outfile', outfile],
        { cwd: ROOT, env: QUIET_ENV, encoding: 'utf8' },
      )
      if (profiled.status !== 0)
        throw new Error(`wrangler check startup failed:\n${profiled.stderr}`)
      const profile = JSON.parse(readFileSync(outfile, 'utf8')) as {
        nodes: Array<{ id: number; callFrame: { functionName: string } }>
        samples: number[]
        timeDeltas: number[]
      }
      const idle = new Set(
        profile.nodes
          .filter((node) => node.callFrame.functionName === '(idle)')
          .map((node) => node.id),
      )
      return (
        profile.samples.reduce(
          (total, sample, index) =>
            total + (idle.has(sample) ? 0 : (profile.timeDeltas[index] ?? 0)),
          0,
        ) / 1000
      )
    }).sort((a, b) => a - b)
  } finally {
    rmSync(outdir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const stub = await startOpenAIStub()
  const workDir = mkdtempSync(join(tmpdir(), 'rag-guard-bench-'))
  let guard: Awaited<ReturnType<typeof startLocalWorker>> | undefined
  try {
    const bundle = buildBundle(workDir)
    const chunks = ['They ', 'close.'].map(
      (content, index) =>
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: index === 1 ? 'stop' : null }] })}\n\n`,
    )
    await scriptScenario(stub.origin, 'up-json', {
      delayMs: UPSTREAM_MS,
      upstream: {
        json: {
          answer: 'The stations close during storm warnings.',
          sources: CONTEXT.map((pageContent) => ({ pageContent })),
        },
      },
    })
    await scriptScenario(stub.origin, 'up-sse', {
      delayMs: UPSTREAM_MS,
      upstream: {
        headers: { 'content-type': 'text/event-stream' },
        chunks: [...chunks, 'data: [DONE]\n\n'],
        chunkDelayMs: 5,
      },
    })
    await scriptScenario(stub.origin, 'judge', {
      delayMs: JUDGE_MS,
      token: 'True',
      logprob: Math.log(0.9),
      topLogprobs: [
        { token: 'True', logprob: Math.log(0.9) },
        { token: 'False', logprob: Math.log(0.1) },
      ],
    })

    guard = await startLocalWorker(bundle.path, {
      UPSTREAM_URL: `${stub.origin}/s`,
      OPENAI_BASE_URL: `${stub.origin}/s/judge/v1`,
      OPENAI_API_KEY: 'bench-key',
      GUARD_MODE: 'enforce',
      GUARD_AUTH: 'none',
      GUARD_DETAILS: 'everyone',
      CACHE_SCOPE: 'shared',
      PASS_THROUGH: [{ path: '/*', methods: ['GET', 'POST'] }],
      JUDGE_TIMEOUT_MS: Math.max(3000, JUDGE_MS * 4),
      LOG_DECISIONS: false,
      GUARD_ROUTES: [
        { path: '/up-json/parallel', format: 'json', answer: '/answer' },
        {
          path: '/up-json/sequential',
          format: 'json',
          context: { in: 'response', pointer: '/sources' },
          answer: '/answer',
        },
        { path: '/up-json/cached', format: 'json', answer: '/answer' },
        { path: '/up-sse/hold/chat/completions', format: 'openai-chat' },
        {
          path: '/up-sse/annotate/chat/completions',
          format: 'openai-chat',
          streamMode: 'annotate',
        },
      ],
    })

    const guardUrl = guard.url

    // Each scenario asks its own questions: a question asked again with the same documents is a cache hit.
    const asked = (prefix: string, index: number) =>
      `When do harbor stations close? (${prefix} ${index})`
    const question = (prefix: string) => (index: number) => ({
      question: asked(prefix, index),
      context: CONTEXT,
    })
    const chat = (prefix: string) => (index: number) => ({
      model: 'm',
      stream: true,
      messages: [
        { role: 'system', content: CONTEXT.join('\n') },
        { role: 'user', content: asked(prefix, index) },
      ],
    })
    const expect = (header: string, value: string) => (response: Response) => {
      if (response.headers.get(header) !== value) {
        throw new Error(
          `expected ${header}: ${value}, got ${response.headers.get(header)} (${response.headers.get('x-rag-guard-reason')})`,
        )
      }
    }
    const upstream = { name: 'upstream alone (no Worker)', budgetMs: 15 }
    const upstreamFirstByte = { name: 'upstream alone, first byte (stream)', budgetMs: 15 }
    const scenarios: Scenario[] = [
      { name: upstream.name, url: `${stub.origin}/s/up-json/direct`, body: question('direct') },
      {
        name: upstreamFirstByte.name,
        url: `${stub.origin}/s/up-sse/direct`,
        body: chat('direct'),
        firstByte: true,
      },
      {
        name: 'plain proxy (unguarded path)',
        url: `${guardUrl}/up-json/plain`,
        body: question('plain'),
        baseline: upstream,
      },
      {
        name: 'guard, context in request (parallel)',
        url: `${guardUrl}/up-json/parallel`,
        body: question('parallel'),
        baseline: upstream,
        check: expect('x-rag-guard-cache', 'miss'),
      },
      {
        name: 'guard, context in response (sequential)',
        url: `${guardUrl}/up-json/sequential`,
        body: (index) => ({ question: asked('sequential', index) }),
        baseline: { ...upstream, extraMs: JUDGE_MS },
        check: expect('x-rag-guard-cache', 'miss'),
      },
      {
        name: 'guard, cache hit',
        url: `${guardUrl}/up-json/cached`,
        body: () => question('cached')(0),
        baseline: { ...upstream, budgetMs: 5 },
        check: expect('x-rag-guard-cache', 'hit'),
      },
      {
        name: 'stream, hold (first byte)',
        url: `${guardUrl}/up-sse/hold/chat/completions`,
        body: chat('hold'),
        firstByte: true,
        baseline: upstreamFirstByte,
        check: expect('x-rag-guard-verdict', 'pass'),
      },
      {
        name: 'stream, annotate (first byte)',
        url: `${guardUrl}/up-sse/annotate/chat/completions`,
        body: chat('annotate'),
        firstByte: true,
        baseline: upstreamFirstByte,
      },
    ]
    // The cached scenario's one question is judged once before it is measured.
    await (
      await fetch(`${guardUrl}/up-json/cached`, {
        method: 'POST',
        body: JSON.stringify(question('cached')(0)),
      })
    ).text()
    await new Promise((resolve) => setTimeout(resolve, 200))

    const results = new Map<string, { p50: number; p99: number }>()
    const rows: string[][] = []
    for (const scenario of scenarios) {
      const times = await measure(scenario)
      const p50 = percentile(times, 50)
      const p99 = percentile(times, 99)
      results.set(scenario.name, { p50, p99 })
      const base = scenario.baseline && results.get(scenario.baseline.name)
      const added = base && p50 - base.p50 - (scenario.baseline!.extraMs ?? 0)
      const overProxy =
        scenario.baseline && scenario.name !== 'plain proxy (unguarded path)' && !scenario.firstByte
          ? p50 -
            results.get('plain proxy (unguarded path)')!.p50 -
            (scenario.baseline.extraMs ?? 0)
          : undefined
      const signed = (value: number | undefined) =>
        value === undefined ? '' : `${value >= 0 ? '+' : ''}${value.toFixed(1)}`
      rows.push([
        scenario.name,
        p50.toFixed(1),
        p99.toFixed(1),
        signed(added),
        signed(overProxy),
        scenario.baseline
          ? `≤ ${scenario.baseline.budgetMs} over ${scenario.baseline.extraMs ? 'upstream + judge' : 'upstream'}`
          : '',
        added === undefined ? '' : added <= scenario.baseline!.budgetMs ? 'yes' : 'NO',
      ])
    }
    await guard.dispose()
    guard = undefined

    const startup = startupCpuMs()
    const header = [
      'scenario',
      'p50 ms',
      'p99 ms',
      'added p50 ms',
      'over plain proxy',
      'budget (ms)',
      'met',
    ]
    const widths = header.map((title, column) =>
      Math.max(title.length, ...rows.map((row) => row[column]!.length)),
    )
    const line = (cells: string[]) =>
      `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`
    console.log(
      `\nRAG Guard benchmark: upstream ${UPSTREAM_MS} ms, judge ${JUDGE_MS} ms, ${REQUESTS} requests per scenario at concurrency ${CONCURRENCY}, ~16 KB context`,
    )
    console.log(
      `machine: ${cpus()[0]?.model.trim()} × ${cpus().length}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`,
    )
    console.log(line(header))
    console.log(line(widths.map((width) => '-'.repeat(width))))
    for (const row of rows) console.log(line(row))
    const kib = (bytes: number) => (bytes / 1024).toFixed(1)
    console.log(
      `\nbundle: ${kib(bundle.gzip)} KiB gzip (${kib(bundle.raw)} KiB minified; budget 350 KiB gzip): ${bundle.gzip <= 350 * 1024 ? 'met' : 'NOT met'}`,
    )
    console.log(
      `startup CPU (wrangler check startup, 9 runs): median ${percentile(startup, 50).toFixed(1)} ms, min ${startup[0]!.toFixed(1)}, max ${startup[startup.length - 1]!.toFixed(1)} (budget 30 ms): ${percentile(startup, 50) <= 30 ? 'met' : 'NOT met'}`,
    )
  } finally {
    await guard?.dispose()
    await stub.close()
    rmSync(workDir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  },
)
