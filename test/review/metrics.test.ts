/**
 * Issue 29, Analytics Engine: with a dataset bound as GUARD_METRICS, every decision the Worker
 * makes is one data point, laid out as docs/operate.md "Analytics Engine" documents (the blobs, doubles
 * and index its SQL queries name). Miniflare's local dataset keeps nothing it is given, so the
 * data points are read from a recording binding with the same `writeDataPoint`; the Miniflare
 * binding shows that the Worker runs with a real one bound.
 */
import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { METRIC_BLOBS, METRIC_DOUBLES } from '../../src/review/metrics'
import { judgeSays } from '../guard-helpers'
import { secureGuard } from '../security/helpers'
import { ask, STORE_ENV, storeGuard } from './helpers'

const DOCUMENTS = ['A day pass costs $12.', 'Helmets are required for riders under 18.']
const upstream = { json: { answer: 'A day pass costs $12. ANSWER-MARK' } }
const judge = {
  rules: [
    { contains: 'ANSWER-MARK', step: judgeSays(0.1) },
    { contains: 'passes?', step: judgeSays(0.95) },
    { contains: 'blocks?', step: judgeSays(0.05) },
    { contains: 'fails?', step: { status: 500 } },
  ],
  otherwise: judgeSays(0.9),
}

/** A dataset that keeps what it is given. */
function recordingDataset() {
  const points: AnalyticsEngineDataPoint[] = []
  return {
    points,
    dataset: { writeDataPoint: (point) => points.push(point!) } as AnalyticsEngineDataset,
  }
}

/** A data point as the names of the table in docs/operate.md. */
function named(point: AnalyticsEngineDataPoint): Record<string, unknown> {
  return {
    index: point.indexes?.[0],
    ...Object.fromEntries(METRIC_BLOBS.map((name, index) => [name, point.blobs?.[index]])),
    ...Object.fromEntries(METRIC_DOUBLES.map((name, index) => [name, point.doubles?.[index]])),
  }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('the Analytics Engine data points', () => {
  it('writes one data point per decision, in the documented layout, passes included', async () => {
    const { points, dataset } = recordingDataset()
    const setup = await secureGuard(upstream, judge, {
      ...STORE_ENV,
      GUARD_METRICS: dataset,
      BLOCK_BELOW: 0.3,
      FLAG_BELOW: 0.7,
    })
    for (const question of ['Which one passes?', 'Which one blocks?', 'Which one fails?']) {
      expect((await setup.send('/ask', ask(question, DOCUMENTS))).status).toBe(200)
    }
    await setup.settle()

    expect(points).toHaveLength(3)
    const [passed, blocked, failed] = points.map(named)
    expect(passed).toMatchObject({
      index: '/ask',
      route: '/ask',
      verdict: 'pass',
      mode: 'shadow',
      check: 'sufficiency',
      reason: '',
      estimator: 'logprobs',
      cache: '',
      sufficiencyVerdict: 'pass',
      groundednessVerdict: '',
      sufficiencyScore: expect.closeTo(0.95, 6),
      groundednessScore: -1,
      status: 200,
      blockBelow: 0.3,
      flagBelow: 0.7,
      cacheHit: 0,
    })
    expect(passed!.score).toBeCloseTo(0.95, 6)
    expect(passed!.model).toEqual(expect.stringMatching(/.+/))
    expect(passed!.promptVersion).toMatch(/^sufficiency-/)
    expect(passed!.judgeLatencyMs).toBeGreaterThanOrEqual(0)
    expect(blocked).toMatchObject({ verdict: 'block', sufficiencyVerdict: 'block' })
    expect(blocked!.score).toBeCloseTo(0.05, 6)
    // No score: -1, and the reason.
    expect(failed).toMatchObject({ verdict: 'flag', score: -1, sufficiencyScore: -1 })
    expect(failed!.reason).not.toBe('')
    // Within Analytics Engine's limits: 20 blobs, 20 doubles, one index of at most 96 bytes.
    for (const point of points) {
      expect(point.blobs!.length).toBe(METRIC_BLOBS.length)
      expect(point.blobs!.length).toBeLessThanOrEqual(20)
      expect(point.doubles!.length).toBe(METRIC_DOUBLES.length)
      expect(point.doubles!.length).toBeLessThanOrEqual(20)
      expect(
        point.doubles!.every((value) => typeof value === 'number' && Number.isFinite(value)),
      ).toBe(true)
      expect(new TextEncoder().encode(String(point.indexes![0])).length).toBeLessThanOrEqual(96)
    }
  })

  it('gives each check of a route with two its own verdict and score', async () => {
    const { points, dataset } = recordingDataset()
    const setup = await secureGuard(upstream, judge, {
      ...STORE_ENV,
      GUARD_METRICS: dataset,
      GUARD_ROUTES: [
        {
          path: '/ask',
          format: 'json',
          answer: '/answer',
          checks: ['sufficiency', 'groundedness'],
        },
      ],
      GROUNDEDNESS_BLOCK_BELOW: 0.25,
      GROUNDEDNESS_FLAG_BELOW: 0.75,
    })
    expect((await setup.send('/ask', ask('Which one passes?', DOCUMENTS))).status).toBe(200)
    await setup.settle()
    expect(points.map(named)).toEqual([
      expect.objectContaining({
        verdict: 'block',
        check: 'groundedness',
        sufficiencyVerdict: 'pass',
        groundednessVerdict: 'block',
        sufficiencyScore: expect.closeTo(0.95, 6),
        groundednessScore: expect.closeTo(0.1, 6),
        blockBelow: 0.25,
        flagBelow: 0.75,
      }),
    ])
  })

  it('runs with Miniflare’s Analytics Engine binding, with or without a decision store', async () => {
    const errors = vi.spyOn(console, 'error')
    const withStore = await storeGuard(upstream, judge, { GUARD_METRICS: env.TEST_METRICS })
    const alone = await secureGuard(upstream, judge, {
      ...STORE_ENV,
      GUARD_METRICS: env.TEST_METRICS,
    })
    for (const setup of [withStore, alone]) {
      const response = await setup.send('/ask', ask('Which one passes?', DOCUMENTS))
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual(upstream.json)
      await setup.settle()
    }
    expect(errors).not.toHaveBeenCalled()
  })
})
