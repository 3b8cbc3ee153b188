/**
 * How the guard matches a request's path to its routes. Upstreams differ in what they treat as
 * the same path (Express and FastAPI ignore case or a trailing slash, some servers decode `%61`
 * or drop `;params`), so the guard matches every spelling that could mean a route: a guarded
 * route catches them all, and the upstream still gets the request's own path.
 */

/** Decodes ASCII percent-escapes (`%61` → `a`, `%2e` → `.`, `%2f` → `/`), as often as they nest. */
function decodedAscii(path: string): string {
  for (let round = 0; round < 4; round++) {
    const decoded = path.replace(/%([0-7][0-9a-f])/gi, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    )
    if (decoded === path) return decoded
    path = decoded
  }
  return path
}

/**
 * A request path as the guard matches it: ASCII escapes decoded, backslashes as slashes, empty
 * and `.` segments dropped, `..` resolved, `;params` dropped, lower case, no trailing slash.
 */
export function normalizedPath(url: string): string {
  const decoded = decodedAscii(new URL(url).pathname).replace(/\\/g, '/')
  const segments: string[] = []
  for (const raw of decoded.split('/')) {
    const segment = raw.split(';')[0]!
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment.toLowerCase())
  }
  return `/${segments.join('/')}`
}

/** A route's path pattern in the same form: lower case, no empty segments, no trailing slash. */
export function normalizedPattern(path: string): string {
  const pattern = path.toLowerCase().replace(/\/{2,}/g, '/')
  return pattern.length > 1 ? pattern.replace(/\/+$/, '') : pattern
}
