/**
 * CPU time per request inside workerd, for a json route with the context in the request
 * (parallel mode): the guard against the pass-through Worker and the two floors, at 16 KB,
 * 200 KB and 1 MB of context. Rounds alternate the Workers; each figure is the median of the
 * rounds.
 */
import { scriptScenario } from '../../stub/openai-stub'
import { median, ms, signedMs, type BenchContext } from './context'
import { documents, jsonUpstream, judgeStep } from './fixtures'
import { cpuPerRequest, post, startTarget, type Target } from './harness'
import { generator, logNormal, type DelayModel } from './random'
import { JUDGE_SCENARIO, upstreamBindings, type CpuTargets } from './targets'

/** Delays of the CPU phases: short, so that runs are quick; the judge is slower than the upstream in about a third of requests. */
export const CPU_UPSTREAM: DelayModel = { medianMs: 25, sigma: 0.5 }
export const CPU_JUDGE: DelayModel = { medianMs: 18, sigma: 0.6 }

export interface Expectation {
  (target: Target, response: { status: number; headers: Headers; text: string }): void
}

/** What each kind of Worker must answer; anything else stops the benchmark. */
export const expectJudged: Expectation = (target, response) => {
  if (response.status !== 200) {
    throw new Error(`${target.name}: status ${response.status}: ${response.text.slice(0, 300)}`)
  }
  if (target.name.startsWith('floor')) {
    const score = response.headers.get('x-rag-guard-score')
    if (!score || score === 'none') throw new Error(`${target.name}: no score (${score})`)
  } else if (target.name.startsWith('guard')) {
    const verdict = response.headers.get('x-rag-guard-verdict')
    if (verdict !== 'pass') {
      throw new Error(
        `${target.name}: verdict ${verdict} (${response.headers.get('x-rag-guard-reason')}), expected pass`,
      )
    }
  }
}

export interface CpuFigure {
  /** Median over rounds of CPU ms per request (stat), and of the schedstat figure. */
  perRequestMs: number
  perRequestSchedMs: number
  rounds: number[]
  schedRounds: number[]
}

export const SIZES = [
  { label: '16 KB', bytes: 16 * 1024, count: 100, warmup: 30, goalMs: 1.5 },
  { label: '200 KB', bytes: 200 * 1024, count: 30, warmup: 10, goalMs: 3 },
  { label: '1 MB', bytes: 1024 * 1024, count: 10, warmup: 3, goalMs: undefined },
] as const

/** Scripts the upstream and the judge with `count` seeded delays each (steps are taken in turn). */
export async function scriptDelays(
  context: BenchContext,
  upstreamScenario: string,
  seed: number,
  count: number,
  upstreamStep: (delayMs: number) => Parameters<typeof scriptScenario>[2],
  upstreamDelay: DelayModel,
  judgeDelay: DelayModel,
) {
  const random = generator(seed)
  const upstream = logNormal(random, upstreamDelay.medianMs, upstreamDelay.sigma)
  const judge = logNormal(random, judgeDelay.medianMs, judgeDelay.sigma)
  const upstreamDelays = Array.from({ length: count }, upstream)
  const judgeDelays = Array.from({ length: count }, judge)
  await scriptScenario(context.stub.origin, upstreamScenario, {
    steps: upstreamDelays.map((delay) => upstreamStep(delay) as never),
  })
  await scriptScenario(context.stub.origin, JUDGE_SCENARIO, {
    steps: judgeDelays.map((delay) => judgeStep(delay)),
  })
}

export async function runCpuPhase(context: BenchContext, targets: CpuTargets) {
  const { options } = context
  const rounds = options.rounds ?? (options.quick ? 1 : 3)
  const concurrency = 4
  const floorFetch = targets.floorFetch!
  const floorChatOpenAI = targets.floorChatOpenAI!
  const list: Target[] = [
    targets.passthrough,
    floorFetch,
    floorChatOpenAI,
    targets.guard,
    ...targets.variants.map((variant) => variant.target),
  ]
  const results = new Map<string, Map<Target, CpuFigure>>()
  for (const [sizeIndex, size] of SIZES.entries()) {
    const contextJson = JSON.stringify(documents(options.seed + sizeIndex, size.bytes))
    const count = options.quick ? Math.ceil(size.count / 2) : size.count
    const perTarget = new Map<Target, CpuFigure>()
    for (let round = 0; round < rounds; round++) {
      // Alternate the order from round to round.
      const order = round % 2 ? [...list].reverse() : list
      for (const target of order) {
        const seed = options.seed * 1000 + sizeIndex * 10 + round
        await scriptDelays(
          context,
          'cpu-json',
          seed,
          count + size.warmup + 5,
          jsonUpstream,
          CPU_UPSTREAM,
          CPU_JUDGE,
        )
        const linesBefore = target.decisionLines
        const result = await cpuPerRequest(target, {
          count,
          warmup: size.warmup,
          concurrency,
          idlePerMs: targets.idle.get(target) ?? 0,
          request: async (index) => {
            const body = `{"question":"When do harbor district stations close? [cpu ${size.label} ${round} ${index}]","context":${contextJson}}`
            expectJudged(target, await post(`${target.url}/cpu-json/ask`, body))
          },
        })
        const logged = target.decisionLines - linesBefore
        if (target === targets.guard && logged !== count + size.warmup) {
          throw new Error(`guard: ${logged} decision-log lines for ${count + size.warmup} requests`)
        }
        const figure = perTarget.get(target) ?? {
          perRequestMs: 0,
          perRequestSchedMs: 0,
          rounds: [],
          schedRounds: [],
        }
        figure.rounds.push(result.perRequestMs)
        figure.schedRounds.push(result.perRequestSchedMs)
        perTarget.set(target, figure)
        context.log(
          `cpu ${size.label} round ${round + 1}/${rounds} ${target.name}: ${result.perRequestMs.toFixed(3)} ms/request (schedstat ${result.perRequestSchedMs.toFixed(3)}), ${count} requests in ${result.wallMs.toFixed(0)} ms`,
        )
      }
    }
    for (const figure of perTarget.values()) {
      figure.perRequestMs = median(figure.rounds)
      figure.perRequestSchedMs = median(figure.schedRounds)
    }
    results.set(size.label, perTarget)

    const pass = perTarget.get(targets.passthrough)!.perRequestMs
    // Over the pass-through measured in the same round (the machine's load drifts between
    // rounds), median over rounds.
    const passRounds = perTarget.get(targets.passthrough)!.rounds
    const over = (target: Target) =>
      median(perTarget.get(target)!.rounds.map((value, round) => value - passRounds[round]!))
    const guardOver = over(targets.guard)
    context.rows.push({
      section: 'CPU per request in workerd, over the pass-through Worker',
      figure: `json, ${size.label} context in the request (parallel), log on, 20 top_logprobs`,
      guard: `${signedMs(guardOver)} (${ms(perTarget.get(targets.guard)!.perRequestMs)} in all)`,
      floors: `fetch ${signedMs(over(floorFetch))} · ChatOpenAI ${signedMs(over(floorChatOpenAI))} · pass-through ${ms(pass)}`,
      goal: size.goalMs === undefined ? '' : `≤ ${size.goalMs} ms`,
      met: size.goalMs === undefined ? undefined : guardOver <= size.goalMs,
    })
    // Every round of every Worker over the pass-through, from stat and from schedstat: the
    // spread of each figure, for before/after comparisons (--baseline).
    const schedRounds = perTarget.get(targets.passthrough)!.schedRounds
    const spreadOf = (target: Target) => {
      const figure = perTarget.get(target)!
      const statOver = figure.rounds.map((value, round) => value - passRounds[round]!)
      const schedOver = figure.schedRounds.map((value, round) => value - schedRounds[round]!)
      const list = (values: number[]) => values.map((value) => signedMs(value)).join(' / ')
      return `${target.name}: stat ${list(statOver)}; schedstat median ${signedMs(median(schedOver))} (${list(schedOver)})`
    }
    context.notes.push(
      `CPU ${size.label}, each round over the pass-through (pass-through schedstat ${schedRounds.map((value) => ms(value)).join(' / ')}): ${[floorFetch, floorChatOpenAI, targets.guard, ...targets.variants.map((variant) => variant.target)].map(spreadOf).join(' · ')}`,
    )
    for (const variant of targets.variants) {
      context.rows.push({
        section: 'CPU per request in workerd, over the pass-through Worker',
        figure: `  ${variant.label}, ${size.label}`,
        guard: signedMs(over(variant.target)),
        floors: '',
        goal: '',
      })
    }
  }
  const spread = [...results.values()].flatMap((perTarget) =>
    [...perTarget.values()].map((figure) =>
      Math.abs(figure.perRequestMs - figure.perRequestSchedMs),
    ),
  )
  context.notes.push(
    `CPU: utime+stime of the workerd process (/proc/<pid>/stat, 10 ms ticks) in ${rounds} round(s) of every Worker in turn; a difference over the pass-through is taken within each round, then the median; the threads' schedstat (ns) agrees within ${Math.max(...spread).toFixed(3)} ms/request. Delays: upstream ${CPU_UPSTREAM.medianMs} ms and judge ${CPU_JUDGE.medianMs} ms medians (log-normal, seeded), concurrency ${concurrency}. The guard runs as deployed (verdict cache on); its Cache API calls go to Miniflare's no-op cache, itself a small Worker in the same process (the cache simulator's own work is not the isolate's CPU on Cloudflare; --breakdown shows the guard with the cache off).`,
  )
  if (options.breakdown) await runOperationCosts(context)
  return results
}

/**
 * The cost of single operations of the guard's request path (op-lab Worker): each repeated n
 * times per request; (CPU with n − CPU with 0) / n.
 */
export async function runOperationCosts(context: BenchContext) {
  const { options } = context
  const lab = await startTarget('op lab', context.bundles.opLab.path, upstreamBindings(context))
  try {
    const ops = [
      'parse',
      'cache-key',
      'log-hashes',
      'log-line',
      'prompt',
      'digest',
      'digest-stream',
      'body-none',
      'body-rewrap',
      'body-clone',
      'body-text',
    ]
    const parts: string[] = []
    for (const [sizeIndex, size] of SIZES.entries()) {
      const contextJson = JSON.stringify(documents(options.seed + sizeIndex, size.bytes))
      const body = `{"question":"When do harbor district stations close?","context":${contextJson}}`
      const repeat = size.bytes <= 16 * 1024 ? 50 : size.bytes <= 200 * 1024 ? 10 : 3
      const cpu = async (op: string, n: number) => {
        const samples: number[] = []
        for (let round = 0; round < 3; round++) {
          const result = await cpuPerRequest(lab, {
            count: 10,
            warmup: 3,
            concurrency: 2,
            idlePerMs: 0,
            request: async () => {
              const response = await post(`${lab.url}/op?op=${op}&n=${n}`, body)
              if (response.status !== 200)
                throw new Error(`op lab ${op}: ${response.text.slice(0, 200)}`)
            },
          })
          samples.push(result.perRequestSchedMs)
        }
        return median(samples)
      }
      const costs: string[] = []
      for (const op of ops) {
        const each = ((await cpu(op, repeat)) - (await cpu(op, 0))) / repeat
        costs.push(`${op} ${(each * 1000).toFixed(0)} µs`)
      }
      parts.push(`${size.label}: ${costs.join(', ')}`)
      context.log(`op lab ${size.label}: ${costs.join(', ')}`)
    }
    context.notes.push(
      `Single operations, CPU per call (op-lab Worker, median of 3): ${parts.join('; ')}.`,
    )
  } finally {
    await lab.dispose()
  }
}
