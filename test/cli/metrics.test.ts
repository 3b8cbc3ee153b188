import { describe, expect, it } from 'vitest'
import {
  auroc,
  averagePrecision,
  brierScore,
  candidateThresholds,
  expectedCalibrationError,
  recommendThresholds,
  reliabilityBins,
  statsAt,
  type Scored,
} from '../../src/cli/metrics'

// A small case worked out by hand, with a tie across the labels at 0.3.
const small: Scored[] = [
  { score: 0.9, sufficient: true },
  { score: 0.8, sufficient: false },
  { score: 0.7, sufficient: true },
  { score: 0.3, sufficient: false },
  { score: 0.3, sufficient: true },
  { score: 0.1, sufficient: false },
]

/** A seeded generator, so the random cases are the same on every run. */
function random(seed: number) {
  return () => {
    seed = (seed * 1664525 + 1013904223) % 2 ** 32
    return seed / 2 ** 32
  }
}

/** Scores spread evenly, labels alternating from the top down (insufficient first): no threshold separates them. */
function alternating(count: number): Scored[] {
  return Array.from({ length: count }, (_, index) => ({
    score: (count - index) / (count + 1),
    sufficient: index % 2 === 1,
  }))
}

/** Noisy labeled scores, rounded to two decimals so that ties are frequent. */
function noisy(count: number, seed: number): Scored[] {
  const next = random(seed)
  return Array.from({ length: count }, () => {
    const sufficient = next() < 0.5
    const score =
      Math.round(
        Math.min(1, Math.max(0, (sufficient ? 0.65 : 0.35) + (next() - 0.5) * 0.8)) * 100,
      ) / 100
    return { score, sufficient }
  })
}

describe('AUROC', () => {
  it('is 6.5 / 9 on the small case: 9 sufficient–insufficient pairs, 6 won, 1 tied', () => {
    expect(auroc(small)).toBeCloseTo(6.5 / 9, 12)
  })

  it('equals the Mann–Whitney statistic counted pair by pair, ties included', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const examples = noisy(300, seed)
      const positives = examples.filter((example) => example.sufficient)
      const negatives = examples.filter((example) => !example.sufficient)
      let wins = 0
      for (const positive of positives)
        for (const negative of negatives)
          wins += positive.score > negative.score ? 1 : positive.score === negative.score ? 0.5 : 0
      expect(auroc(examples)).toBeCloseTo(wins / (positives.length * negatives.length), 12)
    }
  })

  it('is 1 for a perfect ranking, 0 for a reversed one, 0.5 when every score ties, NaN with one class', () => {
    expect(
      auroc([
        { score: 0.9, sufficient: true },
        { score: 0.1, sufficient: false },
      ]),
    ).toBe(1)
    expect(
      auroc([
        { score: 0.1, sufficient: true },
        { score: 0.9, sufficient: false },
      ]),
    ).toBe(0)
    expect(
      auroc([
        { score: 0.5, sufficient: true },
        { score: 0.5, sufficient: false },
      ]),
    ).toBe(0.5)
    expect(auroc([{ score: 0.5, sufficient: true }])).toBeNaN()
  })
})

describe('average precision (detecting insufficient context)', () => {
  it('is 1/3·1 + 1/3·2/3 + 1/3·3/5 on the small case, the tie entering as one step', () => {
    expect(averagePrecision(small)).toBeCloseTo(1 / 3 + (1 / 3) * (2 / 3) + (1 / 3) * (3 / 5), 12)
  })

  it('is 1 when every insufficient example scores lowest', () => {
    expect(
      averagePrecision([
        { score: 0.1, sufficient: false },
        { score: 0.2, sufficient: false },
        { score: 0.9, sufficient: true },
      ]),
    ).toBe(1)
  })
})

describe('Brier score and calibration error', () => {
  it('Brier: the mean squared error, (0.01 + 0.64 + 0.09 + 0.09 + 0.49 + 0.01) / 6', () => {
    expect(brierScore(small)).toBeCloseTo(1.33 / 6, 12)
  })

  it('ECE with 10 equal-width bins: (0.1·1 + 0.2·2 + 0.3·1 + 0.8·1 + 0.1·1) / 6', () => {
    expect(expectedCalibrationError(small, 10)).toBeCloseTo(1.7 / 6, 12)
    const bins = reliabilityBins(small, 10)
    expect(bins[3]).toEqual({ from: 0.3, to: 0.4, count: 2, meanScore: 0.3, sufficientRate: 0.5 })
    expect(bins.filter((bin) => bin.count > 0).map((bin) => bin.from)).toEqual([
      0.1, 0.3, 0.7, 0.8, 0.9,
    ])
  })

  it('ECE is 0 for scores that match the outcome rate in each bin, and a score of 1 lands in the last bin', () => {
    const matched: Scored[] = [
      { score: 0.25, sufficient: true },
      { score: 0.25, sufficient: false },
      { score: 0.25, sufficient: false },
      { score: 0.25, sufficient: false },
      { score: 1, sufficient: true },
    ]
    expect(expectedCalibrationError(matched, 4)).toBeCloseTo(0, 12)
    expect(reliabilityBins(matched, 4)[3]!.count).toBe(1)
  })
})

describe('threshold statistics', () => {
  it('counts scores at the threshold as passed', () => {
    expect(statsAt(small, 0.3)).toMatchObject({
      above: 5,
      below: 1,
      aboveSufficient: 3,
      belowInsufficient: 1,
      coverage: 5 / 6,
      sufficientRecall: 1,
      insufficientRecall: 1 / 3,
    })
    expect(statsAt(small, 0.3).abovePrecision).toBeCloseTo(0.6, 12)
  })

  it('offers one threshold per distinct split, each printed short and strictly between its neighbours', () => {
    expect(candidateThresholds(small)).toEqual([0, 0.2, 0.5, 0.8, 0.9, 1])
    const examples = noisy(200, 9)
    const thresholds = candidateThresholds(examples)
    const splits = new Set(thresholds.map((threshold) => statsAt(examples, threshold).above))
    expect(splits.size).toBe(thresholds.length)
    const scores = new Set(examples.map((example) => example.score))
    // One per distinct score (the lowest one's is 0), plus one above all when the top score is below 1.
    expect(thresholds.length).toBe(scores.size + (Math.max(...scores) < 1 ? 1 : 0))
  })
})

describe('recommended thresholds', () => {
  it('meet the targets on the data, and no lower FLAG_BELOW (or higher BLOCK_BELOW) would', () => {
    for (const seed of [11, 12, 13]) {
      const examples = noisy(400, seed)
      const targets = { passPrecision: 0.8, blockPrecision: 0.75, minCount: 10 }
      const { flagBelow, blockBelow } = recommendThresholds(examples, targets)
      expect(flagBelow.met && blockBelow.met).toBe(true)
      if (!flagBelow.met || !blockBelow.met) return
      // Recomputed from the raw data, not from the returned statistics.
      const passed = examples.filter((example) => example.score >= flagBelow.stats.threshold)
      expect(
        passed.filter((example) => example.sufficient).length / passed.length,
      ).toBeGreaterThanOrEqual(0.8)
      const blocked = examples.filter((example) => example.score < blockBelow.stats.threshold)
      expect(
        blocked.filter((example) => !example.sufficient).length / blocked.length,
      ).toBeGreaterThanOrEqual(0.75)
      expect(blockBelow.stats.threshold).toBeLessThanOrEqual(flagBelow.stats.threshold)
      const candidates = candidateThresholds(examples)
      const lower = candidates
        .filter((threshold) => threshold < flagBelow.stats.threshold)
        .map((threshold) => statsAt(examples, threshold))
      expect(lower.some((stats) => stats.above >= 10 && stats.abovePrecision >= 0.8)).toBe(false)
      const higher = candidates
        .filter(
          (threshold) =>
            threshold > blockBelow.stats.threshold && threshold <= flagBelow.stats.threshold,
        )
        .map((threshold) => statsAt(examples, threshold))
      expect(higher.some((stats) => stats.below >= 10 && stats.belowPrecision >= 0.75)).toBe(false)
    }
  })

  it('says when a target cannot be met, with the best reachable trade-off', () => {
    const examples = alternating(200)
    const { flagBelow, blockBelow } = recommendThresholds(examples, {
      passPrecision: 0.9,
      blockPrecision: 0.9,
      minCount: 10,
    })
    expect(flagBelow.met).toBe(false)
    expect(blockBelow.met).toBe(false)
    if (flagBelow.met || blockBelow.met) return
    expect(flagBelow.best!.abovePrecision).toBeLessThan(0.9)
    expect(blockBelow.best!.belowPrecision).toBeLessThan(0.9)
    expect(flagBelow.best!.above).toBeGreaterThanOrEqual(10)
    const best = Math.max(
      ...candidateThresholds(examples)
        .map((threshold) => statsAt(examples, threshold))
        .filter((stats) => stats.above >= 10)
        .map((stats) => stats.abovePrecision),
    )
    expect(flagBelow.best!.abovePrecision).toBe(best)
  })

  it('does not trust a precision measured on fewer than minCount examples', () => {
    // Only the single top example is all sufficient; any two or more are mixed.
    const examples: Scored[] = [{ score: 0.999, sufficient: true }, ...alternating(100)]
    expect(
      recommendThresholds(examples, { passPrecision: 1, blockPrecision: 0.5, minCount: 1 })
        .flagBelow.met,
    ).toBe(true)
    expect(
      recommendThresholds(examples, { passPrecision: 1, blockPrecision: 0.5, minCount: 2 })
        .flagBelow.met,
    ).toBe(false)
  })
})
