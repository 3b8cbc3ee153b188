/**
 * One definition per setting: its type, range, default and the words an error uses. The
 * middleware options, the judge options and the Worker's `[vars]` are all checked against the
 * same definitions, so a range or a message can only differ in one place.
 *
 * A definition checks a value as code passes it (`streamBufferBytes: 4096`); `fromEnv` checks the
 * same value as `wrangler.toml` or `wrangler dev --var` passes it (`"4096"`, `"true"`).
 */
import * as z from 'zod'
import { ConfigurationError } from './errors'

export interface Setting<T> {
  /** Checks a value given in code. Its messages start after the setting's name: "must be …". */
  readonly schema: z.ZodType<T>
  /** Checks a value from the Worker's environment: numbers and booleans may come as strings. */
  readonly fromEnv: z.ZodType<T>
  /** The Worker's name for it (`[vars]` or a secret); none for options that exist only in code. */
  readonly env?: string
  /** The value used when it is not given. */
  readonly default?: T
  /** Where the Worker's default differs from the code default (the Worker starts in shadow mode). */
  readonly workerDefault?: T
  /** Never shown in a message: a key, a token. */
  readonly secret?: boolean
}

interface Naming<T> {
  env?: string
  default?: T
  workerDefault?: T
  secret?: boolean
}

/** A value as JSON, for messages. */
export const show = (value: unknown): string => JSON.stringify(value) ?? String(value)

const NUMBER = /^\s*-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\s*$/i
const numeric = (value: unknown) =>
  typeof value === 'string' && NUMBER.test(value) ? Number(value) : value
const booleanish = (value: unknown) => (value === 'true' ? true : value === 'false' ? false : value)
const jsonish = (value: unknown) => {
  if (typeof value !== 'string') return value
  try {
    return JSON.parse(value) as unknown
  } catch {
    return value
  }
}

function setting<T>(
  schema: z.ZodType<T>,
  naming: Naming<T>,
  coerce?: (value: unknown) => unknown,
): Setting<T> {
  return {
    schema,
    fromEnv: coerce ? (z.preprocess(coerce, schema) as unknown as z.ZodType<T>) : schema,
    ...naming,
  }
}

/** An integer in [min, max]; `unit` is named in messages ("an integer (bytes) from …"). */
export function integer(
  min: number,
  max: number,
  naming: Naming<number> & { unit?: string } = {},
): Setting<number> {
  const what = naming.unit ? `an integer (${naming.unit})` : 'an integer'
  const error = (issue: { input?: unknown }) =>
    `must be ${what} from ${min} to ${max}, got ${show(issue.input)}`
  const { unit: _unit, ...rest } = naming
  return setting(
    z.number({ error }).int({ error }).min(min, { error }).max(max, { error }),
    rest,
    numeric,
  )
}

/** A number in [0, 1]: a threshold on P(True). */
export function fraction(naming: Naming<number> = {}): Setting<number> {
  const error = (issue: { input?: unknown }) =>
    `must be a number from 0 to 1, got ${show(issue.input)}`
  return setting(z.number({ error }).min(0, { error }).max(1, { error }), naming, numeric)
}

/** A number above `min` (not equal to it) and at most `max`: a sampling temperature. */
export function numberAbove(
  min: number,
  max: number,
  naming: Naming<number> = {},
): Setting<number> {
  const error = (issue: { input?: unknown }) =>
    `must be a number above ${min} and at most ${max}, got ${show(issue.input)}`
  return setting(z.number({ error }).gt(min, { error }).max(max, { error }), naming, numeric)
}

/** `"a", "b" or "c"` */
export function listOf(values: readonly string[]): string {
  const quoted = values.map((value) => `"${value}"`)
  return quoted.length === 1
    ? quoted[0]!
    : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`
}

/** One of a fixed set of strings. */
export function choice<const T extends string>(
  values: readonly T[],
  naming: Naming<T> = {},
): Setting<T> {
  return setting(
    z.enum(values as [T, ...T[]], {
      error: (issue) => `must be ${listOf(values)}, got ${show(issue.input)}`,
    }),
    naming,
  )
}

export function boolean(naming: Naming<boolean> = {}): Setting<boolean> {
  return setting(
    z.boolean({ error: (issue) => `must be true or false, got ${show(issue.input)}` }),
    naming,
    booleanish,
  )
}

/** A string; `nonEmpty` names what it holds when it must not be blank ("a model name"). */
export function text(naming: Naming<string> & { nonEmpty?: string } = {}): Setting<string> {
  const { nonEmpty, ...rest } = naming
  const error = (issue: { input?: unknown }) =>
    nonEmpty
      ? `must be ${nonEmpty}, got ${show(issue.input)}`
      : `must be a string, got ${show(issue.input)}`
  const schema = z.string({ error })
  return setting(nonEmpty ? schema.trim().min(1, { error }) : schema, rest)
}

/** An absolute http(s) URL. */
export function httpUrl(naming: Naming<string> = {}): Setting<string> {
  const error = (issue: { input?: unknown }) => `must be an http(s) URL, got ${show(issue.input)}`
  return setting(
    z.string({ error }).refine(
      (value) => {
        try {
          return ['http:', 'https:'].includes(new URL(value).protocol)
        } catch {
          return false
        }
      },
      { error },
    ),
    naming,
  )
}

/** An object of header names to string values; from the environment, as a JSON string. */
export function headerMap(
  naming: Naming<Record<string, string>> = {},
): Setting<Record<string, string>> {
  const error = () => 'must be a JSON object of header names to string values'
  return setting(z.record(z.string({ error }), z.string({ error }), { error }), naming, jsonish)
}

/**
 * A list of words: an array, or one string with the items separated by commas, spaces or
 * newlines (as a secret or `--var` gives it). `item` checks each; `what` names them in messages.
 */
export function wordList(
  item: (word: string) => boolean,
  what: string,
  naming: Naming<string[]> = {},
): Setting<string[]> {
  const error = (issue: { input?: unknown }) =>
    naming.secret ? `must be ${what}` : `must be ${what}, got ${show(issue.input)}`
  const words = (value: unknown) =>
    typeof value === 'string' ? value.split(/[\s,]+/).filter((word) => word !== '') : value
  const schema = z
    .array(z.string({ error }).refine(item, { error }), { error })
    .min(1, { error: () => `must hold at least one item: ${what}` })
  return setting(schema, naming, words)
}

/** A value of a type zod cannot describe well (a function, an object with methods). */
export function custom<T>(
  check: (value: unknown) => boolean,
  what: string,
  naming: Naming<T> = {},
): Setting<T> {
  return setting(
    z.custom<T>(check, { error: (issue) => `must be ${what}, got ${describe(issue.input)}` }),
    naming,
  )
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object' && value !== null) return 'an object'
  return show(value)
}

/** The first problem zod found, as "must be …"; a secret's value is never repeated. */
export function firstProblem(error: z.ZodError, secret = false): string {
  const message = error.issues[0]?.message ?? 'is not valid'
  return secret ? message.replace(/, got .*$/s, '') : message
}

/** The type of value a setting holds. */
export type SettingValue<S> = S extends Setting<infer T> ? T : never

/**
 * Checks one option given in code. `owner` opens the message ("RAG Guard middleware"), `name`
 * is the option as the caller wrote it, quoted in the message as Hono's middleware do. Returns
 * the value, or the default when it is undefined.
 */
export function check<S extends Setting<unknown>>(
  owner: string,
  name: string,
  definition: S,
  value: unknown,
): SettingValue<S> {
  if (value === undefined && definition.default !== undefined) {
    return definition.default as SettingValue<S>
  }
  const result = definition.schema.safeParse(value)
  if (result.success) return result.data as SettingValue<S>
  throw new ConfigurationError(
    `${owner}: "${name}" ${firstProblem(result.error, definition.secret)}`,
    name,
  )
}

/** Like {@link check}, for an option that may be left out and has no default. */
export function checkOptional<S extends Setting<unknown>>(
  owner: string,
  name: string,
  definition: S,
  value: unknown,
): SettingValue<S> | undefined {
  return value === undefined ? undefined : check(owner, name, definition, value)
}
