import { ConfigurationError } from '../errors'
import { firstProblem, fraction } from '../settings'

/** What the guard does with an answer. */
export type Verdict = 'pass' | 'flag' | 'block'

export const VERDICTS = ['pass', 'flag', 'block'] as const satisfies readonly Verdict[]

const THRESHOLD = fraction()

export interface Thresholds {
  /** Scores below this are blocked. In [0, 1], at most `flagBelow`. */
  blockBelow: number
  /** Scores below this (and at or above `blockBelow`) are flagged. In [0, 1]. */
  flagBelow: number
}

/** Thresholds used when none are configured: uncalibrated starting points, see the README. */
export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  blockBelow: 0.1,
  flagBelow: 0.5,
})

/**
 * Checks thresholds once, at setup. `names` lets the Worker report its own setting names
 * (`BLOCK_BELOW`) instead of the option names; `owner` opens the message.
 */
export function validateThresholds(
  thresholds: Thresholds,
  names: { blockBelow: string; flagBelow: string } = {
    blockBelow: 'blockBelow',
    flagBelow: 'flagBelow',
  },
  owner?: string,
): Thresholds {
  const opening = owner ? `${owner}: ` : ''
  for (const key of ['blockBelow', 'flagBelow'] as const) {
    const result = THRESHOLD.schema.safeParse(thresholds[key])
    if (!result.success) {
      throw new ConfigurationError(
        `${opening}${names[key]} ${firstProblem(result.error)}`,
        names[key],
      )
    }
  }
  if (thresholds.blockBelow > thresholds.flagBelow) {
    throw new ConfigurationError(
      `${opening}${names.blockBelow} (${thresholds.blockBelow}) must not be greater than ${names.flagBelow} (${thresholds.flagBelow})`,
      names.blockBelow,
    )
  }
  return { blockBelow: thresholds.blockBelow, flagBelow: thresholds.flagBelow }
}

/**
 * score < blockBelow → block; score < flagBelow → flag; otherwise pass.
 * Pass thresholds through {@link validateThresholds} once; this runs per request and does not
 * check them again.
 */
export function decide(score: number, thresholds: Thresholds): Verdict {
  if (score < thresholds.blockBelow) return 'block'
  if (score < thresholds.flagBelow) return 'flag'
  return 'pass'
}

export function isVerdict(value: unknown): value is Verdict {
  return VERDICTS.includes(value as Verdict)
}
