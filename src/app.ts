import { Hono } from 'hono'
import { parseConfig, type GuardConfig, type GuardEnv } from './config'
import { logDecision } from './guard/decision-log'
import { ragGuard } from './guard/middleware'
import { errorResponse } from './guard/respond'
import { cacheApiStore, kvStore } from './judge/cache'
import { createJudge } from './judge/judge'
import { createProxy } from './proxy'

/**
 * The standalone guard: a Hono app that proxies every request to the upstream, and guards the
 * routes of `GUARD_ROUTES`. Throws a `ConfigurationError` when a setting is wrong.
 */
export function createGuardApp(env: GuardEnv): Hono {
  return buildGuardApp(parseConfig(env))
}

export function buildGuardApp(config: GuardConfig): Hono {
  const judge = createJudge(config.judge)
  const proxy = createProxy(config.upstream, { timeoutMs: config.upstreamTimeoutMs })
  const cache =
    config.cache &&
    (config.cache.kv
      ? kvStore(config.cache.kv, config.cache.ttlSeconds)
      : cacheApiStore(config.cache.ttlSeconds))
  const app = new Hono()
  for (const route of config.routes) {
    app.on(
      route.method,
      route.path,
      ragGuard({
        judge,
        format: route.format,
        blockBelow: route.thresholds.blockBelow,
        flagBelow: route.thresholds.flagBelow,
        mode: config.mode,
        onError: config.onError,
        fallbackMessage: route.fallbackMessage,
        streamMode: route.streamMode,
        streamBufferBytes: config.streamBufferBytes,
        cache,
        onDecision: config.logDecisions ? logDecision : undefined,
        logContent: config.logContent,
        maxBodyBytes: config.maxBodyBytes,
        onOversize: config.onOversize,
      }),
      proxy,
    )
  }
  app.all('*', proxy)
  app.onError((error, c) => {
    // The guard never answers 500 for itself: its own failure is a bad gateway, said plainly.
    console.error(
      JSON.stringify({
        message: 'RAG Guard: request failed',
        path: c.req.path,
        error: String(error),
      }),
    )
    return errorResponse(502, 'guard_error', 'The guard could not process this request.')
  })
  return app
}
