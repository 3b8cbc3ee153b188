import { describe, expect, it } from 'vitest'
import { ConfigurationError, decide, validateThresholds } from '../src'

describe('decide', () => {
  const thresholds = validateThresholds({ blockBelow: 0.2, flagBelow: 0.8 })

  it.each([
    [0, 'block'],
    [0.1999, 'block'],
    [0.2, 'flag'],
    [0.5, 'flag'],
    [0.7999, 'flag'],
    [0.8, 'pass'],
    [1, 'pass'],
  ] as const)('score %d → %s', (score, verdict) => {
    expect(decide(score, thresholds)).toBe(verdict)
  })

  it('never flags when both thresholds are equal', () => {
    const single = validateThresholds({ blockBelow: 0.5, flagBelow: 0.5 })
    expect([decide(0.49, single), decide(0.5, single)]).toEqual(['block', 'pass'])
  })
})

describe('validateThresholds', () => {
  it.each([
    [{ blockBelow: -0.1, flagBelow: 0.5 }, /blockBelow must be a number from 0 to 1, got -0.1/],
    [{ blockBelow: 0.1, flagBelow: 1.5 }, /flagBelow must be a number from 0 to 1, got 1.5/],
    [{ blockBelow: Number.NaN, flagBelow: 0.5 }, /blockBelow must be a number from 0 to 1/],
    [
      { blockBelow: '0.1' as unknown as number, flagBelow: 0.5 },
      /blockBelow must be a number from 0 to 1, got "0.1"/,
    ],
    [
      { blockBelow: 0.6, flagBelow: 0.5 },
      /blockBelow \(0.6\) must not be greater than flagBelow \(0.5\)/,
    ],
  ])('rejects %j with an error that names the setting', (thresholds, message) => {
    expect(() => validateThresholds(thresholds)).toThrow(ConfigurationError)
    expect(() => validateThresholds(thresholds)).toThrow(message)
  })

  it('names the Worker settings when asked to', () => {
    expect(() =>
      validateThresholds(
        { blockBelow: 0.9, flagBelow: 0.5 },
        { blockBelow: 'BLOCK_BELOW', flagBelow: 'FLAG_BELOW' },
      ),
    ).toThrow(/BLOCK_BELOW \(0.9\) must not be greater than FLAG_BELOW \(0.5\)/)
  })

  it('accepts the ends of the range', () => {
    expect(validateThresholds({ blockBelow: 0, flagBelow: 1 })).toEqual({
      blockBelow: 0,
      flagBelow: 1,
    })
  })
})
