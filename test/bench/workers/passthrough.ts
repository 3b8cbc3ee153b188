/**
 * Benchmark floor: an unguarded pass-through Worker. It forwards every request to UPSTREAM_URL
 * (origin and path prefix, then the request's path and query) and returns the upstream's
 * response as it comes; workerd pipes the body without running JavaScript per chunk.
 */
interface Env {
  UPSTREAM_URL: string
}

export default {
  fetch(request, env) {
    const incoming = new URL(request.url)
    const target = new URL(env.UPSTREAM_URL)
    target.pathname = `${target.pathname.replace(/\/+$/, '')}${incoming.pathname}`
    target.search = incoming.search
    return fetch(new Request(target.href, request))
  },
} satisfies ExportedHandler<Env>
