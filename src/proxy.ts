import type { Context } from 'hono'
import { proxy as forward } from 'hono/proxy'
import { cloneRawRequest } from 'hono/request'
import { markNetworkBody } from './guard/relay'
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
  // The guard's own credential is for the guard: it never reaches the upstream.
  if (hidden) headers.delete(hidden)
  const url = new URL(request.url)
  const client = incoming.get('cf-connecting-ip')
  if (client) headers.set('x-forwarded-for', client)
  headers.set('x-forwarded-proto', url.protocol.replace(':', ''))
  headers.set('x-forwarded-host', url.host)
  for (const [name, value] of Object.entries(upstream.headers ?? {})) headers.set(name, value)
  return headers
}

/** The upstream URL for a request: the configured origin and prefix, the request's path and query. */
export function upstreamUrl(upstream: URL, requestUrl: string): URL {
  const incoming = new URL(requestUrl)
  const target = new URL(upstream.href)
  const prefix = target.pathname.replace(/\/+$/, '')
  // Only path and query come from the request: its scheme, host and port never choose the target.
  target.pathname = `${prefix}${incoming.pathname}`
  target.search = incoming.search
  target.hash = ''
  return target
}

export interface ProxyOptions {
  /** A request header that is never forwarded: the one carrying the guard's own token. */
  hideHeader?: string
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = PROXY_SETTINGS.timeoutMs.default!

class UpstreamTimeout extends Error {
  override readonly name = 'UpstreamTimeout'
}

/**
 * The handler that forwards a request to the upstream and returns its response: method, path,
 * query, headers (less hop-by-hop ones), body and status, streamed both ways. On guarded
 * routes the guard has read the body and left `c.req.raw` holding it again, byte for byte.
 */
export function createProxy(upstream: Upstream, options: ProxyOptions = {}) {
  const fetcher = upstream.fetcher
  const customFetch = fetcher ? (request: Request) => fetcher.fetch(request) : undefined
  const timeoutMs = upstream.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS
  return async function proxy(c: Context): Promise<Response> {
    const method = c.req.method
    const hasBody = method !== 'GET' && method !== 'HEAD'
    // A body an earlier middleware read through Hono is rebuilt from what Hono kept.
    const source = hasBody && c.req.raw.bodyUsed ? await cloneRawRequest(c.req) : c.req.raw
    const body = hasBody ? source.body : null
    const target = upstreamUrl(upstream.url, c.req.url)
    // One signal for the whole exchange: the client leaving, or no headers within the budget.
    const controller = new AbortController()
    const clientGone = () => controller.abort(c.req.raw.signal.reason)
    if (c.req.raw.signal?.aborted) clientGone()
    c.req.raw.signal?.addEventListener('abort', clientGone, { once: true })
    const timer = setTimeout(() => controller.abort(new UpstreamTimeout()), timeoutMs)
    let response: Response
    try {
      // Hono's proxy helper asks the upstream for an uncompressed body and drops a
      // Content-Encoding the runtime has already undone: the client never gets bytes labelled
      // with an encoding they are not in, nor compression it did not ask for.
      response = await forward(target.href, {
        method,
        headers: forwardedHeaders(c.req.raw, upstream, options.hideHeader),
        body,
        redirect: 'manual',
        signal: controller.signal,
        // Required by the Fetch standard for a stream body (Node enforces it; workerd ignores it).
        duplex: 'half',
        customFetch,
      } as Parameters<typeof forward>[1])
    } catch (error) {
      const timedOut = controller.signal.reason instanceof UpstreamTimeout
      console.error(
        JSON.stringify({
          message: timedOut ? 'RAG Guard: upstream timed out' : 'RAG Guard: upstream unreachable',
          upstream: target.origin,
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
    // Read from the network: a held stream may read a copy of it in blocks (guard/relay.ts).
    markNetworkBody(response.body)
    return response
  }
}
