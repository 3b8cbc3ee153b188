import { z } from 'zod'
import { ConfigurationError } from './errors'
import { createFormat, FORMAT_NAMES, type RouteFormat } from './formats'
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_STREAM_BUFFER_BYTES,
  type GuardMode,
  type StreamMode,
} from './guard/middleware'
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from './proxy'
import { validateThresholds, VERDICTS, type Thresholds, type Verdict } from './guard/policy'
import { DEFAULT_JUDGE_OPTIONS } from './judge/judge'

/**
 * The Worker's settings, from `wrangler.toml` `[vars]` and secrets. Validated once per isolate;
 * every error names the setting, the value and what is allowed (never the value of a secret).
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
  fallbackMessage?: string
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
  onOversize: 'reject' | 'pass'
}

export const DEFAULT_GUARD_MODE: GuardMode = 'shadow'
export const DEFAULT_ON_ERROR: Verdict = 'flag'
export const DEFAULT_CACHE_TTL_SECONDS = 3600

const show = (value: unknown) => JSON.stringify(value) ?? String(value)

/** A number, from TOML (`0.2`) or from a string var (`"0.2"`, as `--var` passes it). */
function numberLike(what: string, min: number, max: number, integer = false) {
  const error = (issue: { input?: unknown }) =>
    `must be ${what} from ${min} to ${max}, got ${show(issue.input)}`
  const number = integer ? z.number({ error }).int({ error }) : z.number({ error })
  return z.preprocess(
    (value) =>
      typeof value === 'string' && /^\s*-?(?:\d+\.?\d*|\.\d+)(?:e-?\d+)?\s*$/i.test(value)
        ? Number(value)
        : value,
    number.min(min, { error }).max(max, { error }),
  )
}

const oneOf = <T extends string>(values: readonly T[]) =>
  z.enum(values as [T, ...T[]], {
    error: (issue) =>
      `must be one of ${values.map((value) => `"${value}"`).join(', ')}, got ${show(issue.input)}`,
  })

const httpUrl = z
  .string({ error: (issue) => `must be an http(s) URL, got ${show(issue.input)}` })
  .refine(
    (value) => {
      try {
        return ['http:', 'https:'].includes(new URL(value).protocol)
      } catch {
        return false
      }
    },
    { error: (issue) => `must be an http(s) URL, got ${show(issue.input)}` },
  )

/** A boolean, from TOML (`true`) or a string var (`"true"`, `"false"`). */
const booleanLike = z.preprocess(
  (value) => (value === 'true' ? true : value === 'false' ? false : value),
  z.boolean({ error: (issue) => `must be true or false, got ${show(issue.input)}` }),
)

const pointer = z.string({
  error: (issue) => `must be a JSON Pointer string such as "/question", got ${show(issue.input)}`,
})

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
    format: oneOf(FORMAT_NAMES),
    question: pointer.optional(),
    context: z
      .union([pointer, z.strictObject({ in: oneOf(['request', 'response'] as const), pointer })], {
        error: (issue) =>
          `must be a JSON Pointer, "system" (openai-chat), or { in = "request" | "response", pointer = "/…" }, got ${show(issue.input)}`,
      })
      .optional(),
    answer: pointer.optional(),
    blockBelow: numberLike('a number', 0, 1).optional(),
    flagBelow: numberLike('a number', 0, 1).optional(),
    fallbackMessage: z
      .string({ error: (issue) => `must be a string, got ${show(issue.input)}` })
      .optional(),
    streamMode: oneOf(['hold', 'annotate'] as const).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `has unknown keys ${issue.keys.map((key) => `"${key}"`).join(', ')}; allowed: path, method, format, question, context, answer, blockBelow, flagBelow, fallbackMessage, streamMode`
        : `must be a table (object) with at least path and format, got ${show(issue.input)}`,
  },
)

/** GUARD_ROUTES: an array of rules, as TOML tables or as a JSON string. */
const routesSchema = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value
    try {
      return JSON.parse(value)
    } catch {
      return Symbol.for('invalid-json')
    }
  },
  z
    .array(routeSchema, {
      error: (issue) =>
        issue.input === Symbol.for('invalid-json')
          ? 'is a string that is not valid JSON; write it as a JSON array of rules or as [[vars.GUARD_ROUTES]] tables'
          : `must be an array of route rules, got ${show(issue.input)}`,
    })
    .min(1, { error: 'must hold at least one route rule: without one, nothing is guarded' }),
)

const envSchema = z.object({
  UPSTREAM_URL: httpUrl.optional(),
  OPENAI_API_KEY: z
    .string({ error: 'must be a string (set it with `wrangler secret put OPENAI_API_KEY`)' })
    .optional(),
  OPENAI_BASE_URL: httpUrl.optional(),
  JUDGE_MODEL: z.string().trim().min(1, { error: 'must be a model name' }).optional(),
  JUDGE_TOP_LOGPROBS: numberLike('an integer', 1, 20, true).optional(),
  JUDGE_TIMEOUT_MS: numberLike('an integer (milliseconds)', 1, 600_000, true).optional(),
  JUDGE_MAX_RETRIES: numberLike('an integer', 0, 10, true).optional(),
  JUDGE_HEADERS: z
    .preprocess(
      (value) => {
        if (typeof value !== 'string') return value
        try {
          return JSON.parse(value)
        } catch {
          return undefined
        }
      },
      z.record(z.string(), z.string()),
    )
    .optional(),
  BLOCK_BELOW: numberLike('a number', 0, 1).optional(),
  FLAG_BELOW: numberLike('a number', 0, 1).optional(),
  GUARD_MODE: oneOf(['enforce', 'shadow'] as const).optional(),
  ON_ERROR: oneOf(VERDICTS).optional(),
  FALLBACK_MESSAGE: z.string().optional(),
  GUARD_ROUTES: routesSchema,
  STREAM_MODE: oneOf(['hold', 'annotate'] as const).optional(),
  STREAM_BUFFER_BYTES: numberLike('an integer (bytes)', 1024, 33_554_432, true).optional(),
  CACHE_TTL_SECONDS: numberLike(
    'an integer (seconds; 0 turns the cache off)',
    0,
    31_536_000,
    true,
  ).optional(),
  LOG_DECISIONS: booleanLike.optional(),
  LOG_CONTENT: booleanLike.optional(),
  UPSTREAM_TIMEOUT_MS: numberLike('an integer (milliseconds)', 1, 600_000, true).optional(),
  MAX_BODY_BYTES: numberLike('an integer (bytes)', 1024, 134_217_728, true).optional(),
  ON_OVERSIZE: oneOf(['reject', 'pass'] as const).optional(),
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

/**
 * Reads and checks the Worker's settings. Throws a {@link ConfigurationError} naming the first
 * wrong setting.
 */
export function parseConfig(env: GuardEnv): GuardConfig {
  const result = envSchema.safeParse(withoutBlanks(env), { reportInput: true })
  if (!result.success) {
    const issue = result.error.issues[0]!
    const name = settingName(issue.path)
    // Never echo a secret's value.
    const message =
      name === 'OPENAI_API_KEY' || name === 'JUDGE_HEADERS'
        ? issue.message.replace(/, got .*$/, '')
        : issue.message
    throw new ConfigurationError(
      `RAG Guard configuration: ${name || 'settings'} ${name === 'JUDGE_HEADERS' ? 'must be a JSON object of header names to string values' : message}`,
      name,
    )
  }
  const settings = result.data

  if (!settings.UPSTREAM_URL && !env.UPSTREAM) {
    throw new ConfigurationError(
      'RAG Guard configuration: UPSTREAM_URL is required (the origin of the RAG endpoint to guard, e.g. "https://rag.example.com"), or a service binding named UPSTREAM',
      'UPSTREAM_URL',
    )
  }
  if (!settings.OPENAI_API_KEY && !settings.OPENAI_BASE_URL) {
    throw new ConfigurationError(
      'RAG Guard configuration: OPENAI_API_KEY is required for the OpenAI API (`wrangler secret put OPENAI_API_KEY`); for a server that needs no key, set OPENAI_BASE_URL',
      'OPENAI_API_KEY',
    )
  }

  const names = { blockBelow: 'BLOCK_BELOW', flagBelow: 'FLAG_BELOW' }
  const thresholds = validateThresholds(
    { blockBelow: settings.BLOCK_BELOW ?? 0.1, flagBelow: settings.FLAG_BELOW ?? 0.5 },
    names,
  )
  const fallbackMessage = settings.FALLBACK_MESSAGE
  const routes = settings.GUARD_ROUTES.map((rule, index): RouteConfig => {
    const prefix = `GUARD_ROUTES[${index}].`
    const routeThresholds = validateThresholds(
      {
        blockBelow: rule.blockBelow ?? thresholds.blockBelow,
        flagBelow: rule.flagBelow ?? thresholds.flagBelow,
      },
      { blockBelow: `${prefix}blockBelow`, flagBelow: `${prefix}flagBelow` },
    )
    return {
      path: rule.path,
      method: (rule.method ?? 'POST').toUpperCase(),
      format: createFormat(
        rule.format,
        { question: rule.question, context: rule.context, answer: rule.answer },
        prefix,
      ),
      thresholds: routeThresholds,
      fallbackMessage: rule.fallbackMessage ?? fallbackMessage,
      streamMode: rule.streamMode ?? settings.STREAM_MODE ?? 'hold',
    }
  })

  return {
    // A service binding ignores the host; the URL still gives the path prefix, if any.
    upstream: {
      url: new URL(settings.UPSTREAM_URL ?? 'https://upstream.invalid'),
      fetcher: env.UPSTREAM,
    },
    judge: {
      model: settings.JUDGE_MODEL ?? DEFAULT_JUDGE_OPTIONS.model,
      apiKey: settings.OPENAI_API_KEY,
      baseURL: settings.OPENAI_BASE_URL,
      topLogprobs: settings.JUDGE_TOP_LOGPROBS ?? DEFAULT_JUDGE_OPTIONS.topLogprobs,
      timeoutMs: settings.JUDGE_TIMEOUT_MS ?? DEFAULT_JUDGE_OPTIONS.timeoutMs,
      maxRetries: settings.JUDGE_MAX_RETRIES ?? DEFAULT_JUDGE_OPTIONS.maxRetries,
      headers: settings.JUDGE_HEADERS,
    },
    mode: settings.GUARD_MODE ?? DEFAULT_GUARD_MODE,
    onError: settings.ON_ERROR ?? DEFAULT_ON_ERROR,
    routes,
    streamBufferBytes: settings.STREAM_BUFFER_BYTES ?? DEFAULT_STREAM_BUFFER_BYTES,
    cache:
      (settings.CACHE_TTL_SECONDS ?? DEFAULT_CACHE_TTL_SECONDS) > 0
        ? {
            ttlSeconds: settings.CACHE_TTL_SECONDS ?? DEFAULT_CACHE_TTL_SECONDS,
            kv: env.GUARD_CACHE,
          }
        : undefined,
    logDecisions: settings.LOG_DECISIONS ?? true,
    logContent: settings.LOG_CONTENT ?? false,
    upstreamTimeoutMs: settings.UPSTREAM_TIMEOUT_MS ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
    maxBodyBytes: settings.MAX_BODY_BYTES ?? DEFAULT_MAX_BODY_BYTES,
    onOversize: settings.ON_OVERSIZE ?? 'reject',
  }
}
