/**
 * Bundle size and startup CPU of the guard against the ChatOpenAI-only floor Worker.
 *
 * Size: the bundle `wrangler deploy --dry-run` writes (minified, as wrangler.toml says), and
 * its gzip at level 9.
 *
 * Startup: what `wrangler check startup` does, without rebuilding each time: the bundle is
 * loaded in a fresh workerd (Miniflare) by a wrapper Worker that imports it on its first
 * request, so the import (compile and top-level evaluation) is the startup. Two figures per
 * run, from separate runs:
 *   - profile: the non-idle time of a V8 CPU profile of the import (wrangler's own method);
 *   - process: the workerd process's CPU (schedstat, ns) over the first request, no profiler.
 * Runs alternate guard and floor; each figure is a median.
 */
import { readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { convertV4MiniflareOptions, Miniflare } from 'miniflare'
import { compatibilityDate, compatibilityFlags } from '../../support/compatibility'
import {
  cpuSince,
  newWorkerd,
  readCpu,
  settle,
  workerdChildren,
} from '../../support/workerd-process'
import { median, ms, signedMs, type BenchContext, type Bundle } from './context'
import { busyMs, connectInspector, type CpuProfile } from './inspector'

const KiB = 1024

export async function startupOnce(bundle: Bundle, profiled: boolean): Promise<number> {
  const before = workerdChildren()
  const name = 'startup'
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      name,
      compatibilityDate,
      compatibilityFlags,
      modulesRoot: dirname(bundle.path),
      modules: [
        {
          type: 'ESModule',
          path: join(dirname(bundle.path), '__startup-wrapper.mjs'),
          contents: `export default { async fetch() { await import('./${basename(bundle.path)}'); return new Response('ok') } }`,
        },
        { type: 'ESModule', path: bundle.path, contents: readFileSync(bundle.path, 'utf8') },
      ],
      ...(profiled ? { inspectorPort: 0 } : {}),
      // Drop workerd's output.
      handleStructuredLogs: () => {},
    }),
  )
  try {
    await mf.ready
    const pid = newWorkerd(before)
    if (!profiled) {
      await settle(pid, 100)
      const cpu = readCpu(pid)
      await (await mf.dispatchFetch('http://startup.local/')).text()
      return cpuSince(pid, cpu).schedMs
    }
    const inspector = await connectInspector(
      new URL(`/core:user:${name}`, await mf.getInspectorURL()).href,
    )
    try {
      await inspector.send('Profiler.enable')
      await inspector.send('Profiler.start')
      await (await mf.dispatchFetch('http://startup.local/')).text()
      const { profile } = await inspector.send<{ profile: CpuProfile }>('Profiler.stop')
      return busyMs(profile)
    } finally {
      inspector.close()
    }
  } finally {
    await mf.dispose()
  }
}

/** Medians of alternating startup runs of two bundles, both methods. */
export async function compareStartup(a: Bundle, b: Bundle, runs: number) {
  const figures = {
    a: { profile: [] as number[], process: [] as number[] },
    b: { profile: [] as number[], process: [] as number[] },
  }
  for (let run = 0; run < runs; run++) {
    const order = run % 2 ? (['b', 'a'] as const) : (['a', 'b'] as const)
    for (const profiled of [true, false]) {
      for (const which of order) {
        const value = await startupOnce(which === 'a' ? a : b, profiled)
        figures[which][profiled ? 'profile' : 'process'].push(value)
      }
    }
  }
  const summary = (values: { profile: number[]; process: number[] }) => ({
    profile: median(values.profile),
    process: median(values.process),
    profileRuns: values.profile,
    processRuns: values.process,
  })
  // Differences of runs next to each other (the machine's load drifts), median.
  const paired = (key: 'profile' | 'process') =>
    median(figures.a[key].map((value, run) => value - figures.b[key][run]!))
  return {
    a: summary(figures.a),
    b: summary(figures.b),
    difference: { profile: paired('profile'), process: paired('process') },
  }
}

export async function runStartupPhase(context: BenchContext) {
  const { guard, floorChatOpenAI } = context.bundles
  const kib = (bytes: number) => `${(bytes / KiB).toFixed(1)} KiB`
  context.rows.push({
    section: 'Bundle and startup',
    figure: 'bundle, gzip (minified, as wrangler deploy builds it)',
    guard: `${kib(guard.gzip)} (${kib(guard.raw)} minified)`,
    floors: `ChatOpenAI-only floor ${kib(floorChatOpenAI.gzip)} (${kib(floorChatOpenAI.raw)})`,
    goal: '≤ 250 KiB',
    met: guard.gzip <= 250 * KiB,
  })
  const runs = context.options.quick ? 3 : 7
  const startup = await compareStartup(guard, floorChatOpenAI, runs)
  context.log(`startup: ${JSON.stringify(startup)}`)
  const difference = startup.difference.process
  context.rows.push({
    section: 'Bundle and startup',
    figure: `startup CPU: workerd's CPU over the import (median of ${runs}, alternating)`,
    guard: `${ms(startup.a.process, 1)} (${signedMs(difference, 1)})`,
    floors: `ChatOpenAI-only floor ${ms(startup.b.process, 1)}`,
    goal: '≤ floor + 5 ms',
    met: difference <= 5,
  })
  context.rows.push({
    section: 'Bundle and startup',
    figure: `startup, wrangler check startup's method: profile's non-idle time (median of ${runs})`,
    guard: `${ms(startup.a.profile, 1)} (${signedMs(startup.difference.profile, 1)})`,
    floors: `ChatOpenAI-only floor ${ms(startup.b.profile, 1)}`,
    goal: '',
  })
  context.notes.push(
    "Startup: a fresh workerd per run imports the bundle on its first request; guard and floor alternate, and the difference is the median of the differences of neighbouring runs. The goal row counts the workerd process's CPU (schedstat) over that request; wrangler check startup's figure (a CPU profile's non-idle samples) counts wall time between samples, so it grows when the machine is busy.",
  )
}
