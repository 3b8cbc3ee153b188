/**
 * Detection-quality metrics for a sufficiency judge. Pure functions over (score, label) pairs:
 * `score` is P(True), the judge's probability that the context is sufficient; `sufficient` is
 * the truth. The guard passes when score ≥ FLAG_BELOW and blocks when score < BLOCK_BELOW.
 */
export interface Scored {
  score: number
  sufficient: boolean
}

/**
 * Area under the ROC curve, as the Mann–Whitney statistic: the probability that a sufficient
 * example scores above an insufficient one, ties counting one half. NaN without both classes.
 */
export function auroc(examples: readonly Scored[]): number {
  const positives = examples.filter((example) => example.sufficient).length
  const negatives = examples.length - positives
  if (positives === 0 || negatives === 0) return Number.NaN
  // Rank-sum form with midranks for ties: U = R+ − n+(n+ + 1)/2.
  const sorted = [...examples].sort((a, b) => a.score - b.score)
  let rankSum = 0
  for (let start = 0; start < sorted.length;) {
    let end = start
    while (end + 1 < sorted.length && sorted[end + 1]!.score === sorted[start]!.score) end++
    const midrank = (start + end) / 2 + 1
    for (let index = start; index <= end; index++) if (sorted[index]!.sufficient) rankSum += midrank
    start = end + 1
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives)
}

/**
 * Area under the precision–recall curve as average precision, for detecting *insufficient*
 * context (the positives) ranked by 1 − score. Tied scores enter together, as one threshold.
 */
export function averagePrecision(examples: readonly Scored[]): number {
  const positives = examples.filter((example) => !example.sufficient).length
  if (positives === 0) return Number.NaN
  const sorted = [...examples].sort((a, b) => a.score - b.score) // most doubtful first
  let truePositives = 0
  let taken = 0
  let sum = 0
  for (let start = 0; start < sorted.length;) {
    let end = start
    while (end + 1 < sorted.length && sorted[end + 1]!.score === sorted[start]!.score) end++
    let newPositives = 0
    for (let index = start; index <= end; index++) if (!sorted[index]!.sufficient) newPositives++
    truePositives += newPositives
    taken += end - start + 1
    sum += (newPositives / positives) * (truePositives / taken)
    start = end + 1
  }
  return sum
}

/** Mean squared difference between the score and the truth (1 sufficient, 0 not). */
export function brierScore(examples: readonly Scored[]): number {
  if (examples.length === 0) return Number.NaN
  return (
    examples.reduce(
      (total, { score, sufficient }) => total + (score - (sufficient ? 1 : 0)) ** 2,
      0,
    ) / examples.length
  )
}

export interface ReliabilityBin {
  /** [from, to): the last bin includes 1. */
  from: number
  to: number
  count: number
  /** Mean score in the bin (the judge's confidence). */
  meanScore: number
  /** Share of sufficient examples in the bin (what happened). */
  sufficientRate: number
}

/** `bins` equal-width bins over [0, 1]; a score of exactly 1 falls in the last. */
export function reliabilityBins(examples: readonly Scored[], bins = 10): ReliabilityBin[] {
  const result = Array.from({ length: bins }, (_, index) => ({
    from: index / bins,
    to: (index + 1) / bins,
    count: 0,
    scoreSum: 0,
    sufficient: 0,
  }))
  for (const { score, sufficient } of examples) {
    const bin = result[Math.min(bins - 1, Math.floor(score * bins))]!
    bin.count++
    bin.scoreSum += score
    if (sufficient) bin.sufficient++
  }
  return result.map(({ from, to, count, scoreSum, sufficient }) => ({
    from,
    to,
    count,
    meanScore: count ? scoreSum / count : Number.NaN,
    sufficientRate: count ? sufficient / count : Number.NaN,
  }))
}

/**
 * Expected calibration error with `bins` equal-width bins: Σ (nᵦ / n) · |sufficient rateᵦ − mean scoreᵦ|.
 */
export function expectedCalibrationError(examples: readonly Scored[], bins = 10): number {
  if (examples.length === 0) return Number.NaN
  return reliabilityBins(examples, bins).reduce(
    (total, bin) =>
      bin.count
        ? total + (bin.count / examples.length) * Math.abs(bin.sufficientRate - bin.meanScore)
        : total,
    0,
  )
}

/** What one threshold does: examples scoring below it on one side, at or above on the other. */
export interface ThresholdStats {
  threshold: number
  /** Examples at or above the threshold (passed, if it is FLAG_BELOW). */
  above: number
  /** Examples below it (blocked, if it is BLOCK_BELOW). */
  below: number
  /** Sufficient examples at or above; insufficient examples below. */
  aboveSufficient: number
  belowInsufficient: number
  /** Share of sufficient examples among those at or above: "pass precision". */
  abovePrecision: number
  /** Share of insufficient examples among those below: "block precision". */
  belowPrecision: number
  /** Share of all sufficient examples that are at or above: recall of sufficient context. */
  sufficientRecall: number
  /** Share of all insufficient examples that are below: recall of insufficient context. */
  insufficientRecall: number
  /** Share of all examples at or above: how many answers get through. */
  coverage: number
}

export function statsAt(examples: readonly Scored[], threshold: number): ThresholdStats {
  let above = 0
  let aboveSufficient = 0
  let belowInsufficient = 0
  let sufficientTotal = 0
  for (const { score, sufficient } of examples) {
    if (sufficient) sufficientTotal++
    if (score >= threshold) {
      above++
      if (sufficient) aboveSufficient++
    } else if (!sufficient) belowInsufficient++
  }
  const below = examples.length - above
  const insufficientTotal = examples.length - sufficientTotal
  return {
    threshold,
    above,
    below,
    aboveSufficient,
    belowInsufficient,
    abovePrecision: above ? aboveSufficient / above : Number.NaN,
    belowPrecision: below ? belowInsufficient / below : Number.NaN,
    sufficientRecall: sufficientTotal ? aboveSufficient / sufficientTotal : Number.NaN,
    insufficientRecall: insufficientTotal ? belowInsufficient / insufficientTotal : Number.NaN,
    coverage: examples.length ? above / examples.length : Number.NaN,
  }
}

/**
 * The thresholds that split the data in every distinct way: 0, a value between each pair of
 * neighbouring distinct scores, and a value above the highest (when it is below 1). Each is written with the fewest
 * decimals that keep it strictly between its neighbours, so it can go in a config as printed.
 */
export function candidateThresholds(examples: readonly Scored[]): number[] {
  const scores = [...new Set(examples.map((example) => example.score))].sort((a, b) => a - b)
  const thresholds = [0]
  for (let index = 1; index < scores.length; index++)
    thresholds.push(between(scores[index - 1]!, scores[index]!))
  // A threshold that passes nothing exists only below 1 (FLAG_BELOW cannot exceed 1).
  if (scores.length && scores[scores.length - 1]! < 1)
    thresholds.push(between(scores[scores.length - 1]!, 1))
  return thresholds
}

/** The shortest decimal d with low < d ≤ high, preferring the midpoint's neighbourhood. */
function between(low: number, high: number): number {
  for (let decimals = 1; decimals <= 17; decimals++) {
    const factor = 10 ** decimals
    const candidate = Math.ceil(((low + high) / 2) * factor) / factor
    if (candidate > low && candidate <= high) return candidate
    const lower = Math.floor(((low + high) / 2) * factor) / factor
    if (lower > low && lower <= high) return lower
  }
  return high
}

export interface Targets {
  /** Of the answers passed (score ≥ FLAG_BELOW), at least this share must have sufficient context. */
  passPrecision: number
  /** Of the answers blocked (score < BLOCK_BELOW), at least this share must truly lack it. */
  blockPrecision: number
  /** Fewest examples a side must hold for its precision to count. @default 10 */
  minCount?: number
}

export interface Recommendation {
  flagBelow: { met: true; stats: ThresholdStats } | { met: false; best?: ThresholdStats }
  blockBelow: { met: true; stats: ThresholdStats } | { met: false; best?: ThresholdStats }
}

/**
 * FLAG_BELOW: the lowest threshold whose passed answers meet the pass precision (the most
 * answers through). BLOCK_BELOW: the highest threshold whose blocked answers meet the block
 * precision (the most blocked), and never above FLAG_BELOW. When a target cannot be met, the
 * best reachable precision (with enough examples) is returned instead.
 */
export function recommendThresholds(examples: readonly Scored[], targets: Targets): Recommendation {
  const minCount = targets.minCount ?? 10
  const all = candidateThresholds(examples).map((threshold) => statsAt(examples, threshold))

  const passing = all.filter(
    (stats) => stats.above >= minCount && stats.abovePrecision >= targets.passPrecision,
  )
  const flag = passing.length
    ? passing.reduce((best, stats) => (stats.threshold < best.threshold ? stats : best))
    : undefined
  const bestPass = all
    .filter((stats) => stats.above >= minCount)
    .reduce<ThresholdStats | undefined>(
      (best, stats) =>
        !best ||
        stats.abovePrecision > best.abovePrecision ||
        (stats.abovePrecision === best.abovePrecision && stats.above > best.above)
          ? stats
          : best,
      undefined,
    )

  const ceiling = flag?.threshold ?? Number.POSITIVE_INFINITY
  const blocking = all.filter(
    (stats) =>
      stats.threshold <= ceiling &&
      stats.below >= minCount &&
      stats.belowPrecision >= targets.blockPrecision,
  )
  const block = blocking.length
    ? blocking.reduce((best, stats) => (stats.threshold > best.threshold ? stats : best))
    : undefined
  const bestBlock = all
    .filter((stats) => stats.threshold <= ceiling && stats.below >= minCount)
    .reduce<ThresholdStats | undefined>(
      (best, stats) =>
        !best ||
        stats.belowPrecision > best.belowPrecision ||
        (stats.belowPrecision === best.belowPrecision && stats.below > best.below)
          ? stats
          : best,
      undefined,
    )

  return {
    flagBelow: flag ? { met: true, stats: flag } : { met: false, best: bestPass },
    blockBelow: block ? { met: true, stats: block } : { met: false, best: bestBlock },
  }
}

/** ROC curve points (false positive rate, true positive rate), sufficient as the positive class. */
export function rocCurve(
  examples: readonly Scored[],
): Array<{ fpr: number; tpr: number; threshold: number }> {
  const positives = examples.filter((example) => example.sufficient).length
  const negatives = examples.length - positives
  return candidateThresholds(examples)
    .map((threshold) => {
      const stats = statsAt(examples, threshold)
      const falsePositives = stats.above - stats.aboveSufficient
      return {
        threshold,
        tpr: positives ? stats.aboveSufficient / positives : Number.NaN,
        fpr: negatives ? falsePositives / negatives : Number.NaN,
      }
    })
    .sort((a, b) => a.fpr - b.fpr || a.tpr - b.tpr)
}

/** Pass precision against coverage, for every threshold with at least one example passed. */
export function precisionCoverageCurve(
  examples: readonly Scored[],
): Array<{ coverage: number; precision: number; threshold: number }> {
  return candidateThresholds(examples)
    .map((threshold) => statsAt(examples, threshold))
    .filter((stats) => stats.above > 0)
    .map((stats) => ({
      coverage: stats.coverage,
      precision: stats.abovePrecision,
      threshold: stats.threshold,
    }))
    .sort((a, b) => a.coverage - b.coverage)
}
