/**
 * CPU per streamed request: the guard (hold and annotate) against the unguarded pass-through
 * relay, for openai-chat streams of 10, 1,000 and 10,000 events (16 KB context in the system
 * message, so judged in parallel) in three arrival shapes (paced with the verdict first, paced
 * with the verdict after the end, all at once), and LangServe streams whose context arrives as one event of
 * 256 KB or 1 MB. The SSE parser's own cost is measured apart, in the stream-lab Worker.
 */
import { readAnnotation, SSEParser } from '../../../src/formats/sse'
import { median, ms, signedMs, type BenchContext } from './context'
import { CPU_JUDGE, CPU_UPSTREAM, scriptDelays } from './cpu-phase'
import { chatStream, documents, langServeStream } from './fixtures'
import { cpuPerRequest, post, startTarget, type Target } from './harness'
import type { DelayModel } from './random'
import { upstreamBindings, type CpuTargets } from './targets'

const SECTION = 'Streams: CPU per request in workerd'

/**
 * How a stream's events reach the guard. Paced: each event its own write, 1 ms apart, with the
 * CPU phases' delays (the verdict is usually known after the first tens of events). Whole before
 * the verdict: the same paced events, but the judge answers only after the last one (a slow
 * judge, a fast model): the guard holds the whole stream. Burst: every event written at once (a
 * cached upstream), the judge slower: the relay's own cost is then a fraction of a millisecond,
 * so the guard's fixed cost per request (the judge call) is most of the ratio; no goal.
 */
const ARRIVAL_SHAPES: Array<{
  key: string
  label: string
  note: string
  gapMs: number
  goal: boolean
  delays: (events: number) => { upstream: DelayModel; judge: DelayModel }
}> = [
  {
    key: 'paced',
    label: 'paced 1 ms',
    note: "each event is its own write, 1 ms apart (workerd reads about two chunks per event from the stub's chunked body); the verdict usually comes first.",
    gapMs: 1,
    goal: true,
    delays: () => ({ upstream: CPU_UPSTREAM, judge: CPU_JUDGE }),
  },
  {
    key: 'whole',
    label: 'whole before the verdict',
    note: 'the same paced events; the judge answers about 1.5 ms per event after the first byte (plus 200 ms), after the stream has ended.',
    gapMs: 1,
    goal: true,
    delays: (events) => ({
      upstream: { medianMs: 10, sigma: 0.2 },
      judge: { medianMs: Math.round(events * 1.5) + 200, sigma: 0.05 },
    }),
  },
  {
    key: 'burst',
    label: 'burst (all events at once) before the verdict',
    note: 'every event written at once after a first byte at about 10 ms, the judge answering at about 250 ms.',
    gapMs: 0,
    goal: false,
    delays: () => ({
      upstream: { medianMs: 10, sigma: 0.2 },
      judge: { medianMs: 250, sigma: 0.05 },
    }),
  },
]

interface Lane {
  label: string
  target: Target
  path: string
}

/** Events in an SSE body, as a client's parser sees them (an annotation is a comment, not one). */
function countEvents(text: string): number {
  const parser = new SSEParser()
  return parser.push(new TextEncoder().encode(text)).length + parser.end().length
}

/** The verdict comment an annotated stream ends with. */
const annotation = (text: string) =>
  readAnnotation(text) as { verdict?: string; reason?: string | null } | undefined

async function measureLanes(
  context: BenchContext,
  targets: CpuTargets,
  lanes: Lane[],
  setup: { scenario: string; seed: number; step: (delayMs: number) => never },
  plan: { count: number; warmup: number; rounds: number; concurrency: number },
  body: (lane: Lane, index: number) => string,
  check: (lane: Lane, response: Awaited<ReturnType<typeof post>>) => string,
  delays: { upstream: DelayModel; judge: DelayModel } = {
    upstream: CPU_UPSTREAM,
    judge: CPU_JUDGE,
  },
): Promise<Map<Lane, { cpuMs: number; rounds: number[]; outcomes: Set<string> }>> {
  const figures = new Map<Lane, { rounds: number[]; outcomes: Set<string> }>()
  for (let round = 0; round < plan.rounds; round++) {
    const order = round % 2 ? [...lanes].reverse() : lanes
    for (const lane of order) {
      await scriptDelays(
        context,
        setup.scenario,
        setup.seed + round,
        plan.count + plan.warmup + 5,
        setup.step,
        delays.upstream,
        delays.judge,
      )
      const outcomes = figures.get(lane)?.outcomes ?? new Set<string>()
      const result = await cpuPerRequest(lane.target, {
        count: plan.count,
        warmup: plan.warmup,
        concurrency: plan.concurrency,
        idlePerMs: targets.idle.get(lane.target) ?? 0,
        request: async (index) => {
          const response = await post(`${lane.target.url}${lane.path}`, body(lane, index))
          if (response.status !== 200) {
            throw new Error(
              `${lane.label}: status ${response.status}: ${response.text.slice(0, 300)}`,
            )
          }
          if (index >= 0) outcomes.add(check(lane, response))
        },
      })
      const figure = figures.get(lane) ?? { rounds: [], outcomes }
      figure.rounds.push(result.perRequestMs)
      figures.set(lane, figure)
      context.log(
        `${setup.scenario} ${lane.label} round ${round + 1}/${plan.rounds}: ${result.perRequestMs.toFixed(2)} ms/request (schedstat ${result.perRequestSchedMs.toFixed(2)}), ${plan.count} requests in ${result.wallMs.toFixed(0)} ms`,
      )
    }
  }
  return new Map(
    [...figures].map(([lane, figure]) => [
      lane,
      { cpuMs: median(figure.rounds), rounds: figure.rounds, outcomes: figure.outcomes },
    ]),
  )
}

export async function runStreamPhase(context: BenchContext, targets: CpuTargets) {
  const { options } = context
  const chatContext = documents(options.seed, 16 * 1024).join('\n\n')
  const lanes: Lane[] = [
    {
      label: 'unguarded relay',
      target: targets.passthrough,
      path: '/cpu-chat/hold/chat/completions',
    },
    { label: 'guard, hold', target: targets.guard, path: '/cpu-chat/hold/chat/completions' },
    {
      label: 'guard, annotate',
      target: targets.guard,
      path: '/cpu-chat/annotate/chat/completions',
    },
  ]
  const plans = [
    { events: 10, count: 30, warmup: 10, rounds: 2 },
    { events: 1000, count: 8, warmup: 2, rounds: 3 },
    ...(options.quick ? [] : [{ events: 10_000, count: 4, warmup: 0, rounds: 2 }]),
  ]
  for (const shape of ARRIVAL_SHAPES) {
    const perEvents = new Map<number, Map<Lane, { cpuMs: number }>>()
    for (const plan of plans) {
      const figures = await measureLanes(
        context,
        targets,
        lanes,
        {
          scenario: 'cpu-chat',
          seed: options.seed * 1000 + 500 + plan.events,
          step: (delayMs) => chatStream(plan.events, delayMs, shape.gapMs) as never,
        },
        { ...plan, count: options.quick ? Math.ceil(plan.count / 2) : plan.count, concurrency: 4 },
        (_lane, index) =>
          JSON.stringify({
            model: 'gpt-4o-mini',
            stream: true,
            messages: [
              { role: 'system', content: chatContext },
              {
                role: 'user',
                content: `When do harbor district stations close? [stream ${shape.key} ${plan.events} ${index}]`,
              },
            ],
          }),
        (lane, response) => {
          const events = countEvents(response.text)
          const expected = plan.events
          if (events !== expected)
            throw new Error(`${lane.label}: ${events} events, expected ${expected}`)
          if (lane.label === 'guard, hold') {
            const verdict = response.headers.get('x-rag-guard-verdict')
            if (verdict !== 'pass') throw new Error(`guard, hold: verdict ${verdict}`)
          }
          if (lane.label === 'guard, annotate') {
            const verdict = annotation(response.text)?.verdict
            if (verdict !== 'pass') throw new Error(`guard, annotate: verdict ${verdict}`)
          }
          return 'pass'
        },
        shape.delays(plan.events),
      )
      perEvents.set(plan.events, figures)
      const relay = figures.get(lanes[0]!)!
      for (const lane of lanes.slice(1)) {
        const figure = figures.get(lane)!
        // Over the relay measured in the same round (the machine's load drifts between rounds).
        const ratios = figure.rounds.map((cpu, round) => cpu / relay.rounds[round]!)
        const ratio = median(ratios)
        const spread =
          ratios.length > 1
            ? ` (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×)`
            : ''
        const goal = shape.goal && plan.events >= 1000
        context.rows.push({
          section: SECTION,
          figure: `openai-chat, ${plan.events.toLocaleString('en')} events passed, ${lane.label.replace('guard, ', '')} mode (16 KB context), ${shape.label}`,
          guard: `${ms(figure.cpuMs, 1)} = ${ratio.toFixed(2)}× relay${spread}, ${signedMs(median(figure.rounds.map((cpu, round) => cpu - relay.rounds[round]!)), 1)}`,
          floors: `unguarded relay ${ms(relay.cpuMs, 1)}`,
          goal: goal ? '≤ 1.5× relay' : '',
          met: goal ? ratio <= 1.5 : undefined,
        })
      }
    }
    const first = perEvents.get(plans[0]!.events)!
    const last = perEvents.get(plans[plans.length - 1]!.events)!
    const span = plans[plans.length - 1]!.events - plans[0]!.events
    const slope = (lane: Lane) => ((last.get(lane)!.cpuMs - first.get(lane)!.cpuMs) / span) * 1000
    context.notes.push(
      `Streams, ${shape.label}: ${shape.note} CPU per added event, from ${plans[0]!.events} to ${plans[plans.length - 1]!.events} events: unguarded relay ${slope(lanes[0]!).toFixed(1)} µs, hold ${slope(lanes[1]!).toFixed(1)} µs, annotate ${slope(lanes[2]!).toFixed(1)} µs.`,
    )
  }

  // LangServe: the context arrives in the stream, as one large event.
  const ragLanes: Lane[] = [
    { label: 'unguarded relay', target: targets.passthrough, path: '/cpu-rag/hold/stream' },
    { label: 'guard, hold', target: targets.guard, path: '/cpu-rag/hold/stream' },
    { label: 'guard, annotate', target: targets.guard, path: '/cpu-rag/annotate/stream' },
  ]
  for (const size of [
    { label: '256 KB', bytes: 256 * 1024 },
    { label: '1 MB', bytes: 1024 * 1024 },
  ]) {
    const step = langServeStream(size.bytes, 0, options.seed)
    const figures = await measureLanes(
      context,
      targets,
      ragLanes,
      {
        scenario: 'cpu-rag',
        seed: options.seed * 1000 + 700 + size.bytes,
        step: (delayMs) => ({ upstream: { ...step.upstream!, delayMs } }) as never,
      },
      { count: options.quick ? 2 : 4, warmup: 1, rounds: 1, concurrency: 2 },
      (_lane, index) =>
        JSON.stringify({
          input: `When do harbor district stations close? [rag ${size.label} ${index}]`,
        }),
      (lane, response) => {
        if (lane.label === 'guard, hold') {
          const verdict = response.headers.get('x-rag-guard-verdict')
          const reason = response.headers.get('x-rag-guard-reason')
          return reason ? `${verdict} (${reason})` : `judged: ${verdict}`
        }
        if (lane.label === 'guard, annotate') {
          const verdict = annotation(response.text)
          return verdict?.reason
            ? `${verdict.verdict} (${verdict.reason})`
            : `judged: ${verdict?.verdict}`
        }
        return 'relayed'
      },
    )
    const relay = figures.get(ragLanes[0]!)!.cpuMs
    for (const lane of ragLanes.slice(1)) {
      const figure = figures.get(lane)!
      context.rows.push({
        section: SECTION,
        figure: `LangServe stream, ${size.label} context event, ${lane.label.replace('guard, ', '')} mode`,
        guard: `${signedMs(figure.cpuMs - relay, 1)} over relay; ${[...figure.outcomes].join(', ')}`,
        floors: `unguarded relay ${ms(relay, 1)}`,
        goal: '',
      })
    }
  }

  // The parser alone, in workerd.
  const lab = await startTarget(
    'stream lab',
    context.bundles.streamLab.path,
    upstreamBindings(context),
  )
  try {
    const modes = [
      'consume',
      'sse-json',
      'linear-json',
      ...(options.breakdown ? ['sse', 'linear'] : []),
    ]
    const labLanes = modes.map((mode) => ({
      label: mode,
      target: lab,
      path: `/cpu-rag/stream?mode=${mode}`,
    }))
    let chunks = 0
    const step = langServeStream(1024 * 1024, 0, options.seed)
    const figures = await measureLanes(
      context,
      targets,
      labLanes,
      {
        scenario: 'cpu-rag',
        seed: options.seed,
        step: (delayMs) => ({ upstream: { ...step.upstream!, delayMs } }) as never,
      },
      { count: options.quick ? 2 : 3, warmup: 1, rounds: 2, concurrency: 1 },
      () => '{"input":"q"}',
      (lane, response) => {
        const read = JSON.parse(response.text) as { chunks: number; events: number }
        chunks = read.chunks
        if (lane.label !== 'consume' && read.events !== 13) {
          throw new Error(`${lane.label}: ${read.events} events, expected 13`)
        }
        return 'read'
      },
    )
    const consume = figures.get(labLanes[0]!)!.cpuMs
    const parsed = figures.get(labLanes[1]!)!.cpuMs - consume
    const linear = figures.get(labLanes[2]!)!.cpuMs - consume
    if (options.breakdown) {
      context.notes.push(
        `SSE parser on a 1 MB event (stream-lab Worker, CPU over reading the chunks, ${ms(consume, 1)}): SSE framing alone ${ms(figures.get(labLanes[3]!)!.cpuMs - consume, 1)} with the SSEParser, ${ms(figures.get(labLanes[4]!)!.cpuMs - consume, 1)} with a parser that scans each chunk once; with JSON.parse of the event's data ${ms(parsed, 1)} and ${ms(linear, 1)}.`,
      )
    }
    context.rows.push({
      section: SECTION,
      figure: `1 MB context event parsed (SSEParser + JSON.parse), over reading the ${chunks} chunks it came in`,
      guard: ms(parsed, 1),
      floors: `a parser that scans each chunk once: ${ms(linear, 1)}`,
      goal: '< 10 ms',
      met: parsed < 10,
    })

    if (options.breakdown) {
      // Relaying in JavaScript against native piping, per event (1,000-event openai-chat stream).
      const relayModes = ['pipe', 'relay', 'relay-sse', 'pipe-tail', 'read-pipe']
      const perEvent = new Map<string, number>()
      for (const events of [10, 1000]) {
        const figures = await measureLanes(
          context,
          targets,
          relayModes.map((mode) => ({
            label: mode,
            target: lab,
            path: `/cpu-chat/chat/completions?mode=${mode}`,
          })),
          {
            scenario: 'cpu-chat',
            seed: 9,
            step: (delayMs) => chatStream(events, delayMs) as never,
          },
          { count: events === 10 ? 40 : 8, warmup: 4, rounds: 3, concurrency: 4 },
          () => '{}',
          () => 'relayed',
        )
        for (const [lane, figure] of figures) {
          perEvent.set(`${lane.label}|${events}`, figure.cpuMs)
        }
      }
      const slope = (mode: string) =>
        (((perEvent.get(`${mode}|1000`) ?? 0) - (perEvent.get(`${mode}|10`) ?? 0)) / 990) * 1000
      context.notes.push(
        `Relaying a stream, CPU per event (stream-lab Worker, 10 → 1,000 events): native pipe ${slope('pipe').toFixed(0)} µs; the guard's relay() watching every chunk (a JavaScript pull stream) ${slope('relay').toFixed(0)} µs, with the SSE parser on every chunk (annotate) ${slope('relay-sse').toFixed(0)} µs; piped natively through an IdentityTransformStream with one event appended at the end ${slope('pipe-tail').toFixed(0)} µs; first chunk read in JavaScript, the rest piped natively ${slope('read-pipe').toFixed(0)} µs.`,
      )
    }
  } finally {
    await lab.dispose()
  }
}
