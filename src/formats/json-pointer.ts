import { ConfigurationError } from '../errors'

/**
 * JSON Pointer, RFC 6901. A pointer is parsed once, at setup, into its reference tokens;
 * reading and replacing walk the tokens per request.
 *
 * Only own properties are followed, so `/__proto__` or `/constructor` never reach the prototype.
 */
export interface JsonPointer {
  /** The pointer as written. */
  readonly source: string
  readonly tokens: readonly string[]
}

const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/

/**
 * Parses a pointer; throws a {@link ConfigurationError} naming `setting` when it is not one.
 * `""` is the whole document, `/a/b` the member b of a, `/items/0` the first element, and
 * `~1` and `~0` stand for `/` and `~` inside a name (RFC 6901 §3–4).
 */
export function parseJsonPointer(pointer: string, setting: string): JsonPointer {
  if (typeof pointer !== 'string' || (pointer !== '' && !pointer.startsWith('/'))) {
    throw new ConfigurationError(
      `${setting} must be a JSON Pointer (RFC 6901) such as "/question" or "/data/0/text", got ${JSON.stringify(pointer)}`,
      setting,
    )
  }
  if (/~(?![01])/.test(pointer)) {
    throw new ConfigurationError(
      `${setting} is not a valid JSON Pointer: "~" must be followed by 0 or 1 (got ${JSON.stringify(pointer)})`,
      setting,
    )
  }
  const tokens =
    pointer === ''
      ? []
      : pointer
          .slice(1)
          .split('/')
          .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'))
  return { source: pointer, tokens }
}

function child(value: unknown, token: string): { found: true; value: unknown } | { found: false } {
  if (Array.isArray(value)) {
    if (!ARRAY_INDEX.test(token)) return { found: false }
    const index = Number(token)
    return index < value.length ? { found: true, value: value[index] } : { found: false }
  }
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, token)) {
    return { found: true, value: (value as Record<string, unknown>)[token] }
  }
  return { found: false }
}

/** The value the pointer refers to, or `undefined` when there is none. */
export function readJsonPointer(document: unknown, pointer: JsonPointer): unknown {
  let value = document
  for (const token of pointer.tokens) {
    const next = child(value, token)
    if (!next.found) return undefined
    value = next.value
  }
  return value
}

/**
 * A copy of `document` with the value at `pointer` replaced; only the objects on the path are
 * copied. Returns `undefined` when the pointer does not refer to an existing value.
 */
export function replaceAtJsonPointer(
  document: unknown,
  pointer: JsonPointer,
  replacement: unknown,
): unknown {
  const replace = (value: unknown, depth: number): { found: boolean; value: unknown } => {
    if (depth === pointer.tokens.length) return { found: true, value: replacement }
    const token = pointer.tokens[depth] as string
    const next = child(value, token)
    if (!next.found) return { found: false, value }
    const replaced = replace(next.value, depth + 1)
    if (!replaced.found) return replaced
    if (Array.isArray(value)) {
      const copy = value.slice()
      copy[Number(token)] = replaced.value
      return { found: true, value: copy }
    }
    return {
      found: true,
      value: { ...(value as Record<string, unknown>), [token]: replaced.value },
    }
  }
  const result = replace(document, 0)
  return result.found ? result.value : undefined
}
