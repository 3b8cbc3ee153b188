/**
 * Who may call the guard: a bearer token from a secret list, a Cloudflare Access JWT, or — only
 * when the operator wrote it out — anyone. The check runs before the body is read and before
 * any judge or upstream call. It also says who the caller is (for the per-caller cache and the
 * rate limit) and whether the caller is an operator (who may see a decision's details).
 */
import type { Context, MiddlewareHandler } from 'hono'
import { bearerAuth } from 'hono/bearer-auth'
import { HTTPException } from 'hono/http-exception'
import { verifyWithJwks } from 'hono/jwt'
import type { HonoJsonWebKey } from 'hono/utils/jwt/jws'
import { constantTimeEqual, sha256Hex } from '../hash'
import { isRecord } from '../json'
import { errorResponse } from './respond'

export type AuthMethod = 'token' | 'access' | 'none'

/** The caller, as the check found it. */
export interface Caller {
  /** A stable id that holds no secret: `token:<hash prefix>`, `access:<sub>`, or `anonymous`. */
  id: string
  /** Whether the caller may see a decision's details. */
  operator: boolean
}

export interface CallerVariables {
  caller: Caller
}

declare module 'hono' {
  interface ContextVariableMap extends CallerVariables {}
}

export interface AccessOptions {
  /** The Access team domain, e.g. `https://team.cloudflareaccess.com`. */
  teamDomain: string
  /** The application's audience tag(s). */
  audience: string[]
  /** Emails of Access identities that are operators. */
  operators: string[]
  /** How long fetched signing keys are kept. @default 600000 @unit milliseconds */
  keysTtlMs?: number
}

export interface CallerCheckOptions {
  methods: AuthMethod[]
  /** Tokens of callers. */
  tokens: string[]
  /** Tokens of operators (also callers). */
  operatorTokens: string[]
  /** The header that carries the token: `authorization` (`Bearer <token>`) or another (the token itself). */
  tokenHeader: string
  access?: AccessOptions
}

const CHALLENGE = 'Bearer realm="rag-guard"'

const unauthorized = (message: string) =>
  errorResponse(401, 'unauthorized', message, {}, { 'www-authenticate': CHALLENGE })

/** A refusal of Hono's bearer-auth middleware, as the guard's own 401. */
const refusal = (message: string) => ({
  wwwAuthenticateHeader: CHALLENGE,
  message: () => unauthorized(message),
})

/** The header in which Cloudflare Access forwards the caller's identity. */
export const ACCESS_HEADER = 'cf-access-jwt-assertion'

/** The signing keys of an Access team, fetched once and kept; fetched again for an unknown key (at most once a minute). */
function accessKeys(options: AccessOptions) {
  const url = `${options.teamDomain.replace(/\/+$/, '')}/cdn-cgi/access/certs`
  const ttl = options.keysTtlMs ?? 600_000
  let cached: { keys: HonoJsonWebKey[]; at: number } | undefined
  let pending: Promise<HonoJsonWebKey[]> | undefined
  const fetchKeys = () =>
    (pending ??= (async () => {
      try {
        const response = await fetch(url, { headers: { accept: 'application/json' } })
        const body: unknown = response.ok ? await response.json() : undefined
        const keys =
          isRecord(body) && Array.isArray(body.keys) ? (body.keys as HonoJsonWebKey[]) : []
        cached = { keys, at: Date.now() }
        return keys
      } finally {
        pending = undefined
      }
    })())
  return {
    async keys(): Promise<HonoJsonWebKey[]> {
      if (cached && Date.now() - cached.at < ttl) return cached.keys
      return fetchKeys()
    },
    /** The key `kid` is not among the kept ones: fetch again, unless that was done less than a minute ago. */
    async refresh(kid: string | undefined): Promise<boolean> {
      if (!cached || Date.now() - cached.at < 60_000) return false
      const keys = await fetchKeys()
      return keys.some((key) => key.kid === kid)
    },
  }
}

function tokenKid(jwt: string): string | undefined {
  try {
    const header: unknown = JSON.parse(
      atob(jwt.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/')),
    )
    return isRecord(header) && typeof header.kid === 'string' ? header.kid : undefined
  } catch {
    return undefined
  }
}

/** The caller check, as Hono middleware. Sets `c.var.caller`. */
export function callerCheck(options: CallerCheckOptions): MiddlewareHandler {
  if (options.methods.includes('none')) {
    return async function callerCheck(c, next) {
      c.set('caller', { id: 'anonymous', operator: false })
      await next()
    }
  }
  // Tokens are kept as hashes: a presented token is hashed once and compared in constant time.
  const hashes = Promise.all(
    [
      ...options.operatorTokens.map((token) => [token, true] as const),
      ...options.tokens.map((token) => [token, false] as const),
    ].map(async ([token, operator]) => ({ hash: await sha256Hex(token), operator })),
  )
  const byToken = options.methods.includes('token')
    ? bearerAuth({
        headerName: options.tokenHeader,
        prefix: options.tokenHeader.toLowerCase() === 'authorization' ? 'Bearer' : '',
        verifyToken: async (token: string, c: Context) => {
          const hash = await sha256Hex(token)
          let match: { operator: boolean } | undefined
          // Every stored hash is compared, so the time does not tell which one matched.
          for (const stored of await hashes) {
            if (constantTimeEqual(stored.hash, hash)) match ??= stored
          }
          if (match) c.set('caller', { id: `token:${hash.slice(0, 12)}`, operator: match.operator })
          return match !== undefined
        },
        // Every refusal is a 401 with the same JSON body and challenge (RFC 6750 §3), a
        // malformed header too: a caller learns nothing from telling them apart.
        noAuthenticationHeader: refusal('A guard token is required.'),
        invalidAuthenticationHeader: refusal('The guard token is not valid.'),
        invalidToken: refusal('The guard token is not valid.'),
      })
    : undefined
  const access = options.methods.includes('access') && options.access ? options.access : undefined
  const keys = access ? accessKeys(access) : undefined

  async function verifyAccess(c: Context, jwt: string): Promise<Caller | undefined> {
    if (!access || !keys) return undefined
    const verify = async () =>
      verifyWithJwks(jwt, {
        keys: await keys.keys(),
        allowedAlgorithms: ['RS256'],
        verification: { aud: access.audience, iss: access.teamDomain.replace(/\/+$/, '') },
      })
    let payload
    try {
      payload = await verify()
    } catch {
      if (!(await keys.refresh(tokenKid(jwt)).catch(() => false))) return undefined
      payload = await verify().catch(() => undefined)
    }
    if (!payload) return undefined
    const email = typeof payload.email === 'string' ? payload.email.toLowerCase() : undefined
    return {
      id: `access:${typeof payload.sub === 'string' && payload.sub ? payload.sub : (email ?? 'service')}`,
      operator: email !== undefined && access.operators.includes(email),
    }
  }

  return async function callerCheck(c, next) {
    const jwt = access ? c.req.header(ACCESS_HEADER) : undefined
    if (jwt) {
      const caller = await verifyAccess(c, jwt)
      if (!caller) return unauthorized('The Access token is not valid for this guard.')
      c.set('caller', caller)
      return next()
    }
    if (byToken) return byToken(c, next)
    return unauthorized('A Cloudflare Access identity is required.')
  }
}

const tooMany = () =>
  errorResponse(
    429,
    'rate_limited',
    'Too many requests from this caller; try again later.',
    {},
    { 'retry-after': '60' },
  )

/** The client's address, as Cloudflare gives it. */
const clientIp = (c: Context) => c.req.header('cf-connecting-ip') ?? 'unknown'

/** How long an address over the limit of refused credentials is held, in this isolate. */
const HOLD_MS = 60_000
/** The most addresses one isolate holds at once; past it, the oldest hold goes first. */
const MAX_HELD = 1024

/** The brake on guessing credentials: refused ones count against the client's address. */
export interface FailureBrake {
  /** 429 while this request's address is held (it passed the limit in this isolate). */
  held(c: Context): Response | undefined
  /** Counts a refused credential against the address; 429 (and a hold) past the limit. */
  refused(c: Context): Promise<Response | undefined>
  /** The caller check with the brake around it: held addresses are refused before it runs. */
  wrap(check: MiddlewareHandler): MiddlewareHandler
}

/**
 * Refused credentials — a wrong bearer token, an Access JWT that does not verify, a wrong token
 * in the review page's sign-in form — count against the client's address (CF-Connecting-IP) in
 * the rate-limiting binding, under keys of their own (`auth-failed:ip:<address>`): accepted
 * credentials and requests without one never count. Past the limit the client gets 429, and for
 * a minute this isolate checks nothing from that address, a right token included: the binding
 * cannot be asked without counting, and a brake that still let the right guess through would
 * not slow guessing at all. Other isolates keep checking, and count, until they see the limit.
 */
export function failureBrake(binding: RateLimit, tokenHeader: string): FailureBrake {
  const holds = new Map<string, number>()
  const held = (c: Context) => {
    const until = holds.get(clientIp(c))
    if (until === undefined) return undefined
    if (until > Date.now()) return tooMany()
    holds.delete(clientIp(c))
    return undefined
  }
  async function refused(c: Context) {
    const ip = clientIp(c)
    const { success } = await binding.limit({ key: `auth-failed:ip:${ip}` })
    if (success) return undefined
    if (holds.size >= MAX_HELD) holds.delete(holds.keys().next().value!)
    holds.set(ip, Date.now() + HOLD_MS)
    return tooMany()
  }
  /** Whether the request offered a credential (a request without one guesses nothing). */
  const offered = (c: Context) =>
    c.req.header(tokenHeader) !== undefined || c.req.header(ACCESS_HEADER) !== undefined
  const wrap = (check: MiddlewareHandler): MiddlewareHandler =>
    async function brakedCallerCheck(c, next) {
      const hold = held(c)
      if (hold) return hold
      let passed = false
      try {
        const refusal = await check(c, async () => {
          passed = true
          await next()
        })
        if (!passed && refusal instanceof Response && refusal.status === 401 && offered(c)) {
          return (await refused(c)) ?? refusal
        }
        return refusal
      } catch (error) {
        if (!passed && error instanceof HTTPException && error.status === 401 && offered(c)) {
          const limited = await refused(c)
          if (limited) return limited
        }
        throw error
      }
    }
  return { held, refused, wrap }
}

/**
 * A per-caller rate limit with the Workers rate-limiting binding: the caller's id is the key
 * (for anonymous callers, their IP address). Past the limit, 429 with `Retry-After`.
 * @see https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/
 */
export function rateLimit(binding: RateLimit): MiddlewareHandler {
  return async function rateLimit(c, next) {
    const caller = c.var.caller
    const key = !caller || caller.id === 'anonymous' ? `ip:${clientIp(c)}` : caller.id
    const { success } = await binding.limit({ key })
    if (!success) return tooMany()
    await next()
  }
}
