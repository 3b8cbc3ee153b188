/**
 * Peak memory with 32 concurrent requests carrying 1 MB contexts (json route, context in the
 * request), measured two ways:
 *   - the Worker's own isolate, through workerd's inspector: `Runtime.getHeapUsage` every
 *     ~10 ms gives the V8 heap in use (garbage not yet collected included) and the ArrayBuffer
 *     backing stores outside it; every ~100 ms a full GC (forced by `Runtime.queryObjects`,
 *     since workerd does not answer `HeapProfiler.collectGarbage`) then `getHeapUsage` gives
 *     the live heap. Each over the same figure at rest (after a GC), taken before the burst.
 *   - the workerd process's peak RSS (VmHWM, reset through /proc/<pid>/clear_refs first) over
 *     its RSS at rest: everything the process holds for the requests, the runtime's own buffers
 *     for bodies and subrequests included, and Miniflare's services beside the Worker.
 * Samples can miss a short peak, so the isolate figures are lower bounds; the RSS peak is not
 * sampled. The same is measured for the pass-through Worker (moving 32 MB of bodies at all) and
 * the ChatOpenAI floor (one judge call per request, no more).
 */
import { ms, type BenchContext } from './context'
import { documents, jsonUpstream } from './fixtures'
import { post, startTarget, type Target } from './harness'
import { connectInspector, type Inspector } from './inspector'
import { scriptDelays, expectJudged } from './cpu-phase'
import { guardBindings, upstreamBindings } from './targets'
import { readMemory, resetPeakRss } from '../../support/workerd-process'

const MiB = 1024 * 1024

interface HeapUsage {
  usedSize: number
  totalSize: number
  backingStorageSize?: number
}

interface MemoryFigures {
  /** MiB over the figure at rest. */
  heap: number
  live: number
  backing: number
  rss: number
  /** At rest, MiB. */
  heapBase: number
  rssBase: number
  wallMs: number
}

/** Heap usage, and a way to collect all garbage first. */
async function heapProbe(inspector: Inspector) {
  let contextId: unknown
  inspector.on('Runtime.executionContextCreated', (params) => {
    contextId ??= (params.context as { id: unknown }).id
  })
  await inspector.send('Runtime.enable')
  if (contextId === undefined) throw new Error('the inspector named no execution context')
  // Runtime.queryObjects runs a full, synchronous GC before it walks the heap; asking for the
  // instances of Symbol.prototype keeps its answer tiny.
  const { result } = await inspector.send<{ result: { objectId: string } }>('Runtime.evaluate', {
    expression: 'Symbol.prototype',
    objectGroup: 'bench-probe',
    contextId,
  })
  return {
    usage: () => inspector.send<HeapUsage>('Runtime.getHeapUsage'),
    async collect() {
      await inspector.send('Runtime.queryObjects', {
        prototypeObjectId: result.objectId,
        objectGroup: 'bench-gc',
      })
      await inspector.send('Runtime.releaseObjectGroup', { objectGroup: 'bench-gc' })
    },
  }
}

async function burst(
  context: BenchContext,
  target: Target,
  concurrent: number,
  contextJson: string,
): Promise<MemoryFigures> {
  const inspector = await connectInspector(
    new URL(`/core:user:${target.name}`, await target.miniflare.getInspectorURL()).href,
  )
  try {
    const probe = await heapProbe(inspector)
    const body = (index: number) =>
      `{"question":"When do harbor district stations close? [mem ${index}]","context":${contextJson}}`
    // Warm up, rest, then the baseline after a full GC.
    const quick = { medianMs: 20, sigma: 0.1 }
    await scriptDelays(context, 'cpu-json', context.options.seed, 8, jsonUpstream, quick, quick)
    for (let index = 0; index < 4; index++) {
      expectJudged(target, await post(`${target.url}/cpu-json/ask`, body(-1 - index)))
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    await probe.collect()
    const base = await probe.usage()
    const rssBase = readMemory(target.pid).rssMiB
    if (!resetPeakRss(target.pid)) throw new Error('cannot reset VmHWM (/proc/<pid>/clear_refs)')

    // Every request in flight at once: the upstream and the judge answer after about 1.5–2 s.
    await scriptDelays(
      context,
      'cpu-json',
      context.options.seed + 1,
      concurrent,
      jsonUpstream,
      { medianMs: 2000, sigma: 0.1 },
      { medianMs: 1500, sigma: 0.1 },
    )
    let done = false
    let heapPeak = base.usedSize
    let backingPeak = base.backingStorageSize ?? 0
    let livePeak = base.usedSize
    const sampler = (async () => {
      for (let tick = 1; !done; tick++) {
        const usage = await probe.usage()
        heapPeak = Math.max(heapPeak, usage.usedSize)
        backingPeak = Math.max(backingPeak, usage.backingStorageSize ?? 0)
        if (tick % 10 === 0) {
          await probe.collect()
          livePeak = Math.max(livePeak, (await probe.usage()).usedSize)
        }
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    })()
    const startedAt = performance.now()
    const bodies = Array.from({ length: concurrent }, (_, index) => body(index))
    try {
      await Promise.all(
        bodies.map(async (text) =>
          expectJudged(target, await post(`${target.url}/cpu-json/ask`, text)),
        ),
      )
    } finally {
      done = true
      await sampler
    }
    const wallMs = performance.now() - startedAt
    return {
      heap: (heapPeak - base.usedSize) / MiB,
      live: (livePeak - base.usedSize) / MiB,
      backing: (backingPeak - (base.backingStorageSize ?? 0)) / MiB,
      rss: readMemory(target.pid).hwmMiB - rssBase,
      heapBase: base.usedSize / MiB,
      rssBase,
      wallMs,
    }
  } finally {
    inspector.close()
  }
}

export async function runMemoryPhase(context: BenchContext) {
  const concurrent = 32
  const contextJson = JSON.stringify(documents(context.options.seed + 2, MiB))
  const results = new Map<string, MemoryFigures>()
  for (const [name, bundle, bindings] of [
    ['guard', context.bundles.guard.path, guardBindings(context)],
    ['floor-chatopenai', context.bundles.floorChatOpenAI.path, upstreamBindings(context)],
    ['passthrough', context.bundles.passthrough.path, upstreamBindings(context)],
  ] as const) {
    const target = await startTarget(name, bundle, bindings, {
      cache: false,
      inspectorPort: 0,
      name,
    })
    try {
      results.set(name, await burst(context, target, concurrent, contextJson))
      context.log(`memory ${name}: ${JSON.stringify(results.get(name))}`)
    } finally {
      await target.dispose()
    }
  }
  const guard = results.get('guard')!
  const floor = results.get('floor-chatopenai')!
  const pass = results.get('passthrough')!
  const mib = (value: number) => `+${value.toFixed(0)}`
  // What the isolate must hold: live heap and ArrayBuffers (both count against its 128 MB).
  const held = guard.live + guard.backing
  context.rows.push({
    section: 'Memory',
    figure: `peak, ${concurrent} concurrent requests with 1 MB contexts, over the Worker at rest (MiB)`,
    guard: `live heap ${mib(guard.live)} + ArrayBuffers ${mib(guard.backing)} = ${mib(held)} (heap with garbage ${mib(guard.heap)}); process RSS ${mib(guard.rss)}`,
    floors: `ChatOpenAI floor: live ${mib(floor.live)} + ${mib(floor.backing)}, RSS ${mib(floor.rss)} · pass-through: live ${mib(pass.live)} + ${mib(pass.backing)}, RSS ${mib(pass.rss)}`,
    goal: '< 100 MB',
    met: held * MiB < 100e6,
  })
  context.notes.push(
    `Memory: the isolate's figures come from workerd's inspector (getHeapUsage every ~10 ms, a forced full GC then getHeapUsage every ~100 ms for the live heap; sampled, so lower bounds); the goal is judged on live heap + ArrayBuffer backing stores, what the isolate must hold. Process RSS (VmHWM after clear_refs, not sampled) also holds the runtime's own body buffers and Miniflare's services; at rest ${guard.rssBase.toFixed(0)} MiB, the guard's heap at rest ${guard.heapBase.toFixed(1)} MiB. Burst wall time ${ms(guard.wallMs, 0)}.`,
  )
}
