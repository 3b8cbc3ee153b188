/**
 * End-to-end latency, with each request's own delays known: the stub picks every upstream and
 * judge answer's delay by a tag in the request (`rules`), drawn from seeded log-normal
 * distributions, so a request's latency is compared with its own max(upstream, judge). Two
 * regimes: the judge faster than the upstream, and slower. The upstream alone (the stub
 * reached directly, same delays) is the baseline.
 */
import { scriptScenario, type StubStep } from '../../stub/openai-stub'
import { percentileOf, signedMs, ms, type BenchContext } from './context'
import { chatStream, documents, judgeStep, JSON_ANSWER } from './fixtures'
import { pool, post, startTarget, type Exchange } from './harness'
import { generator, logNormal, type DelayModel } from './random'
import { guardBindings, JUDGE_SCENARIO, upstreamBindings } from './targets'

const SECTION = 'Latency (end to end, loopback)'

interface Regime {
  name: string
  key: string
  upstream: DelayModel
  judge: DelayModel
}

const REGIMES: Regime[] = [
  {
    name: 'judge faster',
    key: 'F',
    upstream: { medianMs: 300, sigma: 0.25 },
    judge: { medianMs: 150, sigma: 0.3 },
  },
  {
    name: 'judge slower',
    key: 'S',
    upstream: { medianMs: 150, sigma: 0.25 },
    judge: { medianMs: 300, sigma: 0.3 },
  },
]

interface Sample {
  exchange: Exchange
  upstreamMs: number
  judgeMs: number
}

const p = (values: number[], q: number) => percentileOf(values, q)
const pair = (values: number[]) =>
  `p50 ${signedMs(p(values, 50), 1)}, p99 ${signedMs(p(values, 99), 1)}`

export async function runLatencyPhase(context: BenchContext) {
  const { options } = context
  const count = options.quick ? 50 : 100
  const { concurrency } = options
  const contextDocs = documents(options.seed + 7, 16 * 1024)
  const contextJson = JSON.stringify(contextDocs)
  const guard = await startTarget(
    'guard (latency)',
    context.bundles.guard.path,
    guardBindings(context),
    {
      cache: options.cacheSimulator,
    },
  )
  // What on this loopback is not the guard: a Worker that only forwards (the hop through
  // workerd and Miniflare's entry Worker), and one that makes the same judge call through
  // ChatOpenAI beside the upstream and nothing else.
  const passthrough = await startTarget(
    'pass-through (latency)',
    context.bundles.passthrough.path,
    upstreamBindings(context),
  )
  const floor = await startTarget(
    'floor: ChatOpenAI (latency)',
    context.bundles.floorChatOpenAI.path,
    upstreamBindings(context),
  )
  // --baseline: the first bundle given, in the same scenarios, right after the guard.
  const baselineBundle = options.baseline?.split(',')[0]
  const baseline = baselineBundle
    ? await startTarget('guard baseline (latency)', baselineBundle, guardBindings(context), {
        cache: options.cacheSimulator,
      })
    : undefined
  const stub = context.stub.origin
  try {
    /**
     * Sends `count` requests; request i carries `tag(i)` and gets upstream delay u[i] and judge
     * delay j[i] from the stub.
     */
    const run = async (
      regime: Regime,
      label: string,
      scenario: string,
      url: string,
      upstreamStep: (delayMs: number) => StubStep,
      body: (tag: string) => string,
      check?: (exchange: Exchange) => void,
    ): Promise<Sample[]> => {
      const random = generator(options.seed * 7919 + regime.key.charCodeAt(0))
      const upstream = logNormal(random, regime.upstream.medianMs, regime.upstream.sigma)
      const judge = logNormal(random, regime.judge.medianMs, regime.judge.sigma)
      const delays = Array.from({ length: count }, () => ({ u: upstream(), j: judge() }))
      const tag = (index: number) => `[${regime.key}${label}-${index}]`
      await scriptScenario(stub, scenario, {
        rules: delays.map((delay, index) => ({
          contains: tag(index),
          step: upstreamStep(delay.u),
        })),
        otherwise: upstreamStep(regime.upstream.medianMs),
      })
      await scriptScenario(stub, JUDGE_SCENARIO, {
        rules: delays.map((delay, index) => ({ contains: tag(index), step: judgeStep(delay.j) })),
        otherwise: judgeStep(regime.judge.medianMs),
      })
      // A few requests first, untimed (connections, JIT).
      await pool(8, 4, async (index) => void (await post(url, body(`[warm-${label}-${index}]`))))
      return pool(count, concurrency, async (index) => {
        const exchange = await post(url, body(tag(index)))
        if (exchange.status !== 200)
          throw new Error(`${label}: status ${exchange.status}: ${exchange.text.slice(0, 200)}`)
        check?.(exchange)
        return { exchange, upstreamMs: delays[index]!.u, judgeMs: delays[index]!.j }
      })
    }
    const verdict = (expected: string, cache?: string) => (exchange: Exchange) => {
      const got = exchange.headers.get('x-rag-guard-verdict')
      if (got !== expected)
        throw new Error(
          `verdict ${got} (${exchange.headers.get('x-rag-guard-reason')}), expected ${expected}`,
        )
      if (cache && exchange.headers.get('x-rag-guard-cache') !== cache) {
        throw new Error(`cache ${exchange.headers.get('x-rag-guard-cache')}, expected ${cache}`)
      }
    }
    const ask = (tag: string) =>
      `{"question":"When do harbor district stations close? ${tag}","context":${contextJson}}`
    const chat = (tag: string) =>
      JSON.stringify({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [
          { role: 'system', content: contextDocs.join('\n\n') },
          { role: 'user', content: `When do harbor district stations close? ${tag}` },
        ],
      })
    const json = (delayMs: number): StubStep => ({ upstream: { json: JSON_ANSWER, delayMs } })
    const stream = (delayMs: number): StubStep => chatStream(20, delayMs, 5)

    for (const regime of REGIMES) {
      const direct = await run(regime, 'd', 'lat-json', `${stub}/s/lat-json/ask`, json, ask)
      const baselineFirst =
        baseline && process.env.BENCH_BASELINE_FIRST === '1'
          ? await run(
              regime,
              'pb0',
              'lat-json',
              `${baseline.url}/lat-json/ask`,
              json,
              ask,
              verdict('pass', 'miss'),
            )
          : undefined
      const parallel = await run(
        regime,
        'p',
        'lat-json',
        `${guard.url}/lat-json/ask`,
        json,
        ask,
        verdict('pass', 'miss'),
      )
      const overUpstream = (samples: Sample[], first = false) =>
        samples.map((s) => (first ? s.exchange.firstByteMs : s.exchange.totalMs) - s.upstreamMs)
      const overMax = (samples: Sample[], first = false) =>
        samples.map(
          (s) =>
            (first ? s.exchange.firstByteMs : s.exchange.totalMs) -
            Math.max(s.upstreamMs, s.judgeMs),
        )
      const excess = overMax(parallel)
      const forwarded = await run(
        regime,
        'pt',
        'lat-json',
        `${passthrough.url}/lat-json/ask`,
        json,
        ask,
      )
      const floorParallel = await run(
        regime,
        'fl',
        'lat-json',
        `${floor.url}/lat-json/ask`,
        json,
        ask,
      )
      context.rows.push({
        section: SECTION,
        figure: `parallel mode, ${regime.name} (upstream ~${regime.upstream.medianMs} ms, judge ~${regime.judge.medianMs} ms): end to end − max(upstream, judge)`,
        guard: pair(excess),
        floors: `upstream alone − its delay: ${pair(overUpstream(direct))} · pass-through Worker − its delay: ${pair(overUpstream(forwarded))} · ChatOpenAI floor Worker − max: ${pair(overMax(floorParallel))}`,
        goal: '≤ 15 ms (p50)',
        met: p(excess, 50) <= 15,
      })
      if (baseline) {
        const before =
          baselineFirst ??
          (await run(
            regime,
            'pb',
            'lat-json',
            `${baseline.url}/lat-json/ask`,
            json,
            ask,
            verdict('pass', 'miss'),
          ))
        context.rows.push({
          section: SECTION,
          figure: `  baseline guard (--baseline), parallel mode, ${regime.name}`,
          guard: pair(overMax(before)),
          floors: '',
          goal: '',
        })
      }

      const directStream = await run(
        regime,
        'ds',
        'lat-chat',
        `${stub}/s/lat-chat/chat/completions`,
        stream,
        chat,
      )
      const hold = await run(
        regime,
        'h',
        'lat-chat',
        `${guard.url}/lat-chat/hold/chat/completions`,
        stream,
        chat,
        verdict('pass'),
      )
      const firstBytes = (samples: Sample[]) => samples.map((s) => s.exchange.firstByteMs)
      const holdP99 = p(firstBytes(hold), 99)
      const directP99 = p(firstBytes(directStream), 99)
      if (regime.key === 'F') {
        context.rows.push({
          section: SECTION,
          figure: `hold mode, first byte p99, ${regime.name}`,
          guard: `${ms(holdP99, 1)} (${signedMs(holdP99 - directP99, 1)})`,
          floors: `upstream alone ${ms(directP99, 1)}`,
          goal: '≤ upstream p99 + 15 ms',
          met: holdP99 - directP99 <= 15,
        })
      } else {
        const maxP99 = p(
          hold.map((s) => Math.max(s.upstreamMs, s.judgeMs)),
          99,
        )
        context.rows.push({
          section: SECTION,
          figure: `hold mode, first byte, ${regime.name}: first byte − max(upstream, judge)`,
          guard: `${pair(overMax(hold, true))}; p99 ${ms(holdP99, 1)}`,
          floors: `upstream alone p99 ${ms(directP99, 1)}; p99 of max(upstream, judge) ${ms(maxP99, 1)}`,
          goal: '',
        })
      }
      const annotate = await run(
        regime,
        'a',
        'lat-chat',
        `${guard.url}/lat-chat/annotate/chat/completions`,
        stream,
        chat,
      )
      const annotateP99 = p(firstBytes(annotate), 99)
      context.rows.push({
        section: SECTION,
        figure: `annotate mode, first byte p99, ${regime.name}`,
        guard: `${ms(annotateP99, 1)} (${signedMs(annotateP99 - directP99, 1)})`,
        floors: `upstream alone ${ms(directP99, 1)}`,
        goal: '',
      })

      if (regime.key === 'F' && options.cacheSimulator) {
        // Cache hits: one question, judged once before; the upstream still answers each time.
        await post(
          `${guard.url}/lat-cached/ask`,
          `{"question":"When do harbor district stations close?","context":${contextJson}}`,
        )
        await new Promise((resolve) => setTimeout(resolve, 300))
        const cachedBody = (tag: string) =>
          `{"question":"When do harbor district stations close?","tag":"${tag}","context":${contextJson}}`
        const directCached = await run(
          regime,
          'dc',
          'lat-cached',
          `${stub}/s/lat-cached/ask`,
          json,
          cachedBody,
        )
        const cached = await run(
          regime,
          'c',
          'lat-cached',
          `${guard.url}/lat-cached/ask`,
          json,
          cachedBody,
          verdict('pass', 'hit'),
        )
        const forwardedCached = await run(
          regime,
          'pc',
          'lat-cached',
          `${passthrough.url}/lat-cached/ask`,
          json,
          cachedBody,
        )
        const hit = p(overUpstream(cached), 50) - p(overUpstream(directCached), 50)
        const hop = p(overUpstream(forwardedCached), 50) - p(overUpstream(directCached), 50)
        context.rows.push({
          section: SECTION,
          figure: 'cache hit: end to end over the upstream alone (p50)',
          guard: `${signedMs(hit, 1)} (p99 of end to end − upstream delay: ${signedMs(p(overUpstream(cached), 99), 1)}); over the pass-through Worker ${signedMs(hit - hop, 1)}`,
          floors: `upstream alone: ${pair(overUpstream(directCached))} · pass-through Worker over the upstream alone: p50 ${signedMs(hop, 1)}`,
          goal: '≤ 5 ms',
          met: hit <= 5,
        })
        if (baseline) {
          await post(
            `${baseline.url}/lat-cached/ask`,
            `{"question":"When do harbor district stations close?","context":${contextJson}}`,
          )
          await new Promise((resolve) => setTimeout(resolve, 300))
          const before = await run(
            regime,
            'cb',
            'lat-cached',
            `${baseline.url}/lat-cached/ask`,
            json,
            cachedBody,
            verdict('pass', 'hit'),
          )
          const hitBefore = p(overUpstream(before), 50) - p(overUpstream(directCached), 50)
          context.rows.push({
            section: SECTION,
            figure: '  baseline guard (--baseline), cache hit over the upstream alone (p50)',
            guard: `${signedMs(hitBefore, 1)}; over the pass-through Worker ${signedMs(hitBefore - hop, 1)}`,
            floors: '',
            goal: '',
          })
        }

        // Context in the response: the judge runs after the upstream.
        const withSources = (delayMs: number): StubStep => ({
          upstream: {
            json: { ...JSON_ANSWER, sources: contextDocs.map((pageContent) => ({ pageContent })) },
            delayMs,
          },
        })
        const sequential = await run(
          regime,
          'q',
          'lat-seq',
          `${guard.url}/lat-seq/ask`,
          withSources,
          (tag) => `{"question":"When do harbor district stations close? ${tag}"}`,
          verdict('pass', 'miss'),
        )
        context.rows.push({
          section: SECTION,
          figure: 'sequential mode (context in the response): end to end − (upstream + judge)',
          guard: pair(sequential.map((s) => s.exchange.totalMs - s.upstreamMs - s.judgeMs)),
          floors: '',
          goal: '',
        })
      }
    }
    context.notes.push(
      `Latency: ${count} requests per scenario at concurrency ${concurrency}; each request's upstream and judge delays drawn (seeded, log-normal) and matched to it by a tag. ${options.cacheSimulator ? "The latency Worker runs with Miniflare's cache simulator (for the cache-hit row)." : 'Without the cache simulator (--no-cache-simulator): no cache-hit row.'} Client, stub and workerd share the machine.`,
    )
  } finally {
    await guard.dispose()
    await baseline?.dispose()
    await passthrough.dispose()
    await floor.dispose()
  }
}
