/**
 * `npm run bench:variants`: the guard built in variants — a setting changed, a build option
 * changed, or one part of src/ swapped in a copy of the project in a temporary directory (the
 * project itself is never touched) — each measured like `npm run bench` measures the guard:
 * CPU per request in workerd over the pass-through Worker (json, 16 KB and 200 KB contexts),
 * bundle size, startup CPU against the unchanged guard, and, for the variants that touch
 * streaming, CPU per streamed request. Every variant must first pass a functional check
 * (pass, block, judge failures, streams in hold and annotate mode, LangServe).
 *
 *   npm run bench:variants                        every variant
 *   npm run bench:variants -- --only keep-names,trim-zod
 *   npm run bench:variants -- --list
 *   npm run bench:variants -- --keep /tmp/variants   keep the built variants there
 *   npm run bench:variants -- --rounds 5             more rounds (default 3)
 */
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scriptScenario, startOpenAIStub } from '../stub/openai-stub'
import { buildBundleAsync, ROOT } from '../support/local-worker'
import { median, ms, signedMs, type BenchContext, type Bundle } from './lib/context'
import { CPU_JUDGE, CPU_UPSTREAM, expectJudged, scriptDelays } from './lib/cpu-phase'
import {
  chatStream,
  documents,
  jsonUpstream,
  judgeStep,
  langServeStream,
  JSON_ANSWER,
} from './lib/fixtures'
import { cpuPerRequest, post, startTarget, type Target } from './lib/harness'
import { compareStartup } from './lib/startup-phase'
import { guardBindings, upstreamBindings } from './lib/targets'

const argv = process.argv.slice(2)
const value = (name: string) => {
  const index = argv.indexOf(`--${name}`)
  return index === -1 ? undefined : argv[index + 1]
}
const TRIM = join(ROOT, 'test/bench/trim')
const FALLBACK = "I can't answer that reliably from the information I have."

interface Variant {
  name: string
  description: string
  /** Top-level wrangler.toml keys, e.g. `keep_names = false`. */
  toml?: string
  /** wrangler.toml `[alias]` entries. */
  alias?: Record<string, string>
  /** Edits to the copy of the project: file (relative), and a function of its text. */
  edits?: Array<{ file: string; edit: (text: string) => string }>
  /** New files in the copy. */
  files?: Record<string, string>
  /** Guard settings (bindings) changed. */
  settings?: Record<string, unknown>
  /** Measure the stream scenarios too. */
  streams?: boolean
  /** Measure bundle size and startup (for variants that change the bundle). */
  bundle?: boolean
}

/** Replaces `find` (which must occur exactly once) by `replace`. */
const replaceOnce = (find: string, replace: string) => (text: string) => {
  const at = text.indexOf(find)
  if (at === -1 || text.indexOf(find, at + 1) !== -1) {
    throw new Error(`edit: expected exactly one occurrence of ${JSON.stringify(find.slice(0, 80))}`)
  }
  return text.slice(0, at) + replace + text.slice(at + find.length)
}

/** Replaces the text from `start` up to (not including) `end`. */
const replaceBetween = (start: string, end: string, replace: string) => (text: string) => {
  const from = text.indexOf(start)
  const to = text.indexOf(end, from)
  if (from === -1 || to === -1) throw new Error(`edit: markers not found: ${start.slice(0, 40)}`)
  return text.slice(0, from) + replace + text.slice(to)
}

const TRIM_ZOD = {
  zod: join(TRIM, 'zod.mjs'),
  'zod/v4': join(TRIM, 'zod.mjs'),
  // esbuild's alias also rewrites subpaths of an aliased name: keep these on zod itself.
  'zod/v3': join(ROOT, 'node_modules/zod/v3/index.js'),
  'zod/v4/core': join(TRIM, 'zod-core.mjs'),
}
const TRIM_LANGSMITH = {
  langsmith: join(TRIM, 'langsmith.mjs'),
  'langsmith/run_trees': join(TRIM, 'langsmith-run-trees.mjs'),
  'langsmith/singletons/traceable': join(ROOT, 'node_modules/langsmith/singletons/traceable.mjs'),
}

/** The judge's chat call as one plain fetch, with ChatOpenAI's constructor options. */
const FETCH_CHAT = `/** Benchmark variant: the judge's chat call as one plain fetch, in place of LangChain's ChatOpenAI. */
interface Options {
  model: string
  apiKey: string
  temperature: number
  maxTokens: number
  logprobs: boolean
  topLogprobs: number
  configuration: { baseURL?: string; fetch?: typeof fetch; defaultHeaders?: Record<string, string> }
}

export class ChatOpenAI {
  readonly logprobs: boolean
  #options: Options
  constructor(options: Options & Record<string, unknown>) {
    this.#options = options
    this.logprobs = options.logprobs
  }

  async invoke(messages: Array<[string, string]>, callOptions?: { signal?: AbortSignal }) {
    const options = this.#options
    const base = (options.configuration.baseURL ?? 'https://api.openai.com/v1').replace(/\\/+$/, '')
    let response: Response
    try {
      response = await (options.configuration.fetch ?? fetch)(\`\${base}/chat/completions\`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: \`Bearer \${options.apiKey}\`,
          ...options.configuration.defaultHeaders,
        },
        body: JSON.stringify({
          model: options.model,
          messages: messages.map(([role, content]) => ({ role, content })),
          temperature: options.temperature,
          max_tokens: options.maxTokens,
          logprobs: options.logprobs,
          top_logprobs: options.topLogprobs,
          stream: false,
        }),
        signal: callOptions?.signal,
      })
    } catch (error) {
      if (callOptions?.signal?.aborted) throw error
      // Shaped like openai-node's connection error: the judge classifies it as unreachable.
      throw Object.assign(new Error('Connection error.'), { requestID: undefined, headers: undefined })
    }
    if (!response.ok) {
      await response.body?.cancel()
      throw Object.assign(new Error(\`the judge API answered \${response.status}\`), {
        status: response.status,
        headers: response.headers,
        requestID: response.headers.get('x-request-id'),
      })
    }
    const completion = (await response.json()) as {
      model?: string
      choices?: Array<{ logprobs?: unknown }>
      usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number }
    }
    const choice = completion?.choices?.[0]
    if (!choice) throw new TypeError('the judge API sent no choices')
    return {
      response_metadata: { logprobs: choice.logprobs, model_name: completion.model },
      usage_metadata: completion.usage && {
        input_tokens: completion.usage.prompt_tokens,
        output_tokens: completion.usage.completion_tokens,
        total_tokens: completion.usage.total_tokens,
      },
    }
  }
}
`

/** The SSEParser with the same output, scanning each chunk once (see workers/stream-lab.ts). */
const LINEAR_SSE_PARSER = `export class SSEParser {
  #decoder = new TextDecoder()
  #parts: string[] = []
  #afterCR = false
  #event: string | undefined
  #data: string[] = []

  push(chunk: Uint8Array): SSEEvent[] {
    return this.#lines(this.#decoder.decode(chunk, { stream: true }))
  }

  end(): SSEEvent[] {
    return this.#lines(this.#decoder.decode())
  }

  #lines(text: string): SSEEvent[] {
    const events: SSEEvent[] = []
    let index = this.#afterCR && text.charCodeAt(0) === 10 ? 1 : 0
    if (text.length > 0) this.#afterCR = false
    let start = index
    for (; index < text.length; index++) {
      const code = text.charCodeAt(index)
      if (code !== 10 && code !== 13) continue
      const piece = text.slice(start, index)
      const line = this.#parts.length > 0 ? this.#parts.join('') + piece : piece
      this.#parts = []
      this.#line(line, events)
      if (code === 13) {
        if (index + 1 === text.length) this.#afterCR = true
        else if (text.charCodeAt(index + 1) === 10) index++
      }
      start = index + 1
    }
    if (start < text.length) this.#parts.push(text.slice(start))
    return events
  }

`

const VARIANTS: Variant[] = [
  {
    name: 'as-is',
    description: 'the project as it is (a copy, built the same way)',
    streams: true,
    bundle: true,
  },
  { name: 'log-off', description: 'LOG_DECISIONS = false', settings: { LOG_DECISIONS: false } },
  { name: 'cache-off', description: 'CACHE_TTL_SECONDS = 0', settings: { CACHE_TTL_SECONDS: 0 } },
  {
    name: 'log-cache-off',
    description: 'LOG_DECISIONS = false and CACHE_TTL_SECONDS = 0',
    settings: { LOG_DECISIONS: false, CACHE_TTL_SECONDS: 0 },
  },
  {
    name: 'old-bench',
    description: 'LOG_DECISIONS = false, JUDGE_TOP_LOGPROBS = 2 (the old benchmark’s conditions)',
    settings: { LOG_DECISIONS: false, JUDGE_TOP_LOGPROBS: 2 },
  },
  {
    name: 'log-no-hash',
    description:
      'decision log without the SHA-256 of question and documents (src/guard/decision-log.ts)',
    edits: [
      {
        file: 'src/guard/decision-log.ts',
        edit: (text) =>
          replaceOnce(
            '    described.questionHash = await sha256Hex(question)\n',
            '',
          )(
            replaceOnce(
              '    described.contextHash = await sha256Hex(JSON.stringify(documents))\n',
              '',
            )(text),
          ).replace("import { sha256Hex } from '../hash'\n", ''),
      },
    ],
  },
  {
    name: 'keep-names',
    description: 'keep_names = false in wrangler.toml',
    toml: 'keep_names = false',
    bundle: true,
  },
  {
    name: 'fetch-judge',
    description:
      "the judge's chat call as one plain fetch instead of ChatOpenAI (src/judge/judge.ts)",
    files: { 'src/judge/fetch-chat.ts': FETCH_CHAT },
    edits: [
      {
        file: 'src/judge/judge.ts',
        edit: replaceOnce(
          "import { ChatOpenAI } from '@langchain/openai'",
          "import { ChatOpenAI } from './fetch-chat'",
        ),
      },
    ],
    bundle: true,
  },
  {
    name: 'linear-sse',
    description: 'an SSE parser that scans each chunk once (src/formats/sse.ts)',
    edits: [
      {
        file: 'src/formats/sse.ts',
        edit: replaceBetween(
          'export class SSEParser {',
          '  #line(line: string, events: SSEEvent[]): void {',
          LINEAR_SSE_PARSER,
        ),
      },
    ],
    streams: true,
  },
  {
    name: 'native-pipe',
    description:
      'streams piped natively (IdentityTransformStream) once the verdict is known (hold) or the context was in the request (annotate), instead of relay() (src/guard/middleware.ts)',
    edits: [
      {
        file: 'src/guard/middleware.ts',
        edit: (text) =>
          replaceOnce(
            `            relay(reader, {
              prefix: held.chunks,
              pending: held.pending,
              onCancel: () => cancelJudge.abort(),
            }),`,
            `            pipeAfterHold(upstream.body!, reader, held.chunks, held.pending, () =>
              cancelJudge.abort(),
            ),`,
          )(
            replaceOnce(
              `        const body = relay(reader, {
          onChunk: (chunk) => observe(parser.push(chunk)),`,
              `        if (decision && mode !== 'shadow') {
          // The context was in the request: nothing to watch for; pipe natively, append the verdict.
          reader.releaseLock()
          const { readable, writable } = new IdentityTransformStream()
          void upstream.body!.pipeTo(writable, { preventClose: true }).then(
            async () => {
              const final = await finalDecision()
              record(final, upstream.status, 'annotate')
              const writer = writable.getWriter()
              await writer.write(
                encoder.encode(
                  formatSSE({
                    event: ANNOTATION_EVENT,
                    data: JSON.stringify({
                      verdict: final.verdict,
                      score: final.score ?? null,
                      reason: final.reason ?? null,
                      mode,
                    }),
                  }),
                ),
              )
              await writer.close()
            },
            () => cancelJudge.abort(),
          )
          c.res = undefined
          c.res = new Response(readable, upstream)
          return
        }
        const body = relay(reader, {
          onChunk: (chunk) => observe(parser.push(chunk)),`,
            )(text),
          ) +
          `
/** Held chunks, the pending read, then the rest of the upstream piped natively (no JavaScript per chunk). */
function pipeAfterHold(
  body: ReadableStream<Uint8Array>,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  prefix: Uint8Array[],
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined,
  onCancel: () => void,
): ReadableStream<Uint8Array> {
  const { readable, writable } = new IdentityTransformStream()
  void (async () => {
    const writer = writable.getWriter()
    try {
      for (const chunk of prefix) await writer.write(chunk)
      if (pending) {
        const result = await pending
        if (result.done) return await writer.close()
        await writer.write(result.value)
      }
      writer.releaseLock()
      reader.releaseLock()
      await body.pipeTo(writable)
    } catch (error) {
      onCancel()
      await writer.abort(error).catch(() => {})
    }
  })()
  return readable
}
`,
      },
    ],
    streams: true,
  },
  {
    name: 'trim-zod',
    description: 'zod without its locales (wrangler alias)',
    alias: TRIM_ZOD,
    bundle: true,
  },
  {
    name: 'trim-zod-langsmith',
    description: 'zod without locales, langsmith tracing client aliased out (wrangler alias)',
    alias: { ...TRIM_ZOD, ...TRIM_LANGSMITH },
    bundle: true,
  },
  {
    name: 'trim-all',
    description: 'zod without locales, langsmith aliased out, keep_names = false',
    alias: { ...TRIM_ZOD, ...TRIM_LANGSMITH },
    toml: 'keep_names = false',
    bundle: true,
  },
]

/** A copy of the project with the variant's changes, built as wrangler deploy builds it. */
async function buildVariant(variant: Variant, root: string): Promise<Bundle> {
  const dir = join(root, variant.name)
  mkdirSync(dir, { recursive: true })
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  let toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')
  if (variant.toml) toml = replaceOnce('\n[vars]\n', `\n${variant.toml}\n\n[vars]\n`)(toml)
  if (variant.alias) {
    toml += `\n[alias]\n${Object.entries(variant.alias)
      .map(([name, path]) => `${JSON.stringify(name)} = ${JSON.stringify(path)}`)
      .join('\n')}\n`
  }
  writeFileSync(join(dir, 'wrangler.toml'), toml)
  for (const [file, content] of Object.entries(variant.files ?? {}))
    writeFileSync(join(dir, file), content)
  for (const { file, edit } of variant.edits ?? []) {
    writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')))
  }
  return buildBundleAsync(join(dir, 'dist'), { config: join(dir, 'wrangler.toml') })
}

/** Pass, block, judge failures, streams: what every variant must still do. */
async function functionalCheck(context: BenchContext, target: Target): Promise<void> {
  const origin = context.stub.origin
  const fail = (what: string, detail: unknown) => {
    throw new Error(
      `${target.name}: ${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`,
    )
  }
  const small = JSON.stringify(documents(3, 4096))
  const ask = () =>
    post(
      `${target.url}/cpu-json/ask`,
      `{"question":"When do stations close? [check ${Math.random()}]","context":${small}}`,
    )
  await scriptScenario(origin, 'cpu-json', jsonUpstream(5))
  await scriptScenario(origin, 'judge', judgeStep(5))
  const passed = await ask()
  if (
    passed.headers.get('x-rag-guard-verdict') !== 'pass' ||
    passed.text !== JSON.stringify(JSON_ANSWER)
  ) {
    fail('json pass', {
      verdict: passed.headers.get('x-rag-guard-verdict'),
      body: passed.text.slice(0, 200),
    })
  }
  await scriptScenario(origin, 'judge', {
    token: 'False',
    logprob: Math.log(0.95),
    topLogprobs: [
      { token: 'False', logprob: Math.log(0.95) },
      { token: 'True', logprob: Math.log(0.03) },
    ],
  })
  const blocked = await ask()
  if (
    blocked.headers.get('x-rag-guard-verdict') !== 'block' ||
    (JSON.parse(blocked.text) as { answer?: string }).answer !== FALLBACK
  ) {
    fail('json block', {
      verdict: blocked.headers.get('x-rag-guard-verdict'),
      body: blocked.text.slice(0, 200),
    })
  }
  for (const [script, reason] of [
    [{ status: 500 }, 'judge-http-error'],
    [{ status: 429 }, 'judge-rate-limited'],
    [{ reset: true }, 'judge-unreachable'],
    [{ rawBody: 'not json' }, 'judge-bad-response'],
    [{ noLogprobs: true }, 'no-logprobs'],
  ] as const) {
    await scriptScenario(origin, 'judge', script)
    const failed = await ask()
    if (
      failed.headers.get('x-rag-guard-verdict') !== 'flag' ||
      failed.headers.get('x-rag-guard-reason') !== reason
    ) {
      fail(`judge ${JSON.stringify(script)}`, {
        verdict: failed.headers.get('x-rag-guard-verdict'),
        reason: failed.headers.get('x-rag-guard-reason'),
        expected: reason,
      })
    }
  }
  await scriptScenario(origin, 'judge', judgeStep(5))
  await scriptScenario(origin, 'cpu-chat', chatStream(20, 5))
  const chat = (mode: string) =>
    post(
      `${target.url}/cpu-chat/${mode}/chat/completions`,
      JSON.stringify({
        model: 'm',
        stream: true,
        messages: [
          { role: 'system', content: small },
          { role: 'user', content: 'When?' },
        ],
      }),
    )
  const held = await chat('hold')
  if (
    held.headers.get('x-rag-guard-verdict') !== 'pass' ||
    held.text.split('\n\n').length - 1 !== 20
  )
    fail('chat hold', held.text.slice(-200))
  const annotated = await chat('annotate')
  if (!/event: rag_guard\ndata: \{"verdict":"pass"/.test(annotated.text))
    fail('chat annotate', annotated.text.slice(-200))
  await scriptScenario(origin, 'cpu-rag', langServeStream(8 * 1024, 5, 3))
  const rag = await post(`${target.url}/cpu-rag/hold/stream`, '{"input":"When do stations close?"}')
  if (rag.headers.get('x-rag-guard-verdict') !== 'pass' || rag.headers.get('x-rag-guard-reason')) {
    fail('langserve hold', {
      verdict: rag.headers.get('x-rag-guard-verdict'),
      reason: rag.headers.get('x-rag-guard-reason'),
    })
  }
}

async function main() {
  if (argv.includes('--list')) {
    for (const variant of VARIANTS) console.log(`${variant.name.padEnd(20)} ${variant.description}`)
    return
  }
  const only = value('only')?.split(',')
  const chosen = VARIANTS.filter(
    (variant) => variant.name === 'as-is' || !only || only.includes(variant.name),
  )
  const keep = value('keep')
  const root = keep ?? mkdtempSync(join(tmpdir(), 'rag-guard-variants-'))
  const stub = await startOpenAIStub()
  const context = { stub, options: { seed: 14 }, log: () => {} } as unknown as BenchContext
  const targets: Target[] = []
  try {
    console.error(`building ${chosen.length} variants in ${root}`)
    const bundles = new Map<Variant, Bundle>()
    let next = 0
    await Promise.all(
      [0, 1].map(async () => {
        while (next < chosen.length) {
          const variant = chosen[next++]!
          bundles.set(variant, await buildVariant(variant, root))
        }
      }),
    )
    const pass = await buildBundleAsync(join(root, 'passthrough'), {
      config: join(ROOT, 'test/bench/workers/passthrough.toml'),
    })
    const passthrough = await startTarget('pass-through', pass.path, upstreamBindings(context))
    targets.push(passthrough)
    const served = new Map<Variant, Target>()
    for (const variant of chosen) {
      const target = await startTarget(
        `guard ${variant.name}`,
        bundles.get(variant)!.path,
        guardBindings(context, variant.settings),
        {
          cache: false,
        },
      )
      targets.push(target)
      served.set(variant, target)
      console.error(`checking ${variant.name}`)
      await functionalCheck(context, target)
    }

    // CPU per request, json: rounds alternate the order.
    const sizes = [
      { label: '16 KB', bytes: 16 * 1024, count: 100, warmup: 30 },
      { label: '200 KB', bytes: 200 * 1024, count: 30, warmup: 10 },
    ]
    const cpu = new Map<string, number[]>()
    const rounds = Number(value('rounds') ?? 3)
    for (const [sizeIndex, size] of sizes.entries()) {
      const contextJson = JSON.stringify(documents(14 + sizeIndex, size.bytes))
      for (let round = 0; round < rounds; round++) {
        const lanes: Target[] = [passthrough, ...chosen.map((variant) => served.get(variant)!)]
        for (const target of round % 2 ? lanes.reverse() : lanes) {
          await scriptDelays(
            context,
            'cpu-json',
            1000 + round,
            size.count + size.warmup + 5,
            jsonUpstream,
            CPU_UPSTREAM,
            CPU_JUDGE,
          )
          const result = await cpuPerRequest(target, {
            count: size.count,
            warmup: size.warmup,
            concurrency: 4,
            idlePerMs: 0,
            request: async (index) =>
              expectJudged(
                target,
                await post(
                  `${target.url}/cpu-json/ask`,
                  `{"question":"When do stations close? [v ${round} ${index}]","context":${contextJson}}`,
                ),
              ),
          })
          const key = `${target.name}|${size.label}`
          cpu.set(key, [...(cpu.get(key) ?? []), result.perRequestSchedMs])
        }
        console.error(`cpu ${size.label} round ${round + 1}/${rounds} done`)
      }
    }
    // Over the pass-through of the same round, median over rounds.
    const overPass = (target: Target, size: string) =>
      median(
        cpu
          .get(`${target.name}|${size}`)!
          .map((value, round) => value - cpu.get(`${passthrough.name}|${size}`)![round]!),
      )
    const cpuOf = (target: Target, size: string) => median(cpu.get(`${target.name}|${size}`)!)

    // Streams, for the variants that touch them.
    const streamCpu = new Map<string, number>()
    const streamScenarios = [
      {
        label: 'chat 1,000 events, annotate',
        scenario: 'cpu-chat',
        path: '/cpu-chat/annotate/chat/completions',
        step: (d: number) => chatStream(1000, d),
        count: 4,
        body: JSON.stringify({
          model: 'm',
          stream: true,
          messages: [
            { role: 'system', content: documents(14, 16 * 1024).join('\n\n') },
            { role: 'user', content: 'When?' },
          ],
        }),
      },
      {
        label: 'LangServe 256 KB context event, annotate',
        scenario: 'cpu-rag',
        path: '/cpu-rag/annotate/stream',
        step: (d: number) => ({
          upstream: { ...langServeStream(256 * 1024, 0, 14).upstream!, delayMs: d },
        }),
        count: 3,
        body: '{"input":"When do stations close?"}',
      },
      {
        label: 'LangServe 1 MB context event, annotate',
        scenario: 'cpu-rag',
        path: '/cpu-rag/annotate/stream',
        step: (d: number) => ({
          upstream: { ...langServeStream(1024 * 1024, 0, 14).upstream!, delayMs: d },
        }),
        count: 2,
        body: '{"input":"When do stations close?"}',
      },
    ]
    for (const scenario of streamScenarios) {
      for (const target of [
        passthrough,
        ...chosen.filter((variant) => variant.streams).map((variant) => served.get(variant)!),
      ]) {
        await scriptDelays(
          context,
          scenario.scenario,
          77,
          scenario.count + 5,
          scenario.step as never,
          CPU_UPSTREAM,
          CPU_JUDGE,
        )
        const result = await cpuPerRequest(target, {
          count: scenario.count,
          warmup: 1,
          concurrency: 2,
          idlePerMs: 0,
          request: async () => {
            const response = await post(`${target.url}${scenario.path}`, scenario.body)
            if (response.status !== 200) throw new Error(`${target.name}: ${response.status}`)
          },
        })
        streamCpu.set(`${target.name}|${scenario.label}`, result.perRequestSchedMs)
      }
      console.error(`streams: ${scenario.label} done`)
    }

    // Startup, for the variants that change the bundle, against the unchanged guard.
    const asIs = chosen.find((variant) => variant.name === 'as-is')!
    const startup = new Map<Variant, { variant: number; asIs: number; difference: number }>()
    for (const variant of chosen.filter((entry) => entry.bundle && entry !== asIs)) {
      const compared = await compareStartup(bundles.get(variant)!, bundles.get(asIs)!, 5)
      startup.set(variant, {
        variant: compared.a.process,
        asIs: compared.b.process,
        difference: compared.difference.process,
      })
      console.error(`startup ${variant.name} done`)
    }

    const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`
    const base = bundles.get(asIs)!
    console.log(
      `\nGuard variants — CPU per request over the pass-through Worker (schedstat, median of ${rounds} rounds), bundle, startup (process CPU, median of 5, alternating with as-is)\n`,
    )
    console.log('| variant | 16 KB | 200 KB | gzip | minified | startup vs as-is | what changed |')
    console.log('| --- | --- | --- | --- | --- | --- | --- |')
    const pass16 = cpuOf(passthrough, '16 KB')
    const pass200 = cpuOf(passthrough, '200 KB')
    for (const variant of chosen) {
      const target = served.get(variant)!
      const bundle = bundles.get(variant)!
      const start = startup.get(variant)
      console.log(
        `| ${variant.name} | ${signedMs(overPass(target, '16 KB'))} | ${signedMs(overPass(target, '200 KB'))} | ${kib(bundle.gzip)} (${bundle.gzip === base.gzip ? '=' : `${bundle.gzip > base.gzip ? '+' : '−'}${kib(Math.abs(bundle.gzip - base.gzip))}`}) | ${kib(bundle.raw)} | ${start ? `${ms(start.variant, 1)} vs ${ms(start.asIs, 1)} (${signedMs(start.difference, 1)})` : ''} | ${variant.description} |`,
      )
    }
    console.log(`\npass-through: ${ms(pass16)} (16 KB), ${ms(pass200)} (200 KB) per request`)
    if (streamCpu.size > 0) {
      console.log('\nStreams — CPU per request (schedstat)\n')
      const lanes = [
        passthrough,
        ...chosen.filter((variant) => variant.streams).map((variant) => served.get(variant)!),
      ]
      console.log(`| scenario | ${lanes.map((lane) => lane.name).join(' | ')} |`)
      console.log(`| --- | ${lanes.map(() => '---').join(' | ')} |`)
      for (const scenario of streamScenarios) {
        console.log(
          `| ${scenario.label} | ${lanes.map((lane) => ms(streamCpu.get(`${lane.name}|${scenario.label}`)!, 1)).join(' | ')} |`,
        )
      }
    }
  } finally {
    for (const target of targets) await target.dispose().catch(() => {})
    await stub.close()
    if (!keep) rmSync(root, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error)
    process.exit(1)
  },
)
