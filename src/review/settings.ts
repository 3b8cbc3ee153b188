/**
 * The settings of the decision store and the review page, defined once (kinds of settings.ts,
 * with their Worker names), and the check of how they fit the rest of the configuration.
 */
import { ConfigurationError } from '../errors'
import { normalizedPattern } from '../routing'
import { boolean, custom, fraction, integer, text, type Setting } from '../settings'

/** One or more path segments of plain characters: no parameters, wildcards or escapes. */
const REVIEW_PATH = /^(\/[A-Za-z0-9._~-]+)+$/

export const REVIEW_SETTINGS = {
  passRate: fraction({ env: 'STORE_PASS_RATE', default: 0.05 }),
  content: boolean({ env: 'STORE_CONTENT', default: false }),
  contentHourlyBytes: integer(0, 2 ** 40, {
    unit: 'bytes',
    env: 'STORE_CONTENT_HOURLY_BYTES',
    default: 4_194_304,
  }),
  retentionDays: integer(1, 3650, { unit: 'days', env: 'STORE_RETENTION_DAYS', default: 30 }),
  // At most 25: the flush runs in the `waitUntil` of a request, which lasts 30 s after it.
  rollupFlushSeconds: integer(0, 25, {
    unit: 'seconds',
    env: 'ROLLUP_FLUSH_SECONDS',
    default: 10,
  }),
  path: custom<string>(
    (value) => typeof value === 'string' && REVIEW_PATH.test(value),
    'a path of plain segments such as "/_guard" (no parameters, wildcards or trailing slash)',
    { env: 'REVIEW_PATH', default: '/_guard' },
  ),
  secret: text({ env: 'REVIEW_SECRET', secret: true, nonEmpty: 'a non-empty secret' }),
} satisfies Record<string, Setting<unknown>>

/** Where decisions are stored, and what of them. */
export interface StoreConfig {
  db: D1Database
  /** The share of passes stored, 0 to 1 (flags and blocks are always stored). */
  passRate: number
  /** Whether the question, the documents and the answer are stored (else hashes and sizes only). */
  content: boolean
  /** The most bytes of text (UTF-8) stored per caller per hour; past it, decisions go without. */
  contentHourlyBytes: number
  /** Decisions older than this are purged by the scheduled handler (rollups too). */
  retentionDays: number
  /** How long an isolate adds up its decisions before it writes the hourly rollups. */
  rollupFlushSeconds: number
}

export interface ReviewConfig {
  /** The review page and the labels export live under this path (normalised, lower case). */
  path: string
  /** The decision store, when GUARD_DB is bound. */
  store?: StoreConfig
  /** Signs review sessions and form tokens: REVIEW_SECRET, else the secret of the verdict cache. */
  secret?: string
}

interface ReviewInput {
  path: string
  passRate: number
  content: boolean
  contentHourlyBytes: number
  retentionDays: number
  rollupFlushSeconds: number
  secret: string | undefined
  db: D1Database | undefined
  /** A secret the deployment already has (CACHE_SECRET, the judge key, the guard tokens). */
  fallbackSecret: string | undefined
  /** The path patterns of every guarded route and PASS_THROUGH rule, normalised. */
  routePaths: string[]
}

const OWNER = 'RAG Guard configuration'

/**
 * The review settings, checked against the rest: the review path must not be one a route
 * guards or forwards (it is served by the guard itself and never forwarded), and a store needs a
 * secret for its forms.
 */
export function reviewConfig(input: ReviewInput): ReviewConfig {
  const path = normalizedPattern(input.path)
  const clash = input.routePaths.find(
    (pattern) => pattern === path || pattern.startsWith(`${path}/`),
  )
  if (clash) {
    throw new ConfigurationError(
      `${OWNER}: REVIEW_PATH ${JSON.stringify(input.path)} overlaps the route ${JSON.stringify(clash)}: the review page is served by the guard itself and never forwarded; choose another REVIEW_PATH`,
      'REVIEW_PATH',
    )
  }
  const secret = input.secret ?? input.fallbackSecret
  if (input.db && !secret) {
    throw new ConfigurationError(
      `${OWNER}: REVIEW_SECRET is required with GUARD_DB when the guard has no other secret (no CACHE_SECRET, judge API key or tokens): it signs the review page's sessions and forms (\`wrangler secret put REVIEW_SECRET\`)`,
      'REVIEW_SECRET',
    )
  }
  return {
    path,
    ...(input.db
      ? {
          store: {
            db: input.db,
            passRate: input.passRate,
            content: input.content,
            contentHourlyBytes: input.contentHourlyBytes,
            retentionDays: input.retentionDays,
            rollupFlushSeconds: input.rollupFlushSeconds,
          },
        }
      : {}),
    ...(secret ? { secret } : {}),
  }
}
