/**
 * Production labels: labels given to the guard's own decisions — the review page's export
 * (`/_guard/labels.jsonl`), or a decision log joined with a labels file — per check, and whether
 * there are enough of them for the precision asked. Pure.
 */
import { LABEL_FIELD, LABEL_WORDS, type Check } from '../review/checks'
import { parseLabel } from './data'
import type { Targets } from './metrics'

/** One check's labels: how many, and how many of each kind (sufficient / grounded = yes). */
export interface CheckLabels {
  labeled: number
  yes: number
  no: number
}

export type ProductionLabels = Record<Check, CheckLabels>

export const noLabels = (): ProductionLabels => ({
  sufficiency: { labeled: 0, yes: 0, no: 0 },
  groundedness: { labeled: 0, yes: 0, no: 0 },
})

/**
 * A line's label for `check`: `sufficient` (or `label`) for sufficiency, `grounded` for
 * groundedness, in the spellings `rag-guard eval` reads (`CHECK_LABEL_VALUES`); undefined when
 * the line has none.
 */
export function lineLabel(line: Record<string, unknown>, check: Check): boolean | undefined {
  if (check === 'groundedness') return parseLabel(line[LABEL_FIELD.groundedness], check)
  return parseLabel(line[LABEL_FIELD.sufficiency] ?? line.label, check)
}

/**
 * The fewest labels of one kind that a side of the recommendation needs for `precision`: the
 * `--min-count` rule the recommendation already applies to each side (its precision counts only
 * with that many examples), and at least ⌈1 / (1 − precision)⌉, since n examples measure a
 * precision in steps of 1/n — with fewer, a single wrong example already misses the target, so
 * the recommendation would rest on a sample without one mistake.
 */
export function labelsNeeded(precision: number, minCount: number): number {
  if (precision >= 1) return minCount
  // The epsilon keeps 1 / (1 − 0.9) = 10.000000000000002 at 10.
  return Math.max(minCount, Math.ceil(1 / (1 - precision) - 1e-9))
}

const percent = (value: number) => `${Math.round(value * 1000) / 10}%`

/**
 * What is too few among a check's production labels for the targets: the passed answers a
 * threshold keeps are mostly labeled yes (sufficient, grounded), the blocked mostly no, so each
 * kind needs {@link labelsNeeded} labels for its side's precision.
 */
export function tooFewLabels(labels: CheckLabels, check: Check, targets: Targets): string[] {
  const minCount = targets.minCount ?? 10
  const words = LABEL_WORDS[check]
  const warnings: string[] = []
  const sides = [
    [labels.yes, words.yes, 'pass', targets.passPrecision],
    [labels.no, words.no, 'block', targets.blockPrecision],
  ] as const
  for (const [count, word, side, precision] of sides) {
    const needed = labelsNeeded(precision, minCount)
    if (count < needed) {
      warnings.push(
        `only ${count} production ${check} labels are "${word}": a ${side} precision of ${percent(precision)} needs at least ${needed} (label ${needed - count} more)`,
      )
    }
  }
  return warnings
}

/** "sufficiency 42 (30 sufficient, 12 insufficient) · groundedness 0" */
export function formatProductionLabels(labels: ProductionLabels): string {
  return (Object.keys(labels) as Check[])
    .map((check) => {
      const { labeled, yes, no } = labels[check]
      const words = LABEL_WORDS[check]
      return labeled ? `${check} ${labeled} (${yes} ${words.yes}, ${no} ${words.no})` : `${check} 0`
    })
    .join(' · ')
}
