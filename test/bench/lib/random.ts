/** Seeded random numbers for the benchmark: the same seed gives the same delays and texts. */

/** mulberry32: a small, fast 32-bit generator; uniform in [0, 1). */
export function generator(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A log-normal delay: median `medianMs`, spread `sigma` (0.3: most within ×0.55–×1.8). */
export function logNormal(random: () => number, medianMs: number, sigma: number): () => number {
  return () => {
    // Box–Muller.
    const u = 1 - random()
    const v = random()
    const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
    return Math.max(1, Math.round(medianMs * Math.exp(sigma * normal)))
  }
}

export interface DelayModel {
  /** Median in ms and log-normal spread. */
  medianMs: number
  sigma: number
}

export const describeDelay = (model: DelayModel) =>
  `log-normal, median ${model.medianMs} ms, σ ${model.sigma}`
