/**
 * Helpers of the review suite (issue 18): the guard Worker with a decision store on Miniflare's
 * local D1 (TEST_DB, the schema of src/review/migrations/ applied), rows read back, the review page's forms.
 */
import { env } from 'cloudflare:workers'
import { applyD1Migrations } from 'cloudflare:test'
import { expect } from 'vitest'
import { postJson } from '../guard-helpers'
import { secureGuard, type SecureSetup, type SecurityEnv, type Sender } from '../security/helpers'
import type { StubScript, StubStep, UpstreamReply } from '../stub/openai-stub'
import type { DecisionRecord } from '../../src/guard/decision-log'
import type { DecisionRow } from '../../src/review/store'

export { OPERATOR_TOKEN, CALLER_TOKEN, ORIGIN } from '../security/helpers'

/** The schema applied, and no rows: each test starts from an empty store. */
export async function emptyStore(): Promise<D1Database> {
  await applyD1Migrations(env.TEST_DB, env.REVIEW_MIGRATIONS)
  await env.TEST_DB.batch([
    env.TEST_DB.prepare('DELETE FROM reviews'),
    env.TEST_DB.prepare('DELETE FROM decisions'),
    env.TEST_DB.prepare('DELETE FROM sessions'),
    env.TEST_DB.prepare('DELETE FROM content_usage'),
    env.TEST_DB.prepare('DELETE FROM rollup_decisions'),
    env.TEST_DB.prepare('DELETE FROM rollup_checks'),
  ])
  return env.TEST_DB
}

/**
 * The settings of a guard with a store: token callers and operators, shadow mode, every pass
 * kept, and the rollups written as soon as the request that opened them is done (so that
 * `settle()` does not wait the default 10 s).
 */
export const STORE_ENV: SecurityEnv = {
  GUARD_DB: undefined,
  GUARD_MODE: 'shadow',
  STORE_PASS_RATE: 1,
  ROLLUP_FLUSH_SECONDS: 0,
  LOG_DECISIONS: false,
  CACHE_TTL_SECONDS: 0,
}

/** The guard with its store on TEST_DB (emptied first). */
export async function storeGuard(
  reply: UpstreamReply | UpstreamReply[],
  judge: StubStep | StubScript,
  extra: SecurityEnv = {},
): Promise<SecureSetup & { db: D1Database }> {
  const db = await emptyStore()
  const setup = await secureGuard(reply, judge, { ...STORE_ENV, GUARD_DB: db, ...extra })
  return { ...setup, db }
}

/** A row of `decisions`, as stored. */
export type StoredRow = DecisionRow

export async function storedRows(db: D1Database = env.TEST_DB): Promise<StoredRow[]> {
  const { results } = await db.prepare('SELECT * FROM decisions ORDER BY time, id').all<StoredRow>()
  return results
}

/** A json request with its context, for the `/ask` route (answer at `/answer`). */
export const ask = (question: string, context: string[], headers: Record<string, string> = {}) =>
  postJson({ question, context }, { headers: { 'content-type': 'application/json', ...headers } })

/** The page as an operator's browser asks for it (`Accept: text/html`). */
export const asHtml: RequestInit = { headers: { accept: 'text/html' } }

/** The form token of a review page. */
export function formTokenOf(html: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(html)
  expect(match, 'the page has a form token').not.toBeNull()
  return match![1]!
}

/** A form post (application/x-www-form-urlencoded) to the review page. */
export function formPost(
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  }
}

/**
 * A response's text, decoded as the UTF-8 every guard page and export declares. `.text()` would
 * do the same, but workerd warns when it is called on a type it does not know as text (the
 * export's `application/jsonl`), and a green run should print nothing it need not.
 */
export async function utf8(response: Response): Promise<string> {
  return new TextDecoder().decode(await response.arrayBuffer())
}

/** Sends as `who`, and reads the text of the response. */
export async function pageText(
  setup: SecureSetup,
  path: string,
  who: Sender = 'operator',
): Promise<{ status: number; text: string; response: Response }> {
  const response = await setup.send(path, asHtml, who)
  return { status: response.status, text: await utf8(response), response }
}

/** A stored row's record, parsed. */
export const recordOf = (row: StoredRow) => JSON.parse(row.record) as Record<string, unknown>

/** A decision-log record of a passed sufficiency check on /ask, with `extra` over it. */
export function decisionRecord(extra: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    message: 'rag-guard decision',
    time: '2026-11-24T10:02:11.512Z',
    requestId: 'req',
    route: '/ask',
    path: '/ask',
    method: 'POST',
    format: 'json',
    mode: 'shadow',
    verdict: 'pass',
    applied: false,
    score: 0.9,
    check: 'sufficiency',
    estimator: 'logprobs',
    model: 'judge-model',
    judgeLatencyMs: 120,
    cache: 'miss',
    addedLatencyMs: 0,
    status: 200,
    promptVersion: 'sufficiency-v',
    ...extra,
  }
}
