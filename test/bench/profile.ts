/**
 * `npm run bench:profile`: where the guard's CPU goes per request. Serves the guard (built as
 * wrangler deploy builds it, by default without minification so that the profile names
 * functions) in local workerd, sends requests of one kind, and records a V8 CPU profile of the
 * Worker's isolate through workerd's inspector. Prints the isolate's CPU per request by phase
 * of the guard (the innermost phase on the stack owns a sample), by package, and the hottest
 * functions. The workerd process's CPU over the same requests is printed beside it.
 *
 *   npm run bench:profile                                   json, 16 KB context, 200 requests
 *   npm run bench:profile -- --scenario json-200k --requests 60
 *   npm run bench:profile -- --scenario chat-1000 --requests 8
 *   npm run bench:profile -- --scenario rag-256k --requests 4
 *   npm run bench:profile -- --minified                     the deploy bundle itself
 *   npm run bench:profile -- --bundle /tmp/variant/worker.js  a bundle built elsewhere
 *   npm run bench:profile -- --set LOG_DECISIONS=false      a guard setting changed
 *   npm run bench:profile -- --out profile.cpuprofile        keep the profile (Chrome DevTools)
 *
 * The profile's sample intervals are wall-clock time, so on a busy machine the per-request
 * figures grow; the phase shares stay meaningful.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startOpenAIStub } from '../stub/openai-stub'
import { buildBundle } from '../support/local-worker'
import { cpuSince, readCpu, settle } from '../support/workerd-process'
import type { BenchContext } from './lib/context'
import { CPU_JUDGE, CPU_UPSTREAM, expectJudged, scriptDelays } from './lib/cpu-phase'
import { chatStream, documents, jsonUpstream, langServeStream } from './lib/fixtures'
import { pool, post, startTarget } from './lib/harness'
import { connectInspector, type CpuProfile, type CpuProfileNode } from './lib/inspector'
import { SourceMapLookup } from './lib/sourcemap'
import { guardBindings } from './lib/targets'

const argv = process.argv.slice(2)
const value = (name: string) => {
  const index = argv.indexOf(`--${name}`)
  return index === -1 ? undefined : argv[index + 1]
}
const SCENARIO = value('scenario') ?? 'json-16k'
const overrides: Record<string, unknown> = {}
argv.forEach((argument, index) => {
  if (argument !== '--set') return
  const [name, setting] = argv[index + 1]!.split('=')
  overrides[name!] = setting
})

interface Scenario {
  path: string
  requests: number
  concurrency: number
  step: (delayMs: number) => never
  upstream: string
  body: (index: number) => string
  check: (response: Awaited<ReturnType<typeof post>>) => void
}

function scenario(name: string): Scenario {
  const json = (bytes: number, requests: number): Scenario => {
    const context = JSON.stringify(documents(14, bytes))
    return {
      path: '/cpu-json/ask',
      requests,
      concurrency: 4,
      upstream: 'cpu-json',
      step: jsonUpstream as never,
      body: (index) =>
        `{"question":"When do harbor district stations close? [profile ${index}]","context":${context}}`,
      check: (response) => expectJudged({ name: 'guard' } as never, response),
    }
  }
  const chat = (events: number, requests: number): Scenario => {
    const system = documents(14, 16 * 1024).join('\n\n')
    return {
      path: '/cpu-chat/hold/chat/completions',
      requests,
      concurrency: 4,
      upstream: 'cpu-chat',
      step: ((delayMs: number) => chatStream(events, delayMs)) as never,
      body: (index) =>
        JSON.stringify({
          model: 'gpt-4o-mini',
          stream: true,
          messages: [
            { role: 'system', content: system },
            { role: 'user', content: `When do harbor district stations close? [profile ${index}]` },
          ],
        }),
      check: (response) => {
        if (response.headers.get('x-rag-guard-verdict') !== 'pass') throw new Error('not passed')
      },
    }
  }
  const rag = (bytes: number, requests: number): Scenario => {
    const step = langServeStream(bytes, 0, 14)
    return {
      path: '/cpu-rag/annotate/stream',
      requests,
      concurrency: 2,
      upstream: 'cpu-rag',
      step: ((delayMs: number) => ({ upstream: { ...step.upstream!, delayMs } })) as never,
      body: (index) =>
        JSON.stringify({ input: `When do harbor stations close? [profile ${index}]` }),
      check: () => {},
    }
  }
  const scenarios: Record<string, () => Scenario> = {
    'json-16k': () => json(16 * 1024, 200),
    'json-200k': () => json(200 * 1024, 60),
    'json-1m': () => json(1024 * 1024, 12),
    'chat-10': () => chat(10, 60),
    'chat-1000': () => chat(1000, 8),
    'rag-256k': () => rag(256 * 1024, 4),
  }
  const found = scenarios[name]
  if (!found) throw new Error(`--scenario: one of ${Object.keys(scenarios).join(', ')}`)
  const chosen = found()
  const requests = value('requests')
  return requests ? { ...chosen, requests: Number(requests) } : chosen
}

/** Phases of the guard, by source file and function; the innermost match on the stack wins. */
const PHASES: Array<[RegExp, RegExp | undefined, string]> = [
  [
    /src\/guard\/decision-log\.ts$/,
    /^describeInput$/,
    'decision log: hashes of question and documents',
  ],
  [/src\/guard\/decision-log\.ts$/, /^logDecision$/, 'decision log: JSON.stringify + console.log'],
  [/src\/hash\.ts$/, undefined, 'SHA-256 (hash.ts)'],
  [/src\/judge\/cache\.ts$/, /^cacheKey$/, 'verdict cache: key'],
  [/src\/judge\/cache\.ts$/, undefined, 'verdict cache: get / put'],
  [/src\/judge\/prompt\.ts$/, undefined, 'judge prompt'],
  [/src\/judge\/scoring\.ts$/, undefined, 'scoring'],
  [/src\/judge\/judge\.ts$/, undefined, 'judge step (own code)'],
  [/src\/proxy\.ts$/, undefined, 'proxy to the upstream'],
  [/src\/formats\/sse\.ts$/, undefined, 'SSE parser'],
  [/src\/guard\/stream\.ts$/, undefined, 'stream relay / hold'],
  [/src\/formats\//, undefined, 'format: read question and context'],
  [/src\/guard\/middleware\.ts$/, /^readRequestBody$/, 'read the request body'],
  [/src\/guard\/middleware\.ts$/, /^parseJson$/, 'JSON.parse of the request body'],
  [/src\/guard\/middleware\.ts$/, undefined, 'middleware (rest)'],
  [/src\/(app|worker|config)\.ts$/, undefined, 'Worker entry'],
]
const CLIENT_PACKAGES =
  /^(@langchain\/|openai$|langsmith$|zod|p-queue$|p-retry$|p-timeout$|eventemitter3$|js-tiktoken$|@cfworker\/)/

interface Frame {
  functionName: string
  source?: string
  package?: string
  line?: number
}

function analyse(profile: CpuProfile, bundlePath: string, requests: number) {
  const lookup = new SourceMapLookup(bundlePath)
  const byId = new Map<number, CpuProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }
  const frameCache = new Map<number, Frame>()
  const frame = (id: number): Frame => {
    let cached = frameCache.get(id)
    if (!cached) {
      const { callFrame } = byId.get(id)!
      const position = callFrame.url.endsWith('.js')
        ? lookup.find(callFrame.lineNumber, callFrame.columnNumber)
        : undefined
      cached = {
        functionName: callFrame.functionName || '(anonymous)',
        ...(position
          ? { source: position.source, package: position.package, line: position.line }
          : {}),
      }
      frameCache.set(id, cached)
    }
    return cached
  }
  const phases = new Map<string, number>()
  const packages = new Map<string, number>()
  const functions = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((sample, index) => {
    const delta = (profile.timeDeltas[index] ?? 0) / 1000
    const leaf = frame(sample)
    if (leaf.functionName === '(idle)') return
    busy += delta
    const stack: Frame[] = []
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id))
      stack.push(frame(id))
    const special = ['(garbage collector)', '(program)'].includes(leaf.functionName)
    // Phase: the innermost frame that names one; LangChain and the openai client as a block.
    let phase: string | undefined
    for (const entry of stack) {
      if (!entry.source) continue
      if (entry.package && CLIENT_PACKAGES.test(entry.package)) {
        phase = 'judge call: LangChain + openai client'
        break
      }
      const rule = PHASES.find(
        ([file, name]) => file.test(entry.source!) && (!name || name.test(entry.functionName)),
      )
      if (rule) {
        phase = rule[2]
        break
      }
      if (entry.package === 'hono') {
        phase = 'hono'
        break
      }
    }
    phase ??= special ? leaf.functionName : 'other (microtasks, runtime glue)'
    if (leaf.functionName === '(garbage collector)') phase = '(garbage collector)'
    phases.set(phase, (phases.get(phase) ?? 0) + delta)
    const owner = stack.find((entry) => entry.package)
    const packageName = special ? leaf.functionName : (owner?.package ?? '(native, no JS caller)')
    packages.set(packageName, (packages.get(packageName) ?? 0) + delta)
    const label = leaf.source
      ? `${leaf.functionName} ${leaf.source}:${leaf.line}`
      : `${leaf.functionName} [native${owner ? `, from ${owner.functionName} ${owner.source}:${owner.line}` : ''}]`
    functions.set(label, (functions.get(label) ?? 0) + delta)
  })
  const table = (title: string, entries: Map<string, number>, limit = 40) => {
    console.log(`\n${title} (ms per request, share of the isolate's busy time)`)
    for (const [name, ms] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
      console.log(
        `  ${(ms / requests).toFixed(3).padStart(8)}  ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${name}`,
      )
    }
  }
  console.log(
    `\nisolate busy time (profile, non-idle): ${(busy / requests).toFixed(3)} ms per request`,
  )
  table('by phase of the guard', phases)
  table('by package (the innermost JS frame with a source)', packages)
  table('hottest functions (self time)', functions, 30)
}

async function main() {
  const chosen = scenario(SCENARIO)
  const workDir = mkdtempSync(join(tmpdir(), 'rag-guard-profile-'))
  const stub = await startOpenAIStub()
  try {
    const bundlePath =
      value('bundle') ??
      buildBundle(join(workDir, 'guard'), {
        args: argv.includes('--minified') ? [] : ['--no-minify'],
      }).path
    const context = { stub, options: { seed: 14 } } as BenchContext
    const guard = await startTarget('guard', bundlePath, guardBindings(context, overrides), {
      cache: false,
      inspectorPort: 0,
      name: 'guard',
    })
    try {
      const total = chosen.requests * 2 + 30
      await scriptDelays(context, chosen.upstream, 14, total, chosen.step, CPU_UPSTREAM, CPU_JUDGE)
      const send = async (index: number) => {
        const response = await post(`${guard.url}${chosen.path}`, chosen.body(index))
        if (response.status !== 200)
          throw new Error(`status ${response.status}: ${response.text.slice(0, 200)}`)
        chosen.check(response)
      }
      // Warm up as many requests as are profiled, so the JIT has settled.
      await pool(Math.max(chosen.requests, 10), chosen.concurrency, (index) => send(-1 - index))
      await settle(guard.pid)
      const inspector = await connectInspector(
        new URL('/core:user:guard', await guard.miniflare.getInspectorURL()).href,
      )
      await inspector.send('Profiler.enable')
      await inspector.send('Profiler.setSamplingInterval', {
        interval: Number(value('interval') ?? 100),
      })
      await inspector.send('Profiler.start')
      const before = readCpu(guard.pid)
      await pool(chosen.requests, chosen.concurrency, send)
      await settle(guard.pid)
      const used = cpuSince(guard.pid, before)
      const { profile } = await inspector.send<{ profile: CpuProfile }>('Profiler.stop')
      inspector.close()
      const out = value('out')
      if (out) writeFileSync(out, JSON.stringify(profile))
      console.log(
        `scenario ${SCENARIO}: ${chosen.requests} requests at concurrency ${chosen.concurrency}; bundle ${bundlePath}${Object.keys(overrides).length ? `; settings ${JSON.stringify(overrides)}` : ''}`,
      )
      console.log(
        `workerd process CPU (profiler on): ${(used.schedMs / chosen.requests).toFixed(3)} ms per request (schedstat), ${(used.statMs / chosen.requests).toFixed(2)} (stat)`,
      )
      analyse(profile, bundlePath, chosen.requests)
    } finally {
      await guard.dispose()
    }
  } finally {
    await stub.close()
    rmSync(workDir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error)
    process.exit(1)
  },
)
