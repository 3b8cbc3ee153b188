/**
 * What the guard's app registers for REVIEW_PATH: a handler that loads the review pages on the
 * first request under it, so an isolate that serves only guarded traffic never evaluates them.
 */
import type { Context, Handler, Hono, MiddlewareHandler } from 'hono'
import type { FailureBrake } from '../guard/auth'
import type { ReviewAppOptions } from './app'

export function reviewPages(
  config: ReviewAppOptions['config'],
  callerCheck: MiddlewareHandler,
  brake?: FailureBrake,
): Handler {
  let app: Promise<Hono> | undefined
  return async (c: Context) => {
    app ??= import('./app').then(
      ({ createReviewApp }) => createReviewApp({ config, callerCheck, brake }) as unknown as Hono,
    )
    return (await app).fetch(c.req.raw, c.env, executionContext(c))
  }
}

/** The execution context, when there is one (`app.request` in tests has none). */
function executionContext(c: Context): Parameters<Hono['fetch']>[2] {
  try {
    return c.executionCtx
  } catch {
    return undefined
  }
}
