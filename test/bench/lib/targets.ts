/** The Workers the CPU phases compare, each in its own workerd, and the guard's configuration. */
import type { BenchContext } from './context'
import { idleRate, startTarget, type Target } from './harness'

export const JUDGE_SCENARIO = 'judge'

/** Guarded routes. The first path segment names the stub scenario that plays the upstream. */
export const GUARD_ROUTES = [
  { path: '/cpu-json/ask', format: 'json', answer: '/answer' },
  { path: '/cpu-chat/hold/chat/completions', format: 'openai-chat' },
  { path: '/cpu-chat/annotate/chat/completions', format: 'openai-chat', streamMode: 'annotate' },
  { path: '/cpu-rag/hold/stream', format: 'langserve' },
  { path: '/cpu-rag/annotate/stream', format: 'langserve', streamMode: 'annotate' },
  { path: '/lat-json/ask', format: 'json', answer: '/answer' },
  { path: '/lat-cached/ask', format: 'json', answer: '/answer' },
  {
    path: '/lat-seq/ask',
    format: 'json',
    context: { in: 'response', pointer: '/sources' },
    answer: '/answer',
  },
  { path: '/lat-chat/hold/chat/completions', format: 'openai-chat' },
  { path: '/lat-chat/annotate/chat/completions', format: 'openai-chat', streamMode: 'annotate' },
]

export function upstreamBindings(context: BenchContext) {
  return {
    UPSTREAM_URL: `${context.stub.origin}/s`,
    OPENAI_BASE_URL: `${context.stub.origin}/s/${JUDGE_SCENARIO}/v1`,
    OPENAI_API_KEY: 'bench-key',
    JUDGE_MODEL: 'gpt-4o-mini',
  }
}

/**
 * The guard as deployed (wrangler.toml's defaults: decision log on, 20 top_logprobs, verdict
 * cache on), in enforce mode, with the benchmark's routes. `overrides` change settings.
 */
export function guardBindings(context: BenchContext, overrides: Record<string, unknown> = {}) {
  return {
    ...upstreamBindings(context),
    GUARD_MODE: 'enforce',
    // The benchmark's client sends no credentials; a token check is a string compare besides.
    GUARD_AUTH: 'none',
    GUARD_DETAILS: 'everyone',
    CACHE_SCOPE: 'shared',
    PASS_THROUGH: [{ path: '/*', methods: ['GET', 'POST'] }],
    ON_ERROR: 'flag',
    BLOCK_BELOW: 0.2,
    FLAG_BELOW: 0.8,
    // Generous: a 1 MB prompt takes the stub a while; a timeout would hide the cost measured.
    JUDGE_TIMEOUT_MS: 20_000,
    // A 10,000-event stream that arrives whole before the verdict is about 2.3 MB: held whole,
    // not cut off at the 1 MiB default (which would measure the overflow path instead).
    STREAM_BUFFER_BYTES: 4 * 1024 * 1024,
    GUARD_ROUTES: GUARD_ROUTES,
    ...overrides,
  }
}

export interface CpuTargets {
  passthrough: Target
  /** Only when the cpu phase runs. */
  floorFetch?: Target
  floorChatOpenAI?: Target
  guard: Target
  /** --breakdown: the guard with one thing changed. */
  variants: Array<{ label: string; target: Target }>
  idle: Map<Target, number>
  dispose(): Promise<void>
}

export async function startCpuTargets(
  context: BenchContext,
  withFloors: boolean,
): Promise<CpuTargets> {
  const { bundles } = context
  const started: Target[] = []
  const start = async (...args: Parameters<typeof startTarget>) => {
    const target = await startTarget(...args)
    started.push(target)
    return target
  }
  try {
    const passthrough = await start(
      'pass-through',
      bundles.passthrough.path,
      upstreamBindings(context),
    )
    const floorFetch = withFloors
      ? await start('floor: fetch', bundles.floorFetch.path, upstreamBindings(context))
      : undefined
    const floorChatOpenAI = withFloors
      ? await start('floor: ChatOpenAI', bundles.floorChatOpenAI.path, upstreamBindings(context))
      : undefined
    // Miniflare's Cache API simulator is a JavaScript Durable Object in the same workerd
    // process; on Cloudflare the cache is not the isolate's CPU. Its no-op version keeps every
    // call the guard makes (key hashing, the Response it stores) and drops the simulator's work.
    const guard = await start('guard', bundles.guard.path, guardBindings(context), { cache: false })
    const variants: CpuTargets['variants'] = []
    // --baseline a.js,b.js: guard bundles built elsewhere, measured in the same rounds.
    for (const [index, bundle] of (context.options.baseline?.split(',') ?? []).entries()) {
      if (!withFloors) break
      const name = `guard baseline ${index + 1}`
      variants.push({
        label: `${name} (${bundle})`,
        target: await start(name, bundle, guardBindings(context), { cache: false }),
      })
    }
    if (context.options.breakdown && withFloors) {
      const variant = async (label: string, overrides: Record<string, unknown>, cache = false) =>
        variants.push({
          label,
          target: await start(label, bundles.guard.path, guardBindings(context, overrides), {
            cache,
          }),
        })
      await variant('guard, decision log off', { LOG_DECISIONS: false })
      await variant('guard, verdict cache off', { CACHE_TTL_SECONDS: 0 })
      await variant('guard, log and cache off', { LOG_DECISIONS: false, CACHE_TTL_SECONDS: 0 })
      await variant('guard, old bench (log off, 2 top_logprobs)', {
        LOG_DECISIONS: false,
        JUDGE_TOP_LOGPROBS: 2,
      })
      await variant("guard, Miniflare's cache simulator on", {}, true)
    }
    const idle = new Map<Target, number>()
    for (const target of started) idle.set(target, await idleRate(target.pid, 500))
    return {
      passthrough,
      floorFetch,
      floorChatOpenAI,
      guard,
      variants,
      idle,
      dispose: async () => {
        for (const target of started) await target.dispose()
      },
    }
  } catch (error) {
    for (const target of started) await target.dispose().catch(() => {})
    throw error
  }
}
