import type { Context } from 'hono'
import { cloneRawRequest } from 'hono/request'
import { errorResponse } from './guard/respond'
import { httpUrl, integer } from './settings'

/** The proxy's settings, with their Worker names. */
export const PROXY_SETTINGS = {
  /** Origin and optional path prefix of the guarded endpoint. */
  url: httpUrl({ env: 'UPSTREAM_URL' }),
  /** How long to wait for the upstream's response headers. */
  timeoutMs: integer(1, 600_000, {
    unit: 'milliseconds',
    env: 'UPSTREAM_TIMEOUT_MS',
    default: 60_000,
  }),
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded; `host`
 * is the upstream's, set by fetch from the target URL.
 */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]

/**
 * Forwarding headers a client could write to pass as someone else: the proxy drops the client's
 * copies and writes its own from what the platform saw.
 */
const CLIENT_FORWARDING = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
]

export interface Upstream {
  /** Origin and optional path prefix of the guarded endpoint. */
  url: URL
  /** A service binding; when set, requests go through it instead of the network. */
  fetcher?: Fetcher
  /** Headers added to every forwarded request (the upstream's own credentials). */
  headers?: Record<string, string>
  /**
   * How long to wait for the upstream's response headers. A streamed body may then take longer;
   * the client going away still stops it.
   * @default 60000
   * @unit milliseconds
   */
  timeoutMs?: number
}

function forwardedHeaders(
  request: Request,
  upstream: Upstream,
  hidden: string | undefined,
): Headers {
  const incoming = request.headers
  const headers = new Headers(incoming)
  // Headers named in Connection are hop-by-hop too.
  for (const name of (incoming.get('connection') ?? '').split(',')) {
    if (name.trim()) headers.delete(name.trim())
  }
  for (const name of HOP_BY_HOP) headers.delete(name)
  for (const name of CLIENT_FORWARDING) headers.delete(name)
  // The runtime asks for the codings it undoes itself: the client never gets bytes labelled with
  // an encoding they are not in, nor compression it did not ask for.
  headers.delete('accept-encoding')
  // The guard's own credential is for the guard: it never reaches the upstream.
  if (hidden) headers.delete(hidden)
  const { protocol, host } = requestUrlParts(request.url)
  const client = incoming.get('cf-connecting-ip')
  if (client) headers.set('x-forwarded-for', client)
  headers.set('x-forwarded-proto', protocol)
  headers.set('x-forwarded-host', host)
  for (const [name, value] of Object.entries(upstream.headers ?? {})) headers.set(name, value)
  return headers
}

/**
 * A request's URL in parts, read as text: a `Request`'s `url` is already serialized (scheme,
 * `//`, host, then the path from the first `/`), so it need not be parsed again per request.
 * A string of another shape goes through the URL parser.
 */
function requestUrlParts(url: string): { protocol: string; host: string; pathAndQuery: string } {
  const scheme = url.indexOf('://')
  const slash = scheme === -1 ? -1 : url.indexOf('/', scheme + 3)
  const authority = slash === -1 ? '' : url.slice(scheme + 3, slash)
  if (slash === -1 || /[@?#]/.test(authority)) {
    const parsed = new URL(url)
    return {
      protocol: parsed.protocol.replace(':', ''),
      host: parsed.host,
      pathAndQuery: `${parsed.pathname}${parsed.search}`,
    }
  }
  const fragment = url.indexOf('#', slash)
  let pathAndQuery = fragment === -1 ? url.slice(slash) : url.slice(slash, fragment)
  // An empty query is no query (as `URL.search` has it).
  if (pathAndQuery.endsWith('?') && pathAndQuery.indexOf('?') === pathAndQuery.length - 1)
    pathAndQuery = pathAndQuery.slice(0, -1)
  return { protocol: url.slice(0, scheme).toLowerCase(), host: authority, pathAndQuery }
}

/**
 * The configured upstream as the text every target starts with: scheme, credentials if any,
 * host and path prefix (no trailing slash), worked out once.
 */
function upstreamBase(upstream: URL): string {
  const { href, pathname, search, hash } = upstream
  const authority = href.slice(0, href.length - pathname.length - search.length - hash.length)
  return `${authority}${pathname.replace(/\/+$/, '')}`
}

export interface ProxyOptions {
  /** A request header that is never forwarded: the one carrying the guard's own token. */
  hideHeader?: string
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = PROXY_SETTINGS.timeoutMs.default!

/** Response headers that belong to the upstream's connection (RFC 9110 §7.6.1). */
const RESPONSE_HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z|~]+$/

/**
 * One request to the upstream, and its response as the client may get it: with headers of its
 * own (the guard adds its verdict), less those of the upstream's connection, and less a
 * Content-Encoding the runtime has already undone (with the length it gave). What Hono's proxy
 * helper does, with the headers copied once each way instead of twice.
 */
async function forward(target: string, init: RequestInit, fetcher?: Fetcher): Promise<Response> {
  const upstream = await (fetcher ? fetcher.fetch(target, init) : fetch(target, init))
  const response = new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: upstream.headers,
  })
  const { headers } = response
  for (const name of (headers.get('connection') ?? '').split(',')) {
    const trimmed = name.trim()
    if (TOKEN.test(trimmed)) headers.delete(trimmed)
  }
  for (const name of RESPONSE_HOP_BY_HOP) headers.delete(name)
  if (headers.has('content-encoding')) {
    headers.delete('content-encoding')
    headers.delete('content-length')
  }
  return response
}

class UpstreamTimeout extends Error {
  override readonly name = 'UpstreamTimeout'
}

/**
 * The handler that forwards a request to the upstream and returns its response: method, path,
 * query, headers (less hop-by-hop ones), body and status, streamed both ways. On guarded
 * routes the guard has read a copy of the body and left `c.req.raw`'s own unread, byte for byte.
 */
export function createProxy(upstream: Upstream, options: ProxyOptions = {}) {
  const fetcher = upstream.fetcher
  const timeoutMs = upstream.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS
  const base = upstreamBase(upstream.url)
  return async function proxy(c: Context): Promise<Response> {
    const method = c.req.method
    const hasBody = method !== 'GET' && method !== 'HEAD'
    // A body an earlier middleware read through Hono is rebuilt from what Hono kept.
    const source = hasBody && c.req.raw.bodyUsed ? await cloneRawRequest(c.req) : c.req.raw
    const body = hasBody ? source.body : null
    // Only path and query come from the request: its scheme, host and port never choose the target.
    const target = `${base}${requestUrlParts(c.req.url).pathAndQuery}`
    // One signal for the whole exchange: the client leaving, or no headers within the budget.
    const controller = new AbortController()
    const clientGone = () => controller.abort(c.req.raw.signal.reason)
    if (c.req.raw.signal?.aborted) clientGone()
    c.req.raw.signal?.addEventListener('abort', clientGone, { once: true })
    const timer = setTimeout(() => controller.abort(new UpstreamTimeout()), timeoutMs)
    let response: Response
    try {
      response = await forward(
        target,
        {
          method,
          headers: forwardedHeaders(c.req.raw, upstream, options.hideHeader),
          body,
          redirect: 'manual',
          signal: controller.signal,
          // Required by the Fetch standard for a stream body (Node enforces it; workerd ignores it).
          duplex: 'half',
        } as RequestInit,
        fetcher,
      )
    } catch (error) {
      const timedOut = controller.signal.reason instanceof UpstreamTimeout
      console.error(
        JSON.stringify({
          message: timedOut ? 'RAG Guard: upstream timed out' : 'RAG Guard: upstream unreachable',
          upstream: upstream.url.origin,
          error: String(error),
        }),
      )
      return timedOut
        ? errorResponse(
            504,
            'upstream_timeout',
            `The upstream RAG endpoint did not answer within ${timeoutMs} ms.`,
          )
        : errorResponse(
            502,
            'upstream_unreachable',
            'The upstream RAG endpoint could not be reached.',
          )
    } finally {
      clearTimeout(timer)
    }
    return response
  }
}
