/**
 * One streamed run of a guarded chain: the chain's chunks as they come, and its judgement,
 * started as soon as the documents are known (at once when they are in the input, else when a
 * chunk carries them). The run can stop the chain (a block) and close (the caller stopped
 * reading, or the stream is done).
 */
import type { ContextReading } from '../formats/context'
import type { Decided } from './decide'

/** The judging of one run, which the run can stop when it no longer needs it. */
export interface Judgement {
  /** The decision: every check's, or an enforced block's. */
  decided: Promise<Decided>
  /** Whether a check needs the whole answer (groundedness). */
  readonly needsAnswer: boolean
  /** The answer is complete: the checks that need it start. */
  answer(text: string | undefined): void
  cancel(): void
}

export class ChainStream<Output> {
  #judgement: Judgement | undefined
  readonly #stop = new AbortController()
  #chunks: AsyncIterator<Output> | undefined
  /** The answer so far, when a check needs it. */
  #answer = ''
  readonly #opened: Promise<AsyncIterator<Output>>

  constructor(
    /** Starts the chain's stream, stopped by `signal`. */
    open: (signal: AbortSignal) => Promise<AsyncIterable<Output>>,
    /** The caller's own signal, if any. */
    signal: AbortSignal | undefined,
    private readonly judge: (context: ContextReading) => Judgement,
    /** The documents a chunk carries, if it carries them. */
    private readonly contextOf: (chunk: unknown) => ContextReading | undefined,
    /** The piece of the answer a chunk carries, if any; undefined when no check needs the answer. */
    private readonly answerOf: ((chunk: unknown) => string | undefined) | undefined,
    /** The most characters of the answer kept: the judge takes no more (`maxInputChars`). */
    private readonly answerLimit: number,
    /** The documents of the input, when they are there: judged at once. */
    inputContext?: ContextReading,
  ) {
    if (inputContext) this.#judgement = judge(inputContext)
    // A chain's stream opens with its first chunk: judging does not wait for it.
    const stopped = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal
    this.#opened = open(stopped).then((chunks) => (this.#chunks = chunks[Symbol.asyncIterator]()))
  }

  /** The answer read so far (the whole answer once the chain has ended), when a check needs it. */
  get answer(): string {
    return this.#answer
  }

  /** The judgement, once started. */
  get decided(): Promise<Decided> | undefined {
    return this.#judgement?.decided
  }

  /** The chain's next chunk. */
  next(): Promise<IteratorResult<Output>> {
    return this.#chunks ? this.#chunks.next() : this.#opened.then((chunks) => chunks.next())
  }

  /**
   * Starts the judge when `chunk` carries the documents and it has not started yet; keeps the
   * piece of the answer it carries, when a check needs the answer (bounded: past the judge's
   * limit, the answer is unjudgeable anyway).
   */
  watch(chunk: unknown): void {
    if (this.answerOf && this.#answer.length <= this.answerLimit) {
      this.#answer += this.answerOf(chunk) ?? ''
    }
    if (this.#judgement) return
    const context = this.contextOf(chunk)
    if (context) this.#judgement = this.judge(context)
  }

  /**
   * The decision once the chain has ended: without documents seen, there were none. The answer
   * is complete: groundedness starts.
   */
  atEnd(): Promise<Decided> {
    this.#judgement ??= this.judge({ ok: true, documents: [] })
    this.#judgement.answer(this.#answer)
    return this.#judgement.decided
  }

  /** Stops the chain (its model request too). */
  stop(): void {
    this.#stop.abort()
  }

  /** Ends the run: the chain stops, and the judge too unless its verdict is still wanted. */
  close(keepJudging: boolean): void {
    if (!keepJudging) this.#judgement?.cancel()
    this.stop()
    // Not awaited: a chain stopped mid-call ends in its own time.
    this.#opened.then((chunks) => chunks.return?.()).catch(() => undefined)
  }
}
