/** What every phase of the benchmark shares: options, the stub, the bundles, the results. */
import type { OpenAIStub } from '../../stub/openai-stub'

export interface BenchOptions {
  seed: number
  quick: boolean
  /** Extra rows that take the guard apart (decision log off, cache off, …). */
  breakdown: boolean
  verbose: boolean
  /** Latency phase: requests in flight at once. */
  concurrency: number
  /** Latency phase: Miniflare's Cache API simulator (needed for the cache-hit row). */
  cacheSimulator: boolean
  /**
   * A guard bundle built elsewhere (e.g. from another commit), measured in the same rounds as
   * the guard (cpu phase): before and after under the same load.
   */
  baseline?: string
  /** Cpu phase: rounds of every Worker in turn (default 3, 1 with --quick). */
  rounds?: number
}

export interface Bundle {
  path: string
  raw: number
  gzip: number
  /** esbuild's metafile, when it was asked for. */
  metafile?: string
}

export interface Bundles {
  guard: Bundle
  passthrough: Bundle
  floorChatOpenAI: Bundle
  floorFetch: Bundle
  streamLab: Bundle
  /** --breakdown only. */
  opLab: Bundle
}

/** One row of the table: figure | guard | floor(s) | goal | met? */
export interface Row {
  section: string
  figure: string
  guard: string
  floors: string
  goal: string
  /** undefined: no goal for this row. */
  met?: boolean
}

export interface BenchContext {
  options: BenchOptions
  stub: OpenAIStub
  bundles: Bundles
  rows: Row[]
  /** Notes printed under the table (methods, outcomes, things that could not be measured). */
  notes: string[]
  log(message: string): void
}

export const ms = (value: number, digits = 2) => `${value.toFixed(digits)} ms`
export const signedMs = (value: number, digits = 2) =>
  `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)} ms`
export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
export const percentileOf = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}
