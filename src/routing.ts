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

/** Characters a serialized URL's path may hold (RFC 3986 §3.3 pchar, `/` and `%`), nothing else. */
const SERIALIZED_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/

/**
 * The path of an absolute URL. A `Request`'s `url` is already serialized, so its path is the text
 * between the authority and the query: read as text, without parsing the URL again. Anything
 * else (a character a serialized path cannot hold) goes through the URL parser.
 */
function pathOf(url: string): string {
  const scheme = url.indexOf('://')
  if (scheme !== -1) {
    const slash = url.indexOf('/', scheme + 3)
    // No path, or a query or fragment before it: the parser says what the path is.
    if (slash === -1 || /[?#]/.test(url.slice(scheme + 3, slash))) return new URL(url).pathname
    let end = url.length
    const query = url.indexOf('?', slash)
    if (query !== -1) end = query
    const fragment = url.indexOf('#', slash)
    if (fragment !== -1 && fragment < end) end = fragment
    const path = url.slice(slash, end)
    if (SERIALIZED_PATH.test(path)) return path
  }
  return new URL(url).pathname
}

/**
 * Paths already normalized in this isolate (a route is matched many times), bounded in number and
 * in length: longer paths, which no route of a RAG endpoint has, are worked out every time.
 */
const normalized = new Map<string, string>()
const NORMALIZED_KEPT = 1024
const NORMALIZED_LONGEST = 256

/**
 * A request path as the guard matches it: ASCII escapes decoded, backslashes as slashes, empty
 * and `.` segments dropped, `..` resolved, `;params` dropped, lower case, no trailing slash.
 * Worked out once per path and isolate.
 */
export function normalizedPath(url: string): string {
  const path = pathOf(url)
  if (path.length > NORMALIZED_LONGEST) return normalizedPathOf(path)
  let found = normalized.get(path)
  if (found === undefined) {
    found = normalizedPathOf(path)
    // Bounded: paths are the client's to choose. Starting over costs one parse per path.
    if (normalized.size >= NORMALIZED_KEPT) normalized.clear()
    normalized.set(path, found)
  }
  return found
}

function normalizedPathOf(pathname: string): string {
  const decoded = decodedAscii(pathname).replace(/\\/g, '/')
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
