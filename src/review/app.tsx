/** @jsxImportSource hono/jsx */
/**
 * The review page and the labels export, under REVIEW_PATH (default `/_guard`): a Hono app of
 * its own, served by the guard and never forwarded. Operators only: the caller check decides who
 * is one (an operator token, an Access identity in ACCESS_OPERATORS); a browser, which cannot
 * send a bearer token, signs in once with the token and gets a signed session cookie scoped to
 * the review path. Everyone else gets 401 or 403, the same on every path under it.
 *
 *   GET  /review              decisions, newest first; filters; pages by key
 *   GET  /review/:id          one decision: question, documents, answer, each check; label form
 *   POST /review/:id          save labels and a note (form token; same origin)
 *   GET  /labels.jsonl        the labels export (?check=sufficiency|groundedness)
 *   GET  /overview            all traffic over time, from the hourly rollups (?window&route&check)
 *   GET, POST /login          sign in with an operator token
 *   POST /logout              sign out; with `everywhere=mine`, end every session of this
 *                             operator; with `everywhere=all`, every session (a store is needed)
 */
import type { Context, MiddlewareHandler } from 'hono'
import { Hono } from 'hono/tiny'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { HTTPException } from 'hono/http-exception'
import type { Child } from 'hono/jsx'
import type { CallerCheckOptions, FailureBrake } from '../guard/auth'
import type { ReviewConfig, StoreConfig } from './settings'
import type { Caller } from '../guard/auth'
import type { Thresholds } from '../guard/policy'
import { readLimited } from '../guard/body'
import { errorResponse } from '../guard/respond'
import { normalizedPath } from '../routing'
import { CHECKS, isCheck, type Check } from './checks'
import {
  currentThresholds,
  overviewView,
  parseOverviewQuery,
  readOverview,
  timeAxis,
} from './overview'
import { OverviewPage } from './overview-page'
import { exportLine } from './export'
import {
  DetailPage,
  ListPage,
  MessagePage,
  PAGE_HEADERS,
  render,
  SignInPage,
  type Session,
} from './page'
import {
  getDecision,
  labeledPage,
  listDecisions,
  listRoutes,
  parseListQuery,
  saveLabels,
  type LabelChange,
} from './queries'
import { endSessions, openSession, sessionIsOpen } from './session-store'
import {
  checkFormToken,
  formToken,
  newSessionId,
  operatorTokenIds,
  readSession,
  reviewKey,
  sameOrigin,
  SESSION_HOURS,
  sessionValue,
} from './session'

type ReviewEnv = { Variables: { caller: Caller; session: Session; sessionId?: string } }

export interface ReviewAppOptions {
  config: {
    auth: CallerCheckOptions
    review: ReviewConfig
    /** The guarded routes: the overview draws their thresholds. */
    routes?: ReadonlyArray<{
      paths: readonly string[]
      thresholds: Thresholds
      groundednessThresholds: Thresholds
    }>
  }
  /** The guard's caller check: the same one every other request passes. */
  callerCheck: MiddlewareHandler
  /** With GUARD_RATE_LIMIT: what counts refused credentials (tokens, sign-ins) by address. */
  brake?: FailureBrake
  /** The clock. @default Date.now */
  now?: () => number
}

const ID = /^[0-9a-f]{32}$/
const EXPORT_PAGE = 500
const MAX_NOTE = 2000
/** The list's query keys that a detail page carries back to the list. */
const LIST_KEYS = [
  'verdict',
  'route',
  'check',
  'from',
  'to',
  'min',
  'max',
  'labeled',
  'before',
  'after',
]

const forbidden = () =>
  errorResponse(403, 'forbidden', "The review page is for the guard's operators.")

const wantsHtml = (c: Context) => (c.req.header('accept') ?? '').includes('text/html')

function page(c: Context, node: Child, status = 200): Response {
  return c.html(render(node), status as 200, PAGE_HEADERS)
}

export function createReviewApp(options: ReviewAppOptions): Hono<ReviewEnv> {
  const { config, brake } = options
  // Requests pass the caller check with the brake around it; the sign-in form's probe (below)
  // passes it without, and the form counts its own refusals by the client's address.
  const callerCheck = brake ? brake.wrap(options.callerCheck) : options.callerCheck
  const now = options.now ?? Date.now
  const base = config.review.path
  const store = config.review.store
  const key = config.review.secret ? reviewKey(config.review.secret) : undefined
  // Sessions are for operators who sign in with a token; Access identities need none.
  const signIn = key !== undefined && config.auth.methods.includes('token')
  const operatorIds = operatorTokenIds(config.auth.operatorTokens)
  const tokenHeader = config.auth.tokenHeader

  // The caller check, asked about a token from the sign-in form, exactly as for a request.
  const probe = new Hono().use(options.callerCheck).all('*', (c) => c.json(c.var.caller))
  async function operatorByToken(token: string): Promise<Caller | undefined> {
    try {
      const headers = new Headers()
      headers.set(tokenHeader, tokenHeader === 'authorization' ? `Bearer ${token}` : token)
      const response = await probe.request('https://review.invalid/', { headers })
      if (!response.ok) return undefined
      const caller = (await response.json()) as Caller
      return caller.operator ? caller : undefined
    } catch {
      return undefined
    }
  }

  /** The session cookie: `__Secure-` and Secure over https; scoped to the review path. */
  const cookieName = (c: Context) =>
    new URL(c.req.url).protocol === 'https:' ? '__Secure-rag-guard-review' : 'rag-guard-review'

  /** The session's operator and id; with a store, only while D1 says the session is open. */
  async function sessionCaller(c: Context): Promise<(Caller & { session: string }) | undefined> {
    if (!key) return undefined
    const value = getCookie(c, cookieName(c))
    if (!value) return undefined
    const claim = await readSession(await key, value, now())
    // A token removed from GUARD_OPERATOR_TOKENS ends its sessions at once.
    if (!claim || !(await operatorIds).has(claim.callerId)) return undefined
    // One read by primary key, only for a cookie whose signature holds.
    if (store && !(await sessionIsOpen(store.db, claim.sessionId, claim.callerId, now()))) {
      return undefined
    }
    return { id: claim.callerId, operator: true, session: claim.sessionId }
  }

  const app = new Hono<ReviewEnv>({ getPath: (request) => normalizedPath(request.url) }).basePath(
    base,
  )

  if (signIn) {
    app.get('/login', (c) => page(c, <SignInPage base={base} />))
    app.post('/login', async (c) => {
      if (!sameOrigin(c.req.raw)) return forbidden()
      const held = brake?.held(c)
      if (held) return held
      const form = await readForm(c)
      const token = typeof form.token === 'string' ? form.token.trim() : ''
      const caller = token ? await operatorByToken(token) : undefined
      if (!caller) {
        // A refused token counts against the address (an empty form is no guess).
        const limited = token ? await brake?.refused(c) : undefined
        return limited ?? page(c, <SignInPage base={base} failed />, 401)
      }
      const sessionId = newSessionId()
      const at = now()
      // With a store, the session exists only once D1 has it: an end can then reach every copy.
      if (store) {
        await openSession(store.db, {
          id: sessionId,
          operator: caller.id,
          now: at,
          expires: at + SESSION_HOURS * 3_600_000,
        })
      }
      setCookie(c, cookieName(c), await sessionValue(await key!, caller.id, sessionId, at), {
        path: base,
        httpOnly: true,
        secure: cookieName(c).startsWith('__Secure-'),
        sameSite: 'Strict',
        maxAge: SESSION_HOURS * 3600,
      })
      return c.redirect(`${base}/review`, 303)
    })
  }

  // Operators only, from here on: a session, or the caller check and an operator's identity.
  app.use('*', async (c, next) => {
    const session = await sessionCaller(c)
    if (session) {
      c.set('caller', { id: session.id, operator: true })
      c.set('sessionId', session.session)
    } else {
      let passed = false
      let refusal: Response | void
      try {
        refusal = await callerCheck(c, async () => {
          passed = true
        })
      } catch (error) {
        if (!(error instanceof HTTPException)) throw error
        refusal = error.getResponse()
      }
      if (!passed) {
        if (signIn && c.req.method === 'GET' && wantsHtml(c)) {
          return page(c, <SignInPage base={base} />, 401)
        }
        return refusal ?? errorResponse(401, 'unauthorized', 'A guard token is required.')
      }
      if (!c.var.caller?.operator) return forbidden()
    }
    const caller = c.var.caller
    c.set('session', {
      base,
      caller: caller.id,
      formToken: key ? await formToken(await key, caller.id, now()) : '',
      session: session !== undefined,
      revocable: store !== undefined,
    })
    await next()
  })

  /** Whether a form that changes something is this operator's own, from this origin. */
  async function trustedForm(c: Context<ReviewEnv>, form: Record<string, unknown>) {
    return (
      key !== undefined &&
      sameOrigin(c.req.raw) &&
      (await checkFormToken(await key, c.var.caller.id, form.csrf, now()))
    )
  }
  const refused = (c: Context<ReviewEnv>) =>
    page(
      c,
      <MessagePage title="Not saved" session={c.var.session}>
        <p data-field="csrf-refused">
          This form did not come from this page, or it is older than {SESSION_HOURS} hours. Nothing
          was saved: open the page again and repeat.
        </p>
      </MessagePage>,
      403,
    )
  const noStore = (c: Context<ReviewEnv>) =>
    page(
      c,
      <MessagePage title="No decision store" session={c.var.session}>
        <p data-field="no-store">
          Decisions are not stored: bind a D1 database as GUARD_DB and apply the migrations
          (docs/calibrate.md, "Turn on the decision store").
        </p>
      </MessagePage>,
      404,
    )
  const noSessionStore = (c: Context<ReviewEnv>) =>
    page(
      c,
      <MessagePage title="Sessions are not stored" session={c.var.session}>
        <p data-field="no-session-store">
          Without a decision store (GUARD_DB), sessions are kept nowhere but in their cookies: no
          session can be ended but by its browser. Nothing was ended. To end every session, change
          REVIEW_SECRET; to end those of one token, remove it from GUARD_OPERATOR_TOKENS.
        </p>
      </MessagePage>,
      409,
    )
  const notFound = (c: Context<ReviewEnv>) =>
    page(
      c,
      <MessagePage title="Not found" session={c.var.session}>
        <p>There is no such decision (it may have been purged).</p>
      </MessagePage>,
      404,
    )

  app.post('/logout', async (c) => {
    const form = await readForm(c)
    if (!(await trustedForm(c, form))) return refused(c)
    const everywhere = form.everywhere
    if (everywhere !== undefined && everywhere !== 'mine' && everywhere !== 'all') {
      return errorResponse(400, 'invalid_scope', 'everywhere is "mine" or "all".')
    }
    if (everywhere && !store) return noSessionStore(c)
    const sessionId = c.var.sessionId
    if (store) {
      // "mine": every session of this operator's token, a copied or stolen one included.
      const scope =
        everywhere === 'all'
          ? 'all'
          : everywhere === 'mine'
            ? { operator: c.var.caller.id }
            : sessionId && { session: sessionId }
      if (scope) await endSessions(store.db, scope, now())
    }
    if (!sessionId) return c.redirect(`${base}/review`, 303)
    deleteCookie(c, cookieName(c), {
      path: base,
      secure: cookieName(c).startsWith('__Secure-'),
    })
    return c.redirect(`${base}/login`, 303)
  })

  app.get('/', (c) => c.redirect(`${base}/review`, 303))

  app.get('/review', async (c) => {
    if (!store) return noStore(c)
    const request = parseListQuery(c.req.query())
    const [list, routes] = await Promise.all([
      listDecisions(store.db, request),
      listRoutes(store.db),
    ])
    return page(
      c,
      <ListPage
        session={c.var.session}
        store={store}
        filters={request.filters}
        routes={routes}
        {...list}
      />,
    )
  })

  app.get('/review/:id', async (c) => {
    if (!store) return noStore(c)
    const id = c.req.param('id')
    const decision = ID.test(id) ? await getDecision(store.db, id) : null
    if (!decision) return notFound(c)
    const back = new URLSearchParams()
    for (const name of LIST_KEYS) {
      const value = c.req.query(name)
      if (value) back.set(name, value)
    }
    return page(
      c,
      <DetailPage
        session={c.var.session}
        decision={decision}
        back={back.toString()}
        saved={c.req.query('saved') === '1'}
      />,
    )
  })

  app.post('/review/:id', async (c) => {
    if (!store) return noStore(c)
    const form = await readForm(c)
    if (!(await trustedForm(c, form))) return refused(c)
    const id = c.req.param('id')
    if (!ID.test(id) || !(await getDecision(store.db, id))) return notFound(c)
    const change = labelChange(form)
    if (!change) {
      return errorResponse(400, 'invalid_labels', 'Labels are "yes", "no" or "clear".')
    }
    await saveLabels(store.db, id, change, c.var.caller.id, now())
    const back = new URLSearchParams(typeof form.back === 'string' ? form.back : '')
    const query = new URLSearchParams()
    for (const name of LIST_KEYS) {
      const value = back.get(name)
      if (value) query.set(name, value)
    }
    query.set('saved', '1')
    return c.redirect(`${base}/review/${id}?${query}`, 303)
  })

  const overview = overviewHandler(config.routes ?? [], now)
  app.get('/overview', (c) => (store ? overview(c, store) : noStore(c)))

  app.get('/labels.jsonl', async (c) => {
    if (!store) {
      return errorResponse(404, 'not_found', 'Decisions are not stored: bind GUARD_DB.')
    }
    const asked = c.req.query('check')
    if (asked !== undefined && !isCheck(asked)) {
      return errorResponse(400, 'invalid_check', 'check is "sufficiency" or "groundedness".')
    }
    const check = asked
    const encoder = new TextEncoder()
    // The first page is read before the response starts: a store that cannot be read is an
    // error status, not a cut-off file.
    let rows = await labeledPage(store.db, check, undefined, EXPORT_PAGE)
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (rows.length > 0) {
          controller.enqueue(encoder.encode(rows.map((row) => `${exportLine(row)}\n`).join('')))
        }
        const last = rows[rows.length - 1]
        if (rows.length < EXPORT_PAGE || !last) {
          controller.close()
          return
        }
        rows = await labeledPage(
          store.db,
          check,
          { time: last.reviewed_at, id: last.decision_id },
          EXPORT_PAGE,
        )
      },
    })
    return new Response(body, {
      headers: {
        'content-type': 'application/jsonl; charset=utf-8',
        'content-disposition': `attachment; filename="rag-guard-labels${check ? `-${check}` : ''}.jsonl"`,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      },
    })
  })

  app.all('*', (c) =>
    wantsHtml(c) ? notFound(c) : errorResponse(404, 'not_found', 'No such review page.'),
  )

  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse()
    const message = String(error).slice(0, 300)
    console.error(JSON.stringify({ message: 'RAG Guard review: request failed', error: message }))
    // Only operators get this far: they may see what failed (a store without its tables).
    if (c.var.session) {
      return page(
        c,
        <MessagePage title="The decision store could not be read" session={c.var.session}>
          <p>{message}</p>
          <p>
            Have the migrations been applied? <code>npx wrangler d1 migrations apply GUARD_DB</code>
          </p>
        </MessagePage>,
        502,
      )
    }
    return errorResponse(502, 'guard_error', 'The guard could not process this request.')
  })
  return app
}

/** The overview page (overview-page.tsx), from the rollups of `store`. */
function overviewHandler(
  routes: NonNullable<ReviewAppOptions['config']['routes']>,
  now: () => number,
) {
  // Every route's thresholds per check, as the histograms draw them.
  const routeThresholds = routes.map((route) => ({
    paths: route.paths,
    thresholds: { sufficiency: route.thresholds, groundedness: route.groundednessThresholds },
  }))
  return async (c: Context<ReviewEnv>, store: StoreConfig) => {
    const request = parseOverviewQuery(c.req.query())
    const axis = timeAxis(request.window, now())
    const rows = await readOverview(store.db, request, axis)
    if (request.route && !rows.routes.includes(request.route)) rows.routes.push(request.route)
    const thresholds = Object.fromEntries(
      CHECKS.map((check) => [check, currentThresholds(routeThresholds, check, request.route)]),
    ) as Record<Check, Thresholds[]>
    return page(
      c,
      <OverviewPage
        session={c.var.session}
        request={request}
        view={overviewView(rows, axis)}
        routes={rows.routes}
        thresholds={thresholds}
        retentionDays={store.retentionDays}
        flushSeconds={store.rollupFlushSeconds}
      />,
    )
  }
}

/** The most a review form may send: a token, two labels, a note of 2,000 characters. */
const MAX_FORM_BYTES = 16_384

/**
 * A form's fields (`application/x-www-form-urlencoded`, as the pages send them), read up to
 * {@link MAX_FORM_BYTES}: the sign-in form is open to anyone, so no body is read whole whatever
 * its size. Anything larger, or of another type, reads as no fields.
 */
async function readForm(c: Context): Promise<Record<string, string>> {
  const type = c.req.header('content-type') ?? ''
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return {}
  const read = await readLimited(c.req.raw.body, MAX_FORM_BYTES).catch(() => undefined)
  if (!read?.ok) {
    if (read) void read.reader.cancel().catch(() => {})
    return {}
  }
  return Object.fromEntries(new URLSearchParams(new TextDecoder().decode(read.bytes)))
}

/** The labels and the note a form sends; undefined when a value is not one of the allowed. */
function labelChange(form: Record<string, unknown>): LabelChange | undefined {
  const change: LabelChange = {}
  for (const field of ['sufficient', 'grounded'] as const) {
    const value = form[field]
    if (value === undefined) continue
    if (value === 'yes') change[field] = true
    else if (value === 'no') change[field] = false
    else if (value === 'clear') change[field] = null
    else return undefined
  }
  if (form.note !== undefined) {
    if (typeof form.note !== 'string') return undefined
    change.note = form.note.trim().slice(0, MAX_NOTE)
  }
  return change
}
