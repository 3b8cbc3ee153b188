/**
 * The Worker's settings: `wrangler.toml` `[vars]` and secrets → the options of the judge, the
 * proxy and one `ragGuard` per route. Each setting is defined once, beside the option it sets
 * (guard/options.ts, judge/options.ts, judge/cache.ts, proxy.ts); this file only maps names.
 */
import * as z from 'zod'
import { ConfigurationError } from './errors'
import { createFormat, FORMAT_NAMES, type RouteFormat } from './formats'
import { GUARD_SETTINGS, type OversizePolicy, type StreamMode } from './guard/options'
import type { GuardMode } from './guard/decision'
import { validateThresholds, type Thresholds, type Verdict } from './guard/policy'
import { CACHE_TTL_SECONDS } from './judge/cache'
import { JUDGE_SETTINGS } from './judge/options'
import { parseJson } from './json'
import { PROXY_SETTINGS } from './proxy'
import { boolean, choice, firstProblem, show, type Setting } from './settings'

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
  ON_OVERSIZE?: unknown
}

export interface RouteConfig {
  /** Hono path pattern: `/ask`, `/v1/chat/completions`, `/rag/*`, `/api/:tenant/ask`. */
  path: string
  method: string
  format: RouteFormat
  thresholds: Thresholds
  fallbackMessage: string
  streamMode: StreamMode
}

export interface GuardConfig {
  upstream: { url: URL; fetcher?: Fetcher }
  judge: {
    model: string
    apiKey?: string
    baseURL?: string
    topLogprobs: number
    timeoutMs: number
    maxRetries: number
    headers?: Record<string, string>
  }
  mode: GuardMode
  onError: Verdict
  routes: RouteConfig[]
  streamBufferBytes: number
  /** Verdict cache: where, and for how long; undefined when CACHE_TTL_SECONDS is 0. */
  cache?: { ttlSeconds: number; kv?: KVNamespace }
  logDecisions: boolean
  logContent: boolean
  upstreamTimeoutMs: number
  maxBodyBytes: number
  onOversize: OversizePolicy
}

/** Settings only the Worker has. */
const LOG_DECISIONS = boolean({ env: 'LOG_DECISIONS', default: true })

/** Every setting read from the environment, by its Worker name. */
export const WORKER_SETTINGS: Readonly<Record<string, Setting<unknown>>> = Object.fromEntries(
  [
    ...Object.values(PROXY_SETTINGS),
    ...Object.values(JUDGE_SETTINGS),
    ...Object.values(GUARD_SETTINGS),
    CACHE_TTL_SECONDS,
    LOG_DECISIONS,
  ]
    .filter((setting: Setting<unknown>) => setting.env !== undefined)
    .map((setting: Setting<unknown>) => [setting.env!, setting]),
)

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
  'blockBelow',
  'flagBelow',
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
    blockBelow: GUARD_SETTINGS.blockBelow.fromEnv.optional(),
    flagBelow: GUARD_SETTINGS.flagBelow.fromEnv.optional(),
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

const envSchema = z.object({
  ...Object.fromEntries(
    Object.entries(WORKER_SETTINGS).map(([name, setting]) => [name, setting.fromEnv.optional()]),
  ),
  GUARD_ROUTES: routesSchema,
})

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
  const result = envSchema.safeParse(withoutBlanks(env), { reportInput: true })
  if (!result.success) {
    const name = settingName(result.error.issues[0]!.path)
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

  if (!settings.UPSTREAM_URL && !env.UPSTREAM) {
    throw new ConfigurationError(
      `${OWNER}: UPSTREAM_URL is required (the origin of the RAG endpoint to guard, e.g. "https://rag.example.com"), or a service binding named UPSTREAM`,
      'UPSTREAM_URL',
    )
  }
  if (!settings.OPENAI_API_KEY && !settings.OPENAI_BASE_URL) {
    throw new ConfigurationError(
      `${OWNER}: OPENAI_API_KEY is required for the OpenAI API (\`wrangler secret put OPENAI_API_KEY\`); for a server that needs no key, set OPENAI_BASE_URL`,
      'OPENAI_API_KEY',
    )
  }

  const thresholds = validateThresholds(
    { blockBelow: value(GUARD_SETTINGS.blockBelow), flagBelow: value(GUARD_SETTINGS.flagBelow) },
    { blockBelow: 'BLOCK_BELOW', flagBelow: 'FLAG_BELOW' },
    OWNER,
  )
  const routes = settings.GUARD_ROUTES.map((rule, index): RouteConfig => {
    const prefix = `GUARD_ROUTES[${index}].`
    return {
      path: rule.path,
      method: (rule.method ?? 'POST').toUpperCase(),
      format: createFormat(
        rule.format,
        { question: rule.question, context: rule.context, answer: rule.answer },
        prefix,
      ),
      thresholds: validateThresholds(
        {
          blockBelow: rule.blockBelow ?? thresholds.blockBelow,
          flagBelow: rule.flagBelow ?? thresholds.flagBelow,
        },
        { blockBelow: `${prefix}blockBelow`, flagBelow: `${prefix}flagBelow` },
        OWNER,
      ),
      fallbackMessage: rule.fallbackMessage ?? value(GUARD_SETTINGS.fallbackMessage),
      streamMode: rule.streamMode ?? value(GUARD_SETTINGS.streamMode),
    }
  })

  const optional = <T>(setting: Setting<T>) => settings[setting.env!] as T | undefined
  const ttlSeconds = value(CACHE_TTL_SECONDS)
  return {
    // A service binding ignores the host; the URL still gives the path prefix, if any.
    upstream: {
      url: new URL(optional(PROXY_SETTINGS.url) ?? 'https://upstream.invalid'),
      fetcher: env.UPSTREAM,
    },
    judge: {
      model: value(JUDGE_SETTINGS.model),
      apiKey: optional(JUDGE_SETTINGS.apiKey),
      baseURL: optional(JUDGE_SETTINGS.baseURL),
      topLogprobs: value(JUDGE_SETTINGS.topLogprobs),
      timeoutMs: value(JUDGE_SETTINGS.timeoutMs),
      maxRetries: value(JUDGE_SETTINGS.maxRetries),
      headers: optional(JUDGE_SETTINGS.headers),
    },
    mode: value(GUARD_SETTINGS.mode),
    onError: value(GUARD_SETTINGS.onError),
    routes,
    streamBufferBytes: value(GUARD_SETTINGS.streamBufferBytes),
    cache: ttlSeconds > 0 ? { ttlSeconds, kv: env.GUARD_CACHE } : undefined,
    logDecisions: value(LOG_DECISIONS),
    logContent: value(GUARD_SETTINGS.logContent),
    upstreamTimeoutMs: value(PROXY_SETTINGS.timeoutMs),
    maxBodyBytes: value(GUARD_SETTINGS.maxBodyBytes),
    onOversize: value(GUARD_SETTINGS.onOversize),
  }
}
