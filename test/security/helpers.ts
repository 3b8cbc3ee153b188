/**
 * Helpers of the attacker's suite (issue 12): the guard Worker set up as the secure-by-default
 * design wants it (a caller check, operators), requests sent with the path exactly as written,
 * RS256 tokens signed here with WebCrypto, and the checks every finding repeats.
 */
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { expect } from 'vitest'
import type { GuardEnv } from '../../src/config'
import worker from '../../src/worker'
import {
  chunk,
  FALLBACK,
  ROUTES,
  setupGuard,
  sse,
  withLength,
  type GuardSetup,
} from '../guard-helpers'
import type { ScriptedModel } from '../helpers'
import type { StubScript, StubStep, UpstreamReply } from '../stub/openai-stub'

/** Callers' tokens (GUARD_TOKENS): two, as during a rotation. Each at least 16 characters. */
export const CALLER_TOKEN = 'caller-token-7d1f3a9c5e2b4f60'
export const CALLER_TOKEN_2 = 'caller-token-b2e8c4d6a0f19375'
/** An operator's token (GUARD_OPERATOR_TOKENS): a caller who also sees the details. */
export const OPERATOR_TOKEN = 'operator-token-4a6c8e0b2d1f3957'
export const OPERATOR_TOKEN_2 = 'operator-token-90e1d2c3b4a5f687'

/** What the upstream answers in these tests: a marker no guard response may carry unjudged. */
export const UPSTREAM_ANSWER = 'UPSTREAM-ANSWER-3f9c1e'

export const GENERIC_MISCONFIGURED = {
  error: {
    type: 'guard_misconfigured',
    message: "The guard is misconfigured. Its operator can find the reason in the Worker's logs.",
  },
}

/** Settings of the design that GuardEnv does not name yet. */
export type SecurityEnv = Partial<GuardEnv> & Record<string, unknown>

/**
 * Settings whose defaults these tests are about. Unset here, so that a default setupGuard may
 * give them one day (to keep older suites as they were) never reaches this suite.
 */
const DESIGN_DEFAULTS: SecurityEnv = Object.fromEntries(
  [
    'ON_ERROR',
    'ON_UNJUDGEABLE',
    'GUARD_DETAILS',
    'CACHE_SCOPE',
    'CACHE_SECRET',
    'PASS_THROUGH',
    'GUARD_TOKEN_HEADER',
    'UPSTREAM_HEADERS',
    'GUARD_RATE_LIMIT',
    'MAX_BODY_BYTES',
    'NO_DOCUMENTS_SCORE',
    'JUDGE_MAX_DOCUMENTS',
    'JUDGE_MAX_INPUT_CHARS',
    'JUDGE_INPUT_OVERFLOW',
    'JUDGE_MIN_MASS',
    'JUDGE_HISTORY_TURNS',
    'STREAM_MODE',
    'ACCESS_TEAM_DOMAIN',
    'ACCESS_AUD',
    'ACCESS_OPERATORS',
  ].map((name) => [name, undefined]),
)

/** The settings every test starts from: token auth with two callers and two operators. */
export const SECURE_ENV: SecurityEnv = {
  ...DESIGN_DEFAULTS,
  GUARD_AUTH: 'token',
  GUARD_TOKENS: `${CALLER_TOKEN}, ${CALLER_TOKEN_2}`,
  GUARD_OPERATOR_TOKENS: `${OPERATOR_TOKEN}\n${OPERATOR_TOKEN_2}`,
}

/** The guard's routes (those of guard-helpers) and a json route whose block is a 422. */
export const SECURE_ROUTES = [...ROUTES, { path: '/ask-422', format: 'json' }]

/** Who sends a request: a caller, an operator, nobody (no credential), or these headers. */
export type Sender = 'caller' | 'operator' | 'nobody' | { token: string }

export interface SecureSetup extends GuardSetup {
  /**
   * Sends `path` (written as is after the origin: `//ask`, `/%61sk` and `/ask;x=1` stay what they
   * are) as `who`. The token goes in `Authorization: Bearer …` unless `init` sets that header.
   */
  send(path: string, init?: RequestInit, who?: Sender): Promise<Response>
}

export const ORIGIN = 'https://guard.example.com'

/** setupGuard with the design's caller check on, and a send that keeps the path as written. */
export async function secureGuard(
  reply: UpstreamReply | UpstreamReply[],
  judge: StubStep | StubScript,
  extra: SecurityEnv = {},
): Promise<SecureSetup> {
  const setup = await setupGuard(
    reply,
    judge as StubStep,
    {
      GUARD_ROUTES: SECURE_ROUTES,
      ...SECURE_ENV,
      ...extra,
    } as Partial<GuardEnv>,
  )
  const contexts: ExecutionContext[] = []
  return {
    ...setup,
    async send(path, init = {}, who = 'caller') {
      const headers = new Headers(init.headers)
      const token =
        who === 'caller'
          ? CALLER_TOKEN
          : who === 'operator'
            ? OPERATOR_TOKEN
            : who === 'nobody'
              ? undefined
              : who.token
      if (token !== undefined && !headers.has('authorization'))
        headers.set('authorization', `Bearer ${token}`)
      const ctx = createExecutionContext()
      contexts.push(ctx)
      const request = new Request(`${ORIGIN}${path}`, withLength({ ...init, headers }))
      return worker.fetch(request as Parameters<typeof worker.fetch>[0], setup.env, ctx)
    },
    async settle() {
      await setup.settle()
      await Promise.all(contexts.map((ctx) => waitOnExecutionContext(ctx)))
    },
  }
}

/** A JSON request body. */
export const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
})

/** A LangServe stream whose answer is the marker, with one document. */
export const LANGSERVE_EVENTS = sse(
  { event: 'metadata', data: { run_id: 'run-1' } },
  { event: 'data', data: { input: 'Which company manufactures the bikes?' } },
  {
    event: 'data',
    data: { context: [{ page_content: 'The bikes are blue.', metadata: {}, type: 'Document' }] },
  },
  { event: 'data', data: { answer: UPSTREAM_ANSWER } },
  { event: 'end' },
)

/** An OpenAI chat stream whose answer is the marker. */
export const CHAT_EVENTS = sse(
  { data: chunk({ role: 'assistant', content: '' }) },
  { data: chunk({ content: UPSTREAM_ANSWER }) },
  { data: chunk({}, 'stop') },
  { data: '[DONE]' },
)

/** A chat.completion whose answer is the marker. */
export const CHAT_COMPLETION = {
  id: 'chatcmpl-up1',
  object: 'chat.completion',
  created: 1_760_000_000,
  model: 'rag-model',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: UPSTREAM_ANSWER, refusal: null },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
}

/** A LangServe /invoke output whose answer is the marker. */
export const LANGSERVE_OUTPUT = {
  output: {
    input: 'Which company manufactures the bikes?',
    context: [{ page_content: 'The bikes are blue.', metadata: {}, type: 'Document' }],
    answer: UPSTREAM_ANSWER,
  },
  metadata: { run_id: 'run-1', feedback_tokens: [] },
}

/** An upstream reply streaming these events. */
export const streamed = (events: string[]): UpstreamReply => ({
  headers: { 'content-type': 'text/event-stream' },
  chunks: events,
})

/** Every `x-rag-guard-*` header of a response, by name. */
export function guardHeaders(response: Response): Record<string, string> {
  return Object.fromEntries(
    [...response.headers].filter(([name]) => name.toLowerCase().startsWith('x-rag-guard-')),
  )
}

/** The number of requests a scripted stub received. */
export async function calls(stub: ScriptedModel): Promise<number> {
  return (await stub.requests()).length
}

/** Method, path and body size of each request a stub received (bodies too large to fetch back). */
export async function requestSizes(
  stub: ScriptedModel,
): Promise<Array<{ method: string; path: string; bodyBytes: number }>> {
  const id = stub.root.split('/s/')[1]!
  const response = await fetch(`${env.STUB_ORIGIN}/__scenarios/${id}/sizes`)
  return (await response.json()) as Array<{ method: string; path: string; bodyBytes: number }>
}

/** The text the judge was given (every message of its first request, joined). */
export async function judgePrompt(judge: ScriptedModel, index = 0): Promise<string> {
  const request = (await judge.requests())[index]
  expect(request, 'the judge received a request').toBeDefined()
  const body = request!.body as { messages?: Array<{ content: unknown }> }
  return (body.messages ?? [])
    .map((message) => (typeof message.content === 'string' ? message.content : ''))
    .join('\n')
}

/**
 * A refusal of a request the guard cannot judge (ON_UNJUDGEABLE=block in enforce mode): the
 * status, `x-rag-guard-verdict: block`, the reason (header when `details`), the error body.
 */
export async function expectRefused(
  response: Response,
  status: number,
  reason: string,
  details = true,
): Promise<void> {
  expect(response.status).toBe(status)
  expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
  if (details) expect(response.headers.get('x-rag-guard-reason')).toBe(reason)
  const body = (await response.json()) as { error?: { type?: unknown; reason?: unknown } }
  expect(body.error?.type).toBe('unjudgeable_request')
  expect(body.error?.reason).toBe(reason)
}

/** A blocked answer: verdict block, the fallback in place of the upstream's answer. */
export async function expectBlockedAnswer(response: Response): Promise<string> {
  expect(response.headers.get('x-rag-guard-verdict')).toBe('block')
  const text = await response.text()
  expect(text).not.toContain(UPSTREAM_ANSWER)
  expect(text).toContain(FALLBACK)
  return text
}

/** sha256 of a text, in hex. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * The documents' hash as docs/reference/formats.md defines `contextHash`: SHA-256 of each
 * document behind its length in UTF-16 code units and a colon (well-formed texts).
 */
export function documentsHash(documents: readonly string[]): Promise<string> {
  return sha256Hex(documents.map((document) => `${document.length}:${document}`).join(''))
}

/** `text` compressed with a CompressionStream format. */
export async function compress(
  text: string,
  format: 'gzip' | 'deflate' | 'deflate-raw',
): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream(format))
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

// ---------------------------------------------------------------------------------------------
// Cloudflare Access: RS256 tokens signed here, public keys served by the stub.

const base64url = (bytes: Uint8Array | string): string => {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes
  let binary = ''
  for (const byte of data) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export interface SigningKey {
  kid: string
  privateKey: CryptoKey
  publicJwk: JsonWebKey
}

/** A fresh RS256 key pair. */
export async function rsaKey(kid: string): Promise<SigningKey> {
  const pair = (await crypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair
  const publicJwk = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JsonWebKey
  return { kid, privateKey: pair.privateKey, publicJwk }
}

/** Publishes the key's public half at the stub's `/cdn-cgi/access/certs`. */
export async function publishKey(key: SigningKey): Promise<void> {
  const response = await fetch(`${env.STUB_ORIGIN}/__jwks/${encodeURIComponent(key.kid)}`, {
    method: 'PUT',
    body: JSON.stringify({ ...key.publicJwk, kid: key.kid, alg: 'RS256', use: 'sig' }),
  })
  if (response.status !== 204) throw new Error(`publishing the key failed: ${response.status}`)
}

/** A JWT with this header and payload, signed RS256 with `key` (or unsigned, `alg: none`). */
export async function signJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key?: CryptoKey,
): Promise<string> {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`
  if (!key) return `${input}.`
  const signature = await crypto.subtle.sign(
    'RSASSA-PKCS1-v1_5',
    key,
    new TextEncoder().encode(input),
  )
  return `${input}.${base64url(new Uint8Array(signature))}`
}

/** An HS256 JWT whose secret is `secret` (the public key's text, in an algorithm confusion). */
export async function signHs256(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  secret: string,
): Promise<string> {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  const signature = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(input))
  return `${input}.${base64url(new Uint8Array(signature))}`
}

export { FALLBACK, sse }
