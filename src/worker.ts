/**
 * The Worker entry (`main` in wrangler.toml): RAG Guard as its own Worker in front of an existing
 * RAG endpoint, configured from the environment. See docs/reference/settings.md for every setting.
 */
import type { Hono } from 'hono'
import { createGuardApp } from './app'
import { parseConfig, type GuardEnv } from './config'
import { ConfigurationError } from './errors'
import { errorResponse } from './guard/respond'
import { purgeStore } from './review/purge'

// The settings are read once per isolate (env is the same object for every request).
const apps = new WeakMap<object, Hono | ConfigurationError>()

function appFor(env: GuardEnv): Hono | ConfigurationError {
  let app = apps.get(env)
  if (!app) {
    try {
      app = createGuardApp(env)
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error
      // Said once per isolate, in the logs; every request then gets the same clear 503.
      console.error(`${error.message}`)
      app = error
    }
    apps.set(env, app)
  }
  return app
}

export default {
  fetch(request, env, ctx) {
    const app = appFor(env)
    if (app instanceof ConfigurationError) {
      // The reason is in the logs; a client learns nothing of the settings.
      return errorResponse(
        503,
        'guard_misconfigured',
        "The guard is misconfigured. Its operator can find the reason in the Worker's logs.",
      )
    }
    return app.fetch(request, env, ctx)
  },
  // The cron trigger of wrangler.toml: the decision store's retention purge (nothing without one).
  scheduled(controller, env, ctx) {
    let store
    try {
      store = parseConfig(env).review.store
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error
      console.error(`${error.message} (the scheduled purge did not run)`)
      return
    }
    ctx.waitUntil(purgeStore(store, controller.scheduledTime))
  },
} satisfies ExportedHandler<GuardEnv>
