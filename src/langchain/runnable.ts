/**
 * `ragGuardRunnable(chain)`: an LCEL chain behind RAG Guard. `invoke` and `batch` return the
 * chain's output with the answer replaced on block and the verdict at `ragGuard`; `stream` holds
 * the chunks until the verdict, or annotates them, as the Worker does with a streamed answer.
 * When the documents are in the input, the judge runs while the chain generates; when they are
 * in the output, as soon as a streamed chunk carries them (with `invoke`, after the output). The
 * groundedness check, when asked for, judges the answer once it is complete: the output, or the
 * stream's answer pieces joined at its end (so hold mode holds the whole stream).
 */
import type { CallbackManagerForChainRun } from '@langchain/core/callbacks/manager'
import { patchConfig, Runnable, type RunnableConfig } from '@langchain/core/runnables'
import { readLimits } from '../guard/extract'
import { repairedText, repairOf } from '../guard/repair'
import {
  answerText,
  blockedChunks,
  blockedOutput,
  chainContext,
  chainQuestion,
  chunkHasContext,
  isTextOutput,
  withVerdictAt,
} from './chain'
import { ChainStream, type Judgement } from './chain-stream'
import { cacheScope, promptVersionOf, TurnJudgement, type Decided } from './decide'
import {
  resolveRunnableOptions,
  type RagGuardRunnableOptions,
  type RunnableSettings,
} from './options'
import {
  enforcesBlock,
  RAG_GUARD_KEY,
  RagGuardBlockedError,
  verdictOf,
  type RagGuardVerdict,
} from './verdict'

/** A chain's output behind the guard: an object output carries the verdict at `ragGuard`. */
export type Guarded<Output> = Output extends string
  ? Output
  : Output & { [RAG_GUARD_KEY]?: RagGuardVerdict }

export class RagGuardRunnable<Input = unknown, Output = unknown> extends Runnable<
  Input,
  Guarded<Output>
> {
  static override lc_name() {
    return 'RagGuardRunnable'
  }

  override lc_namespace = ['rag_guard', 'langchain']
  readonly #settings: RunnableSettings
  readonly #limits: ReturnType<typeof readLimits>

  constructor(
    /** The guarded chain. */
    readonly chain: Runnable<Input, Output>,
    options: RagGuardRunnableOptions,
  ) {
    super()
    this.#settings = resolveRunnableOptions(options)
    this.#limits = readLimits(this.#settings)
  }

  override invoke(input: Input, options?: Partial<RunnableConfig>): Promise<Guarded<Output>> {
    return this._callWithConfig(
      (value: Input, config?: RunnableConfig, runManager?: CallbackManagerForChainRun) =>
        this.#invoke(value, config ?? {}, runManager),
      input,
      options,
    )
  }

  override async *_streamIterator(
    input: Input,
    options?: Partial<RunnableConfig>,
  ): AsyncGenerator<Guarded<Output>> {
    async function* once() {
      yield input
    }
    yield* this._transformStreamWithConfig(
      once(),
      (inputs: AsyncGenerator<Input>, runManager?: CallbackManagerForChainRun, config?) =>
        this.#stream(inputs, config ?? {}, runManager),
      options,
    )
  }

  /** Starts judging `input`'s question against `context` (groundedness waits for the answer). */
  #judge(
    input: Input,
    context: ReturnType<typeof chainContext>,
    config: RunnableConfig,
    runManager?: CallbackManagerForChainRun,
    /** The answer can still be replaced by its repaired text (`invoke`, a held stream). */
    repairable = false,
  ): Judgement {
    return new TurnJudgement(this.#settings, {
      question: chainQuestion(this.#settings, input),
      context,
      scope: cacheScope(this.#settings, { configurable: config.configurable }),
      callbacks: runManager?.getChild('rag-guard:judge'),
      signal: config.signal,
      repairable,
    })
  }

  /** The verdict of a decision, reported. */
  #verdict({ decision, documents }: Decided, applied: boolean): RagGuardVerdict {
    const { judge } = this.#settings
    const verdict = verdictOf(decision, {
      applied,
      documents,
      promptVersion: (check) => promptVersionOf(judge, check),
    })
    this.#settings.onVerdict?.(verdict)
    return verdict
  }

  async #invoke(
    input: Input,
    config: RunnableConfig,
    runManager?: CallbackManagerForChainRun,
  ): Promise<Guarded<Output>> {
    const settings = this.#settings
    // Documents in the input: the judge runs while the chain generates.
    const early =
      settings.context.in === 'input'
        ? this.#judge(input, chainContext(settings, input, this.#limits), config, runManager, true)
        : undefined
    let output: Output
    try {
      output = await this.chain.invoke(
        input,
        patchConfig(config, { callbacks: runManager?.getChild() }),
      )
    } catch (error) {
      early?.cancel()
      throw error
    }
    const judgement =
      early ??
      this.#judge(input, chainContext(settings, output, this.#limits), config, runManager, true)
    // The answer is complete: groundedness, if it is a check, starts now.
    const answer = answerText(settings, output)
    judgement.answer(answer)
    const decided = await judgement.decided
    // Repair: the answer less its unsupported sentences, where "answer" points.
    const repair = settings.mode === 'enforce' ? repairOf(decided.decision) : undefined
    const repaired =
      repair && answer !== undefined
        ? blockedOutput(settings, output, repairedText(answer, repair.removed))
        : undefined
    // (A repair that cannot be made is a block.)
    const applied = enforcesBlock(decided.decision) || repair !== undefined
    const verdict = this.#verdict(decided, applied)
    let result: unknown = repaired ?? output
    if (applied && repaired === undefined) {
      result = blockedOutput(settings, output, settings.fallbackMessage)
      if (result === undefined) {
        throw new RagGuardBlockedError(
          verdict,
          'RAG Guard blocked the answer, and the chain output has no answer where "answer" points to replace',
        )
      }
    }
    return withVerdictAt(result, RAG_GUARD_KEY, verdict) as Guarded<Output>
  }

  async *#stream(
    inputs: AsyncGenerator<Input>,
    config: RunnableConfig,
    runManager?: CallbackManagerForChainRun,
  ): AsyncGenerator<Guarded<Output>> {
    let input!: Input
    for await (const chunk of inputs) input = chunk
    const settings = this.#settings
    const stream = new ChainStream<Output>(
      (signal) =>
        this.chain.stream(input, {
          ...patchConfig(config, { callbacks: runManager?.getChild() }),
          signal,
        }),
      config.signal,
      // Hold mode keeps every chunk until the verdict: a repair can still replace the answer (in
      // shadow mode, the verdict says what it would have done).
      (context) => this.#judge(input, context, config, runManager, settings.streamMode === 'hold'),
      (chunk) =>
        chunkHasContext(settings, chunk) ? chainContext(settings, chunk, this.#limits) : undefined,
      settings.checks.includes('groundedness') ? (chunk) => answerText(settings, chunk) : undefined,
      settings.maxInputChars,
      settings.context.in === 'input' ? chainContext(settings, input, this.#limits) : undefined,
    )
    const shadow = settings.mode === 'shadow'
    let completed = false
    try {
      if (shadow || settings.streamMode === 'annotate') yield* this.#relay(stream)
      else yield* this.#hold(stream)
      completed = true
    } finally {
      // A shadow stream ends before its verdict: the judge goes on for `onVerdict`.
      stream.close(completed && shadow)
    }
  }

  /**
   * Annotate and shadow: every chunk goes out at once. Annotate adds the verdict after the last
   * (it can flag, never block); a shadow stream is the chain's own, the verdict goes to
   * `onVerdict` only, and its end does not wait for it.
   */
  async *#relay(stream: ChainStream<Output>): AsyncGenerator<Guarded<Output>> {
    let first: unknown
    for (let step = await stream.next(); !step.done; step = await stream.next()) {
      first ??= step.value
      stream.watch(step.value)
      yield step.value as Guarded<Output>
    }
    const decided = stream.atEnd()
    if (this.#settings.mode === 'shadow') {
      void decided.then((result) => this.#verdict(result, false))
      return
    }
    yield* this.#verdictChunk(this.#verdict(await decided, false), first)
  }

  /**
   * Hold: every chunk is kept until the verdict. On pass and flag they go out, then the rest as
   * it comes; on block the chain is stopped, and the chunks that are not the answer go out with
   * the fallback in the answer's place.
   */
  async *#hold(stream: ChainStream<Output>): AsyncGenerator<Guarded<Output>> {
    const settings = this.#settings
    const held: unknown[] = []
    let pending = stream.next()
    let ended = false
    let decided: Decided | undefined
    while (!decided) {
      const waiting = stream.decided
      const step = await (waiting
        ? Promise.race([pending, waiting.then((result) => ({ decided: result }))])
        : pending)
      if ('decided' in step) decided = step.decided
      else if (step.done) {
        ended = true
        decided = await stream.atEnd()
      } else {
        held.push(step.value)
        stream.watch(step.value)
        pending = stream.next()
      }
    }
    // Repair: the held answer's chunks become one carrying the answer less its unsupported
    // sentences (the groundedness check decides once the chain has ended: every chunk is held).
    const repair = repairOf(decided.decision)
    const blocks = enforcesBlock(decided.decision) || repair !== undefined
    if (blocks && held.length === 0 && !ended && !settings.answer) {
      // The shape of the output (a text, an object) shows in its first chunk.
      const step = await pending
      if (!step.done) held.push(step.value)
    }
    const verdict = this.#verdict(decided, blocks)
    let first = held[0]
    if (blocks) {
      pending.catch(() => {})
      stream.stop()
      const replacement = repair
        ? repairedText(stream.answer, repair.removed)
        : settings.fallbackMessage
      for (const chunk of blockedChunks(settings, held, replacement)) yield chunk as Guarded<Output>
    } else {
      for (const chunk of held) yield chunk as Guarded<Output>
      if (!ended) {
        for (let step = await pending; !step.done; step = await stream.next()) {
          first ??= step.value
          yield step.value as Guarded<Output>
        }
      }
    }
    yield* this.#verdictChunk(verdict, first)
  }

  /** The verdict as a last chunk, in a stream of objects (a text stream has no room for it). */
  *#verdictChunk(verdict: RagGuardVerdict, first: unknown): Generator<Guarded<Output>> {
    if (!isTextOutput(this.#settings, first)) yield { [RAG_GUARD_KEY]: verdict } as Guarded<Output>
  }
}

/**
 * Puts RAG Guard behind an LCEL chain: its question (from the input) is judged against its
 * documents (from the input or the output), and on block its answer is replaced by
 * `fallbackMessage`. The options are `ragGuard()`'s where they mean the same.
 *
 * @example
 * ```ts
 * import { ragGuardRunnable } from 'rag-guard/langchain'
 *
 * // ragChain: { input } → { input, context: Document[], answer }
 * const guarded = ragGuardRunnable(ragChain, { judge: { apiKey: process.env.OPENAI_API_KEY } })
 * const { answer, ragGuard } = await guarded.invoke({ input: 'What does a day pass cost?' })
 * for await (const chunk of await guarded.stream({ input: question })) console.log(chunk)
 * ```
 */
export function ragGuardRunnable<Input, Output>(
  chain: Runnable<Input, Output>,
  options: RagGuardRunnableOptions,
): RagGuardRunnable<Input, Output> {
  return new RagGuardRunnable(chain, options)
}
