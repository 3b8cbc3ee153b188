/** Small JSON helpers shared by the formats, the guard and the CLI. */

export type Parsed = { ok: true; value: unknown } | { ok: false }

/** `JSON.parse` that reports failure as a value instead of throwing. */
export function parseJson(text: string): Parsed {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

/** A JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `value[key]`, when `value` is an object and the member passes `check`. */
export function member<T>(
  value: unknown,
  key: string,
  check: (item: unknown) => item is T,
): T | undefined {
  const item = isRecord(value) ? value[key] : undefined
  return check(item) ? item : undefined
}

export const isString = (value: unknown): value is string => typeof value === 'string'
export const isNumber = (value: unknown): value is number => typeof value === 'number'
