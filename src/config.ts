/**
 * The Worker's settings: `wrangler.toml` `[vars]` and secrets → the options of the judge, the
 * proxy and one `ragGuard` per route. Each setting is defined once, beside the option it sets
 * (guard/options.ts, judge/options.ts, judge/cache.ts, proxy.ts); this file only maps names.
 */
import * as z from 'zod'
import { ConfigurationError } from './errors'
import { createFormat, FORMAT_NAMES, type RouteFormat } from './formats'
import type { CallerCheckOptions } from './guard/auth'
import {
  GUARD_SETTINGS,
  type OnUngrounded,
  type RagGuardOptions,
  type StreamMode,
} from './guard/options'
import type { Check } from './judge/prompt'
import type { Granularity } from './judge/sentences'
import { validateThresholds, type Thresholds } from './guard/policy'
import { CACHE_TTL_SECONDS } from './judge/cache'
import type { JudgeOptions } from './judge/judge'
import { JUDGE_SETTINGS } from './judge/options'
import { parseJson } from './json'
import { PROXY_SETTINGS } from './proxy'
import { REVIEW_SETTINGS, reviewConfig, type ReviewConfig } from './review/settings'
import { normalizedPattern } from './routing'
import {
  boolean,
  choice,
  firstProblem,
  headerMap,
  httpUrl,
  show,
  text,
  wordList,
  type Setting,
} from './settings'

/**
 * The Worker's environment. Validated once per isolate; every error names the setting, the
 * value and what is allowed (never the value of a secret).
 */
export interface GuardEnv {
  UPSTREAM_URL?: unknown
  UPSTREAM?: Fetcher
  OPENAI_API_KEY?: unknown
  OPENAI_BASE_URL?: unknown
  JUDGE_MODEL?: unknown
  JUDGE_TOP_LOGPROBS?: unknown
  JUDGE_TIMEOUT_MS?: unknown
  JUDGE_MAX_RETRIES?: unknown
  JUDGE_HEADERS?: unknown
  JUDGE_ESTIMATOR?: unknown
  JUDGE_SAMPLES?: unknown
  JUDGE_SAMPLING_TEMPERATURE?: unknown
  JUDGE_REASONING_EFFORT?: unknown
  JUDGE_MAX_OUTPUT_TOKENS?: unknown
  BLOCK_BELOW?: unknown
  FLAG_BELOW?: unknown
  GUARD_MODE?: unknown
  ON_ERROR?: unknown
  FALLBACK_MESSAGE?: unknown
  GUARD_ROUTES?: unknown
  STREAM_MODE?: unknown
  STREAM_BUFFER_BYTES?: unknown
  CACHE_TTL_SECONDS?: unknown
  GUARD_CACHE?: KVNamespace
  LOG_DECISIONS?: unknown
  LOG_CONTENT?: unknown
  UPSTREAM_TIMEOUT_MS?: unknown
  MAX_BODY_BYTES?: unknown
  GUARD_AUTH?: unknown
  GUARD_TOKENS?: unknown
  GUARD_OPERATOR_TOKENS?: unknown
  GUARD_TOKEN_HEADER?: unknown
  ACCESS_TEAM_DOMAIN?: unknown
  ACCESS_AUD?: unknown
  ACCESS_OPERATORS?: unknown
  GUARD_RATE_LIMIT?: RateLimit
  PASS_THROUGH?: unknown
  UPSTREAM_HEADERS?: unknown
  CACHE_SECRET?: unknown
  /** The decision store (D1) behind the review page: README, "Review and label". */
  GUARD_DB?: D1Database
  /** An Analytics Engine dataset: one data point per decision (README, "Analytics Engine"). */
  GUARD_METRICS?: AnalyticsEngineDataset
  [setting: string]: unknown
}

export interface RouteConfig {
  /** Hono path patterns, normalised (lower case, no trailing slash); a LangServe base names several. */
  paths: string[]
  method: string
  format: RouteFormat
  checks: Check[]
  thresholds: Thresholds
  groundednessThresholds: Thresholds
  groundednessGranularity: Granularity
  onUngrounded: OnUngrounded
  fallbackMessage: string
  streamMode: StreamMode
}

/** A route the guard forwards unjudged. */
export interface PassThroughRule {
  path: string
  methods: string[]
}

export interface GuardConfig {
  upstream: { url: URL; fetcher?: Fetcher; headers?: Record<string, string>; timeoutMs: number }
  judge: JudgeOptions
  auth: CallerCheckOptions
  rateLimit?: RateLimit
  /** The options every route's `ragGuard` shares, from the environment. */
  guard: Omit<RagGuardOptions, 'judge'>
  routes: RouteConfig[]
  passThrough: PassThroughRule[]
  /** Verdict cache: where, for how long, and its secret; undefined when CACHE_TTL_SECONDS is 0. */
  cache?: { ttlSeconds: number; kv?: KVNamespace; secret?: string }
  logDecisions: boolean
  /** The decision store and the review page. */
  review: ReviewConfig
  /** Where each decision also goes as a data point, when GUARD_METRICS is bound. */
  metrics?: AnalyticsEngineDataset
}

/** `token`, `access`, or exactly `none`, as a list. */
const AUTH_METHODS = ['token', 'access', 'none'] as const
const TOKEN = /^[A-Za-z0-9._~+/-]{16,}=*$/
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Settings only the Worker has, beside those of the options it builds. */
const WORKER_ONLY = {
  logDecisions: boolean({ env: 'LOG_DECISIONS', default: true }),
  auth: wordList(
    (word) => (AUTH_METHODS as readonly string[]).includes(word),
    '"token", "access", both ("token,access"), or "none" to let anyone call the guard',
    { env: 'GUARD_AUTH' },
  ),
  tokens: wordList(
    (word) => TOKEN.test(word),
    'tokens of at least 16 characters (letters, digits, ._~+/-)',
    {
      env: 'GUARD_TOKENS',
      secret: true,
    },
  ),
  operatorTokens: wordList(
    (word) => TOKEN.test(word),
    'tokens of at least 16 characters (letters, digits, ._~+/-)',
    { env: 'GUARD_OPERATOR_TOKENS', secret: true },
  ),
  tokenHeader: text({
    env: 'GUARD_TOKEN_HEADER',
    default: 'authorization',
    nonEmpty: 'a header name',
  }),
  accessTeamDomain: httpUrl({ env: 'ACCESS_TEAM_DOMAIN' }),
  accessAudience: wordList((word) => word.length > 0, 'Access audience tags', {
    env: 'ACCESS_AUD',
  }),
  accessOperators: wordList((word) => word.includes('@'), 'email addresses', {
    env: 'ACCESS_OPERATORS',
  }),
  upstreamHeaders: headerMap({ env: 'UPSTREAM_HEADERS', secret: true }),
  cacheSecret: text({ env: 'CACHE_SECRET', secret: true, nonEmpty: 'a non-empty secret' }),
} satisfies Record<string, Setting<unknown>>

/** Every setting read from the environment, by its Worker name. */
export const WORKER_SETTINGS: Readonly<Record<string, Setting<unknown>>> = Object.fromEntries(
  [
    ...Object.values(PROXY_SETTINGS),
    ...Object.values(JUDGE_SETTINGS),
    ...Object.values(GUARD_SETTINGS),
    CACHE_TTL_SECONDS,
    ...Object.values(WORKER_ONLY),
    ...Object.values(REVIEW_SETTINGS),
  ]
    .filter((setting: Setting<unknown>) => setting.env !== undefined)
    .map((setting: Setting<unknown>) => [setting.env!, setting]),
)

/** Settings that were removed, and what took their place: a config that still sets one is told. */
const REMOVED_SETTINGS: Record<string, string> = {
  ON_OVERSIZE:
    'was removed: a request over MAX_BODY_BYTES is unjudgeable, and ON_UNJUDGEABLE (default "block": 413) decides it',
}

const pointer = z.string({
  error: (issue) => `must be a JSON Pointer string such as "/question", got ${show(issue.input)}`,
})

const ROUTE_KEYS = [
  'path',
  'method',
  'format',
  'question',
  'context',
  'answer',
  'checks',
  'blockBelow',
  'flagBelow',
  'groundednessBlockBelow',
  'groundednessFlagBelow',
  'groundednessGranularity',
  'onUngrounded',
  'fallbackMessage',
  'streamMode',
] as const

const routeSchema = z.strictObject(
  {
    path: z
      .string({
        error: (issue) => `must be a path pattern such as "/ask", got ${show(issue.input)}`,
      })
      .startsWith('/', { error: (issue) => `must start with "/", got ${show(issue.input)}` }),
    method: z
      .string({
        error: (issue) => `must be an HTTP method such as "POST", got ${show(issue.input)}`,
      })
      .regex(/^[A-Za-z]+$/, {
        error: (issue) => `must be an HTTP method such as "POST", got ${show(issue.input)}`,
      })
      .optional(),
    format: choice(FORMAT_NAMES).schema,
    question: pointer.optional(),
    context: z
      .union([pointer, z.strictObject({ in: choice(['request', 'response']).schema, pointer })], {
        error: (issue) =>
          `must be a JSON Pointer, "system" (openai-chat), or { in = "request" | "response", pointer = "/…" }, got ${show(issue.input)}`,
      })
      .optional(),
    answer: pointer.optional(),
    checks: GUARD_SETTINGS.checks.fromEnv.optional(),
    blockBelow: GUARD_SETTINGS.blockBelow.fromEnv.optional(),
    flagBelow: GUARD_SETTINGS.flagBelow.fromEnv.optional(),
    groundednessBlockBelow: GUARD_SETTINGS.groundednessBlockBelow.fromEnv.optional(),
    groundednessFlagBelow: GUARD_SETTINGS.groundednessFlagBelow.fromEnv.optional(),
    groundednessGranularity: GUARD_SETTINGS.groundednessGranularity.fromEnv.optional(),
    onUngrounded: GUARD_SETTINGS.onUngrounded.fromEnv.optional(),
    fallbackMessage: GUARD_SETTINGS.fallbackMessage.fromEnv.optional(),
    streamMode: GUARD_SETTINGS.streamMode.fromEnv.optional(),
  } satisfies Record<(typeof ROUTE_KEYS)[number], z.ZodType>,
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `has unknown keys ${issue.keys.map((key) => `"${key}"`).join(', ')}; allowed: ${ROUTE_KEYS.join(', ')}`
        : `must be a table (object) with at least path and format, got ${show(issue.input)}`,
  },
)

const INVALID_JSON = Symbol('invalid-json')

/** GUARD_ROUTES: an array of rules, as TOML tables or as a JSON string. */
const routesSchema = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value
    const parsed = parseJson(value)
    return parsed.ok ? parsed.value : INVALID_JSON
  },
  z
    .array(routeSchema, {
      error: (issue) =>
        issue.input === INVALID_JSON
          ? 'is a string that is not valid JSON; write it as a JSON array of rules or as [[vars.GUARD_ROUTES]] tables'
          : `must be an array of route rules, got ${show(issue.input)}`,
    })
    .min(1, { error: 'must hold at least one route rule: without one, nothing is guarded' }),
)

const METHOD = /^[A-Za-z]+$/

/** PASS_THROUGH: routes forwarded unjudged, as TOML tables or as a JSON string. */
const passThroughSchema = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value
    const parsed = parseJson(value)
    return parsed.ok ? parsed.value : INVALID_JSON
  },
  z.array(
    z.strictObject(
      {
        path: z
          .string({
            error: (issue) => `must be a path pattern such as "/health", got ${show(issue.input)}`,
          })
          .startsWith('/', { error: (issue) => `must start with "/", got ${show(issue.input)}` }),
        methods: z
          .array(
            z.string().regex(METHOD, {
              error: (issue) => `must be HTTP methods such as "GET", got ${show(issue.input)}`,
            }),
            {
              error: (issue) =>
                `must be a list of HTTP methods such as ["GET"], got ${show(issue.input)}`,
            },
          )
          .min(1, { error: 'must name at least one method' })
          .optional(),
      },
      {
        error: (issue) =>
          issue.code === 'unrecognized_keys'
            ? `has unknown keys ${issue.keys.map((key) => `"${key}"`).join(', ')}; allowed: path, methods`
            : `must be a table with a path (and methods), got ${show(issue.input)}`,
      },
    ),
    {
      error: (issue) =>
        issue.input === INVALID_JSON
          ? 'is a string that is not valid JSON; write it as a JSON array or as [[vars.PASS_THROUGH]] tables'
          : `must be an array of { path, methods } rules, got ${show(issue.input)}`,
    },
  ),
)

const envSchema = z.object({
  ...Object.fromEntries(
    Object.entries(WORKER_SETTINGS).map(([name, setting]) => [name, setting.fromEnv.optional()]),
  ),
  GUARD_ROUTES: routesSchema,
  PASS_THROUGH: passThroughSchema.optional(),
})

const LANGSERVE_ENDPOINTS = ['invoke', 'batch', 'stream', 'stream_log', 'stream_events'] as const

/**
 * The paths a route rule guards: its own; for a LangServe base path (`/rag`), every endpoint
 * LangServe serves under it, with and without a config hash (`/rag/c/<hash>/invoke`).
 */
function routePaths(path: string, format: string): string[] {
  const base = normalizedPattern(path)
  const endpoint = base.split('/').pop() ?? ''
  if (format !== 'langserve' || (LANGSERVE_ENDPOINTS as readonly string[]).includes(endpoint)) {
    return [base]
  }
  // The path itself too: a retrieval chain served directly there.
  const root = base === '/' ? '' : base
  return [
    base,
    ...LANGSERVE_ENDPOINTS.flatMap((name) => [`${root}/${name}`, `${root}/c/:config/${name}`]),
  ]
}

/** `GUARD_ROUTES[1].format` from a zod issue path. */
function settingName(path: PropertyKey[]): string {
  return path.reduce<string>(
    (name, key) =>
      typeof key === 'number' ? `${name}[${key}]` : name ? `${name}.${String(key)}` : String(key),
    '',
  )
}

/** Empty strings count as unset: `wrangler dev --var NAME:` and blank vars mean "use the default". */
function withoutBlanks(env: GuardEnv): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([, value]) => value !== '' && value !== undefined && value !== null,
    ),
  )
}

const OWNER = 'RAG Guard configuration'

/**
 * Reads and checks the Worker's settings. Throws a {@link ConfigurationError} naming the first
 * wrong setting.
 */
export function parseConfig(env: GuardEnv): GuardConfig {
  for (const [name, instead] of Object.entries(REMOVED_SETTINGS)) {
    if (env[name] !== undefined && env[name] !== '') {
      throw new ConfigurationError(`${OWNER}: ${name} ${instead}`, name)
    }
  }
  const result = envSchema.safeParse(withoutBlanks(env), { reportInput: true })
  if (!result.success) {
    const path = result.error.issues[0]!.path
    // A list setting is named as a whole (GUARD_TOKENS, not GUARD_TOKENS[1]); rules by position.
    const name = WORKER_SETTINGS[String(path[0])] ? String(path[0]) : settingName(path)
    const secret = WORKER_SETTINGS[name]?.secret === true
    throw new ConfigurationError(
      `${OWNER}: ${name || 'settings'} ${firstProblem(result.error, secret)}`,
      name,
    )
  }
  const settings = result.data as Record<string, unknown> & z.infer<typeof envSchema>
  /** The value of a setting, or its default (the Worker's own, where it has one). */
  const value = <T>(setting: Setting<T>): T =>
    (settings[setting.env!] as T | undefined) ?? (setting.workerDefault ?? setting.default)!
  const optional = <T>(setting: Setting<T>) => settings[setting.env!] as T | undefined
  const required = (condition: unknown, name: string, message: string) => {
    if (!condition) throw new ConfigurationError(`${OWNER}: ${name} ${message}`, name)
  }

  required(
    optional(PROXY_SETTINGS.url) || env.UPSTREAM,
    'UPSTREAM_URL',
    'is required (the origin of the RAG endpoint to guard, e.g. "https://rag.example.com"), or a service binding named UPSTREAM',
  )
  required(
    optional(JUDGE_SETTINGS.apiKey) || optional(JUDGE_SETTINGS.baseURL),
    'OPENAI_API_KEY',
    'is required for the OpenAI API (`wrangler secret put OPENAI_API_KEY`); for a server that needs no key, set OPENAI_BASE_URL',
  )

  // Who may call: never left to a default.
  const methods = optional(WORKER_ONLY.auth) as ('token' | 'access' | 'none')[] | undefined
  required(
    methods,
    'GUARD_AUTH',
    'is required: "token" (callers send a token from GUARD_TOKENS), "access" (Cloudflare Access: ACCESS_TEAM_DOMAIN, ACCESS_AUD), both ("token,access"), or "none" written out to let anyone on the internet call the guard and spend its judge',
  )
  required(
    !methods!.includes('none') || methods!.length === 1,
    'GUARD_AUTH',
    'must be "none" alone, or a list of "token" and "access"',
  )
  const tokens = optional(WORKER_ONLY.tokens) ?? []
  const operatorTokens = optional(WORKER_ONLY.operatorTokens) ?? []
  required(
    !methods!.includes('token') || tokens.length + operatorTokens.length > 0,
    'GUARD_TOKENS',
    'is required with GUARD_AUTH "token" (`wrangler secret put GUARD_TOKENS`: one or more tokens, separated by commas)',
  )
  const tokenHeader = value(WORKER_ONLY.tokenHeader).toLowerCase()
  required(
    HEADER_NAME.test(tokenHeader),
    'GUARD_TOKEN_HEADER',
    `must be a header name, got ${show(tokenHeader)}`,
  )
  const teamDomain = optional(WORKER_ONLY.accessTeamDomain)
  const audience = optional(WORKER_ONLY.accessAudience)
  required(
    !methods!.includes('access') || (teamDomain && audience),
    teamDomain ? 'ACCESS_AUD' : 'ACCESS_TEAM_DOMAIN',
    'is required with GUARD_AUTH "access" (the team domain, e.g. "https://team.cloudflareaccess.com", and the application\'s audience tag)',
  )

  const thresholds = validateThresholds(
    { blockBelow: value(GUARD_SETTINGS.blockBelow), flagBelow: value(GUARD_SETTINGS.flagBelow) },
    { blockBelow: 'BLOCK_BELOW', flagBelow: 'FLAG_BELOW' },
    OWNER,
  )
  const groundedness = validateThresholds(
    {
      blockBelow: value(GUARD_SETTINGS.groundednessBlockBelow),
      flagBelow: value(GUARD_SETTINGS.groundednessFlagBelow),
    },
    { blockBelow: 'GROUNDEDNESS_BLOCK_BELOW', flagBelow: 'GROUNDEDNESS_FLAG_BELOW' },
    OWNER,
  )
  const routes = settings.GUARD_ROUTES.map((rule, index): RouteConfig => {
    const prefix = `GUARD_ROUTES[${index}].`
    return {
      paths: routePaths(rule.path, rule.format),
      method: (rule.method ?? 'POST').toUpperCase(),
      format: createFormat(
        rule.format,
        { question: rule.question, context: rule.context, answer: rule.answer },
        prefix,
      ),
      checks: (rule.checks ?? value(GUARD_SETTINGS.checks)) as Check[],
      thresholds: validateThresholds(
        {
          blockBelow: rule.blockBelow ?? thresholds.blockBelow,
          flagBelow: rule.flagBelow ?? thresholds.flagBelow,
        },
        { blockBelow: `${prefix}blockBelow`, flagBelow: `${prefix}flagBelow` },
        OWNER,
      ),
      groundednessThresholds: validateThresholds(
        {
          blockBelow: rule.groundednessBlockBelow ?? groundedness.blockBelow,
          flagBelow: rule.groundednessFlagBelow ?? groundedness.flagBelow,
        },
        {
          blockBelow: `${prefix}groundednessBlockBelow`,
          flagBelow: `${prefix}groundednessFlagBelow`,
        },
        OWNER,
      ),
      groundednessGranularity:
        rule.groundednessGranularity ?? value(GUARD_SETTINGS.groundednessGranularity),
      onUngrounded: rule.onUngrounded ?? value(GUARD_SETTINGS.onUngrounded),
      fallbackMessage: rule.fallbackMessage ?? value(GUARD_SETTINGS.fallbackMessage),
      streamMode: rule.streamMode ?? value(GUARD_SETTINGS.streamMode),
    }
  })

  // Every guard option the environment can set, with the Worker's defaults.
  const guard = Object.fromEntries(
    Object.entries(GUARD_SETTINGS)
      .filter(([, setting]) => (setting as Setting<unknown>).env !== undefined)
      .map(([name, setting]) => [name, value(setting as Setting<unknown>)]),
  ) as Omit<RagGuardOptions, 'judge'>

  const ttlSeconds = value(CACHE_TTL_SECONDS)
  const apiKey = optional(JUDGE_SETTINGS.apiKey)
  // The Cache API is shared by every Worker of the zone: its entries are signed with a secret of
  // this deployment (CACHE_SECRET, else the first of the judge key, its headers, the guard tokens).
  const judgeHeaders = optional(JUDGE_SETTINGS.headers)
  const cacheSecret =
    optional(WORKER_ONLY.cacheSecret) ??
    apiKey ??
    (judgeHeaders ? JSON.stringify(judgeHeaders) : undefined) ??
    (tokens.length + operatorTokens.length > 0
      ? [...tokens, ...operatorTokens].join(',')
      : undefined)
  required(
    ttlSeconds === 0 || env.GUARD_CACHE || cacheSecret,
    'CACHE_SECRET',
    'is required for the verdict cache in the Cache API when the guard has no other secret (no judge API key, no tokens): `wrangler secret put CACHE_SECRET`, or bind a KV namespace as GUARD_CACHE, or set CACHE_TTL_SECONDS = 0',
  )
  const review = reviewConfig({
    path: value(REVIEW_SETTINGS.path),
    passRate: value(REVIEW_SETTINGS.passRate),
    content: value(REVIEW_SETTINGS.content),
    contentHourlyBytes: value(REVIEW_SETTINGS.contentHourlyBytes),
    retentionDays: value(REVIEW_SETTINGS.retentionDays),
    rollupFlushSeconds: value(REVIEW_SETTINGS.rollupFlushSeconds),
    secret: optional(REVIEW_SETTINGS.secret),
    db: env.GUARD_DB,
    fallbackSecret: cacheSecret,
    routePaths: [
      ...routes.flatMap((route) => route.paths),
      ...(settings.PASS_THROUGH ?? []).map((rule) => normalizedPattern(rule.path)),
    ],
  })
  return {
    // A service binding ignores the host; the URL still gives the path prefix, if any.
    upstream: {
      url: new URL(optional(PROXY_SETTINGS.url) ?? 'https://upstream.invalid'),
      fetcher: env.UPSTREAM,
      headers: optional(WORKER_ONLY.upstreamHeaders),
      timeoutMs: value(PROXY_SETTINGS.timeoutMs),
    },
    judge: {
      model: value(JUDGE_SETTINGS.model),
      apiKey,
      baseURL: optional(JUDGE_SETTINGS.baseURL),
      topLogprobs: value(JUDGE_SETTINGS.topLogprobs),
      timeoutMs: value(JUDGE_SETTINGS.timeoutMs),
      maxRetries: value(JUDGE_SETTINGS.maxRetries),
      minMass: value(JUDGE_SETTINGS.minMass),
      headers: optional(JUDGE_SETTINGS.headers),
      estimator: value(JUDGE_SETTINGS.estimator),
      samples: value(JUDGE_SETTINGS.samples),
      samplingTemperature: value(JUDGE_SETTINGS.samplingTemperature),
      reasoningEffort: optional(JUDGE_SETTINGS.reasoningEffort),
      maxOutputTokens: optional(JUDGE_SETTINGS.maxOutputTokens),
      maxSentences: value(JUDGE_SETTINGS.maxSentences),
    },
    auth: {
      methods: methods!,
      tokens,
      operatorTokens,
      tokenHeader,
      access:
        teamDomain && audience
          ? {
              teamDomain,
              audience,
              operators: (optional(WORKER_ONLY.accessOperators) ?? []).map((email) =>
                email.toLowerCase(),
              ),
            }
          : undefined,
    },
    rateLimit: env.GUARD_RATE_LIMIT,
    guard,
    routes,
    passThrough: (settings.PASS_THROUGH ?? []).map((rule) => ({
      path: normalizedPattern(rule.path),
      methods: (rule.methods ?? ['GET', 'HEAD']).map((method) => method.toUpperCase()),
    })),
    cache: ttlSeconds > 0 ? { ttlSeconds, kv: env.GUARD_CACHE, secret: cacheSecret } : undefined,
    logDecisions: value(WORKER_ONLY.logDecisions),
    review,
    ...(env.GUARD_METRICS ? { metrics: env.GUARD_METRICS } : {}),
  }
}
