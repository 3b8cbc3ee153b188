/**
 * Instructions per request inside workerd, counted by valgrind's callgrind: the cpu phase's
 * json requests (16 KB / 200 KB / 1 MB contexts) against the same Workers, one at a time. An
 * instruction count does not move with the machine's load: Workers counted in one run compare
 * within about 0.15 M at 16 KB (the same bundle moves by a few per cent between runs, as the order
 * of events under valgrind differs), where the CPU time's rounds spread by ±30%. It is not time:
 * system calls are not in it, and under valgrind the CPU has no SHA extensions (SHA-256 counts
 * several times its native cost). Every thread of the process is counted (the JIT compiler's and
 * the garbage collector's too), as the CPU time counts them.
 *
 * Needs valgrind (Debian's package `valgrind`); under it workerd runs some 50 times slower, so
 * the counts come from fewer requests than the cpu phase sends.
 */
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { settle } from '../../support/workerd-process'
import type { BenchContext } from './context'
import { CPU_JUDGE, CPU_UPSTREAM, expectJudged, scriptDelays, SIZES } from './cpu-phase'
import { documents, jsonUpstream } from './fixtures'
import { pool, post, startTarget, type Target } from './harness'
import { guardBindings, upstreamBindings } from './targets'

/** Requests counted per size (and as many again to warm up): fewer as the bodies grow. */
const COUNTS: Record<(typeof SIZES)[number]['label'], number> = {
  '16 KB': 40,
  '200 KB': 16,
  '1 MB': 6,
}

const COMMAND = 'callgrind-amd64'

/** The workerd binary Miniflare runs (its own dependency's, unless MINIFLARE_WORKERD_PATH says another). */
function workerdBinary(): string {
  if (process.env.MINIFLARE_WORKERD_PATH) return process.env.MINIFLARE_WORKERD_PATH
  const fromMiniflare = createRequire(fileURLToPath(import.meta.resolve('miniflare')))
  return (fromMiniflare('workerd') as { default: string }).default
}

function missing(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0
}

/** A wrapper Miniflare runs in workerd's place: workerd under callgrind, its counts in `dir`. */
function wrapper(dir: string, workerd: string): string {
  const path = join(dir, 'workerd-callgrind')
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      // JIT code is written and run in the same pages (V8): callgrind must see it change.
      `exec valgrind --tool=callgrind --smc-check=all-non-file --vex-iropt-register-updates=allregs-at-mem-access --error-limit=no --log-file=${join(dir, 'valgrind.%p.log')} --callgrind-out-file=${join(dir, 'callgrind.%p')} "${workerd}" "$@"`,
      '',
    ].join('\n'),
  )
  chmodSync(path, 0o755)
  return path
}

/** Instructions since the last dump (or zeroing) of the process's counters. */
function dump(dir: string, pid: number): number {
  const before = new Set(readdirSync(dir))
  const done = spawnSync('callgrind_control', ['--dump', String(pid)], { encoding: 'utf8' })
  if (done.status !== 0) throw new Error(`callgrind_control --dump failed: ${done.stderr}`)
  const file = readdirSync(dir).find(
    (name) => name.startsWith(`callgrind.${pid}.`) && !before.has(name),
  )
  if (!file) throw new Error('callgrind wrote no dump')
  const text = readFileSync(join(dir, file), 'utf8')
  const total = /^(?:summary|totals): (\d+)/m.exec(text)
  if (!total) throw new Error(`no totals in ${file}`)
  return Number(total[1])
}

function zero(pid: number): void {
  spawnSync('callgrind_control', ['--zero', String(pid)], { stdio: 'ignore' })
}

const millions = (value: number) => `${(value / 1e6).toFixed(2)} M`
const signedMillions = (value: number) =>
  `${value >= 0 ? '+' : '−'}${(Math.abs(value) / 1e6).toFixed(2)} M`

export async function runInstructionPhase(context: BenchContext): Promise<void> {
  const section = 'Instructions per request in workerd (callgrind), over the pass-through Worker'
  const lacking = ['valgrind', 'callgrind_control'].filter(missing)
  if (lacking.length > 0) {
    context.notes.push(
      `instructions: not measured, ${lacking.join(' and ')} not found (Debian: apt-get install valgrind)`,
    )
    return
  }
  const { bundles, options } = context
  const dir = mkdtempSync(join(tmpdir(), 'rag-guard-callgrind-'))
  const workerd = wrapper(dir, workerdBinary())
  const lanes: Array<{ name: string; bundle: string; bindings: Record<string, unknown> }> = [
    { name: 'pass-through', bundle: bundles.passthrough.path, bindings: upstreamBindings(context) },
    { name: 'floor: fetch', bundle: bundles.floorFetch.path, bindings: upstreamBindings(context) },
    {
      name: 'floor: ChatOpenAI',
      bundle: bundles.floorChatOpenAI.path,
      bindings: upstreamBindings(context),
    },
    { name: 'guard', bundle: bundles.guard.path, bindings: guardBindings(context) },
    ...(options.baseline?.split(',') ?? []).map((bundle, index) => ({
      name: `guard baseline ${index + 1} (${bundle})`,
      bundle,
      bindings: guardBindings(context),
    })),
    ...(options.breakdown
      ? [
          ['guard, decision log off', { LOG_DECISIONS: false }],
          ['guard, verdict cache off', { CACHE_TTL_SECONDS: 0 }],
          ['guard, log and cache off', { LOG_DECISIONS: false, CACHE_TTL_SECONDS: 0 }],
        ].map(([name, overrides]) => ({
          name: name as string,
          bundle: bundles.guard.path,
          bindings: guardBindings(context, overrides as Record<string, unknown>),
        }))
      : []),
  ]
  // Before minutes go into the first lanes: every bundle is there.
  for (const lane of lanes) {
    if (!existsSync(lane.bundle)) throw new Error(`${lane.name}: no bundle at ${lane.bundle}`)
  }
  // counts.get(size)[lane]: instructions per request
  const counts = new Map<string, number[]>()
  try {
    for (const [laneIndex, lane] of lanes.entries()) {
      const target: Target = await startTarget(lane.name, lane.bundle, lane.bindings, {
        cache: false,
        workerd: { path: workerd, command: COMMAND },
      })
      try {
        for (const [sizeIndex, size] of SIZES.entries()) {
          const count = COUNTS[size.label]
          const contextJson = JSON.stringify(documents(options.seed + sizeIndex, size.bytes))
          await scriptDelays(
            context,
            'cpu-json',
            options.seed * 1000 + sizeIndex,
            count * 2 + 5,
            jsonUpstream,
            CPU_UPSTREAM,
            CPU_JUDGE,
          )
          const request = async (index: number) => {
            const body = `{"question":"When do harbor district stations close? [instructions ${size.label} ${index}]","context":${contextJson}}`
            expectJudged(target, await post(`${target.url}/cpu-json/ask`, body))
          }
          await pool(count, 2, (index) => request(-1 - index))
          await settle(target.pid)
          zero(target.pid)
          await pool(count, 2, request)
          // What the requests left behind (waitUntil: the record, the cache write) counts too.
          await settle(target.pid)
          const perRequest = dump(dir, target.pid) / count
          const row = counts.get(size.label) ?? []
          row[laneIndex] = perRequest
          counts.set(size.label, row)
          context.log(
            `instructions ${size.label} ${lane.name}: ${millions(perRequest)} per request (${count} requests)`,
          )
        }
      } finally {
        await target.dispose()
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  for (const size of SIZES) {
    const row = counts.get(size.label)!
    const pass = row[0]!
    const guard = row[3]!
    context.rows.push({
      section,
      figure: `json, ${size.label} context in the request (parallel), log on, 20 top_logprobs`,
      guard: `${signedMillions(guard - pass)} (${millions(guard)} in all; ChatOpenAI floor ${signedMillions(guard - row[2]!)})`,
      floors: `fetch ${signedMillions(row[1]! - pass)} · ChatOpenAI ${signedMillions(row[2]! - pass)} · pass-through ${millions(pass)}`,
      goal: '',
    })
    for (const [index, lane] of lanes.entries()) {
      if (index < 4) continue
      context.rows.push({
        section,
        figure: `  ${lane.name}, ${size.label}`,
        guard: `${signedMillions(row[index]! - pass)} (guard ${signedMillions(row[index]! - guard)})`,
        floors: '',
        goal: '',
      })
    }
  }
  context.notes.push(
    `Instructions: every thread of the workerd process under valgrind's callgrind, counted over ${Object.entries(
      COUNTS,
    )
      .map(([label, count]) => `${count} requests at ${label}`)
      .join(
        ', ',
      )} after as many to warm up, two at a time, one Worker at a time (the cpu phase's requests and delays; Miniflare's no-op Cache API, a small Worker in the same process, counted with the guard). Compare Workers of one run (differences under about 0.15 M at 16 KB and 0.5 M at 200 KB are noise); not time: compare with the cpu phase's ms.`,
  )
}
