/**
 * `npm run bench`: what the guard costs, measured on the bundle `wrangler deploy` would upload,
 * served by local workerd (Miniflare), with the OpenAI-protocol stub playing both the judge and
 * the upstream RAG endpoint. Prints one table: figure | guard | floor(s) | goal | met?
 *
 *   cpu       CPU time per request inside workerd (/proc/<pid>/stat of the workerd process),
 *             guard against an unguarded pass-through Worker and two floor Workers (one judge
 *             call through ChatOpenAI, one through plain fetch), 16 KB / 200 KB / 1 MB contexts,
 *             decision log on (its output drained), 20 top_logprobs, seeded delay distributions
 *   streams   CPU per streamed request: openai-chat streams of 10 / 1,000 / 10,000 events, hold
 *             and annotate, against the unguarded relay, paced 1 ms apart with the verdict first,
 *             the same with the verdict after the end, and all at once; LangServe context events of 256 KB and
 *             1 MB; the SSE parser's own cost on a 1 MB event
 *   memory    peak memory with 32 concurrent requests carrying 1 MB contexts
 *   bundle    bundle size (gzip) and startup CPU against the ChatOpenAI-only floor Worker, and
 *             the bundle's make-up by package
 *   latency   end to end: parallel mode (judge faster and slower than the upstream), cache hit,
 *             first byte of held and annotated streams, sequential mode
 *   instructions  (only when asked for: needs valgrind) the cpu phase's json requests counted in
 *             instructions per request under callgrind, unmoved by the machine's load
 *
 *   npm run bench                         everything (about 5 minutes on 2 cores)
 *   npm run bench -- --quick              fewer requests and rounds, no 10,000-event stream (~2 min)
 *   npm run bench -- --only cpu,streams   some phases
 *   npm run bench -- --breakdown          also the guard with one thing off at a time (cpu phase)
 *   npm run bench -- --baseline old/worker.js   also a guard bundle built elsewhere, in the same rounds
 *   npm run bench -- --only cpu --rounds 5      more rounds of the cpu phase
 *   npm run bench -- --only ops           single operations only (what --breakdown adds at its end)
 *   npm run bench -- --only instructions --breakdown   instruction counts (valgrind), with the guard taken apart
 *   npm run bench -- --seed 7 --verbose   another seed; every measurement as it is taken
 *
 * Loopback only. Numbers from a laptop or a CI machine are not Cloudflare's edge: they compare
 * the guard with Workers that do less, in the same runtime, on the same machine.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildBundleAsync, ROOT } from '../support/local-worker'
import { bundleBreakdown } from './lib/bundle-breakdown'
import type { BenchContext, BenchOptions, Bundle, Bundles, Row } from './lib/context'
import { runCpuPhase, runOperationCosts } from './lib/cpu-phase'
import { runInstructionPhase } from './lib/instructions-phase'
import { runLatencyPhase } from './lib/latency-phase'
import { monitorMachineLoad } from './lib/machine-load'
import { startStubProcess } from './lib/stub-process'
import { runMemoryPhase } from './lib/memory-phase'
import { runStartupPhase } from './lib/startup-phase'
import { runStreamPhase } from './lib/stream-phase'
import { startCpuTargets } from './lib/targets'

const PHASES = ['cpu', 'ops', 'streams', 'memory', 'bundle', 'latency', 'instructions'] as const
/** Phases a plain `npm run bench` runs: instructions needs valgrind and takes minutes of its own. */
const DEFAULT_PHASES = PHASES.filter((phase) => phase !== 'instructions')
type Phase = (typeof PHASES)[number]

function parseArguments(argv: string[]): BenchOptions & { phases: Phase[] } {
  const value = (name: string) => {
    const index = argv.indexOf(`--${name}`)
    return index === -1 ? undefined : argv[index + 1]
  }
  const only = value('only')
  const phases = only ? (only.split(',').map((phase) => phase.trim()) as Phase[]) : DEFAULT_PHASES
  for (const phase of phases) {
    if (!PHASES.includes(phase))
      throw new Error(`--only: unknown phase "${phase}" (${PHASES.join(', ')})`)
  }
  return {
    phases,
    seed: Number(value('seed') ?? 14),
    quick: argv.includes('--quick'),
    breakdown: argv.includes('--breakdown'),
    verbose: argv.includes('--verbose'),
    concurrency: Number(value('concurrency') ?? 8),
    cacheSimulator: !argv.includes('--no-cache-simulator'),
    baseline: value('baseline'),
    rounds: value('rounds') === undefined ? undefined : Number(value('rounds')),
  }
}

function printTable(rows: Row[]): void {
  const header = ['figure', 'guard', 'floor(s)', 'goal', 'met?']
  const cells = rows.map((row) => [
    row.figure,
    row.guard,
    row.floors,
    row.goal,
    row.met === undefined ? '' : row.met ? 'yes' : 'NO',
  ])
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((cell) => cell[column]!.length)),
  )
  const line = (values: string[]) =>
    `| ${values.map((value, column) => value.padEnd(widths[column]!)).join(' | ')} |`
  console.log(line(header))
  console.log(line(widths.map((width) => '-'.repeat(width))))
  let section = ''
  rows.forEach((row, index) => {
    if (row.section !== section) {
      section = row.section
      console.log(line([`**${section}**`, '', '', '', '']))
    }
    console.log(line(cells[index]!))
  })
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  const options = parseArguments(process.argv.slice(2))
  const load = monitorMachineLoad()
  const has = (phase: Phase) => options.phases.includes(phase)
  const workDir = mkdtempSync(join(tmpdir(), 'rag-guard-bench-'))
  const stub = await startStubProcess()
  try {
    // Only the Workers the chosen phases need.
    const need = {
      guard: true,
      passthrough:
        has('cpu') || has('streams') || has('memory') || has('latency') || has('instructions'),
      floorChatOpenAI:
        has('cpu') || has('bundle') || has('memory') || has('latency') || has('instructions'),
      floorFetch: has('cpu') || has('instructions'),
      streamLab: has('streams'),
      opLab: (has('cpu') && options.breakdown) || has('ops'),
    }
    const workers = {
      passthrough: 'passthrough.toml',
      floorChatOpenAI: 'floor-chatopenai.toml',
      floorFetch: 'floor-fetch.toml',
      streamLab: 'stream-lab.toml',
      opLab: 'op-lab.toml',
    }
    const guardMeta = join(workDir, 'guard-meta.json')
    const none: Bundle = { path: '', raw: 0, gzip: 0 }
    // Two builds at a time (wrangler is mostly one busy thread).
    const builds: Array<[keyof Bundles, () => Promise<Bundle>]> = [
      [
        'guard',
        async () => ({
          ...(await buildBundleAsync(join(workDir, 'guard'), { args: ['--metafile', guardMeta] })),
          metafile: guardMeta,
        }),
      ],
      ...(Object.entries(workers) as Array<[keyof typeof workers, string]>)
        .filter(([key]) => need[key])
        .map(([key, config]): [keyof Bundles, () => Promise<Bundle>] => [
          key,
          () =>
            buildBundleAsync(join(workDir, key), {
              config: join(ROOT, 'test/bench/workers', config),
            }),
        ]),
    ]
    const bundles: Bundles = {
      guard: none,
      passthrough: none,
      floorChatOpenAI: none,
      floorFetch: none,
      streamLab: none,
      opLab: none,
    }
    let nextBuild = 0
    await Promise.all(
      [0, 1].map(async () => {
        while (nextBuild < builds.length) {
          const [key, build] = builds[nextBuild++]!
          bundles[key] = await build()
        }
      }),
    )
    const context: BenchContext = {
      options,
      stub,
      bundles,
      rows: [],
      notes: [],
      log: (message) => {
        if (options.verbose) console.error(`  ${message}`)
      },
    }
    const step = (name: string) =>
      console.error(`[${((performance.now() - startedAt) / 1000).toFixed(0)} s] ${name}`)

    if (has('cpu') || has('streams')) {
      const targets = await startCpuTargets(context, has('cpu'))
      try {
        if (has('cpu')) {
          step('cpu: json requests, 16 KB / 200 KB / 1 MB contexts')
          await runCpuPhase(context, targets)
        }
        if (has('streams')) {
          step('streams: openai-chat relays, LangServe context events, the SSE parser')
          await runStreamPhase(context, targets)
        }
      } finally {
        await targets.dispose()
      }
    }
    if (has('ops') && !(has('cpu') && options.breakdown)) {
      step('ops: single operations of the request path (op-lab Worker)')
      await runOperationCosts(context)
    }
    if (has('memory')) {
      step('memory: 32 concurrent requests with 1 MB contexts')
      await runMemoryPhase(context)
    }
    if (has('bundle')) {
      step('bundle and startup')
      await runStartupPhase(context)
    }
    if (has('latency')) {
      step('latency: parallel, cache hit, streams, sequential')
      await runLatencyPhase(context)
    }
    if (has('instructions')) {
      step('instructions: json requests under callgrind, 16 KB / 200 KB / 1 MB contexts')
      await runInstructionPhase(context)
    }

    const elapsed = (performance.now() - startedAt) / 1000
    const machine = load.stop()
    const percent = (share: number) => `${(share * 100).toFixed(0)}%`
    console.log(
      `\nRAG Guard benchmark — ${cpus()[0]?.model.trim()} × ${cpus().length}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, seed ${options.seed}${options.quick ? ', --quick' : ''}; ${elapsed.toFixed(0)} s`,
    )
    console.log(
      `machine load: the benchmark used ${percent(machine.ownShare)} of all cores; other processes ${percent(machine.foreignShare)} (${percent(machine.foreignPeakShare)} in the busiest 10 s)${machine.foreignPeakShare > 0.1 ? ' — latency figures are disturbed by that load' : ''}\n`,
    )
    printTable(context.rows)
    if (context.notes.length > 0) {
      console.log('')
      for (const note of context.notes) console.log(`- ${note}`)
    }
    if (has('bundle') && bundles.guard.metafile) {
      const shares = bundleBreakdown(bundles.guard.path, bundles.guard.metafile)
      const kib = (bytes: number) => (bytes / 1024).toFixed(1)
      console.log(
        `\nGuard bundle by package (KiB; gzip: each package's text gzipped alone): ${shares
          .filter((share) => share.minified >= 1024)
          .map((share) => `${share.name} ${kib(share.minified)} (${kib(share.gzip)})`)
          .join(' · ')}`,
      )
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
