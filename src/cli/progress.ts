/**
 * A progress line for long runs: done/total, percent, rate and ETA. On a terminal it redraws one
 * line; elsewhere (CI logs, pipes) it writes a line every 10% so logs stay readable.
 */
export interface ProgressStream {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

export class Progress {
  readonly #stream: ProgressStream
  readonly #total: number
  readonly #startedAt = Date.now()
  #done = 0
  #failed = 0
  #lastDecile = -1

  constructor(
    stream: ProgressStream,
    total: number,
    readonly label: string,
  ) {
    this.#stream = stream
    this.#total = total
  }

  tick(failed: boolean): void {
    this.#done++
    if (failed) this.#failed++
    this.#render()
  }

  /** The line as it would be drawn now. */
  line(): string {
    const elapsed = (Date.now() - this.#startedAt) / 1000
    const rate = elapsed > 0 ? this.#done / elapsed : 0
    const left = this.#total - this.#done
    const eta = rate > 0 ? formatDuration(left / rate) : '?'
    const share = this.#total ? this.#done / this.#total : 1
    const width = 24
    const filled = Math.round(share * width)
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.#done}/${this.#total} ${(share * 100).toFixed(0)}% · ${rate.toFixed(1)}/s · ETA ${eta}${this.#failed ? ` · ${this.#failed} without score` : ''}`
  }

  #render(): void {
    if (this.#stream.isTTY) {
      this.#stream.write(`\r${this.line().slice(0, (this.#stream.columns ?? 120) - 1)}\u001b[K`)
      if (this.#done === this.#total) this.#stream.write('\n')
      return
    }
    const decile = Math.floor((this.#done / Math.max(this.#total, 1)) * 10)
    if (decile !== this.#lastDecile || this.#done === this.#total) {
      this.#lastDecile = decile
      this.#stream.write(`${this.line()}\n`)
    }
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  if (seconds < 60) return `${Math.ceil(seconds)}s`
  const minutes = Math.floor(seconds / 60)
  return minutes < 60
    ? `${minutes}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`
    : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`
}
