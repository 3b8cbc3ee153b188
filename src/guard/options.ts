/**
 * The options of `ragGuard()`: their types, defaults and ranges, defined once. The Worker's
 * config reads its `[vars]` through the same definitions (`env` names the variable).
 */
import type { Context } from 'hono'
import { ConfigurationError } from '../errors'
import { createFormat, type ContextLocation, type FormatName, type RouteFormat } from '../formats'
import { createJudge, type Judge, type JudgeOptions } from '../judge/judge'
import type { VerdictCache } from '../judge/cache'
import { CHECKS, type Check } from '../judge/prompt'
import { GRANULARITIES, type Granularity } from '../judge/sentences'
import {
  boolean,
  check,
  choice,
  custom,
  fraction,
  integer,
  text,
  wordList,
  type Setting,
} from '../settings'
import type { DecisionContent, DecisionRecord } from './decision-log'
import type { DecisionPolicy, GuardDecision, GuardMode } from './decision'
import {
  DEFAULT_THRESHOLDS,
  validateThresholds,
  VERDICTS,
  type Thresholds,
  type Verdict,
} from './policy'

export type StreamMode = 'hold' | 'annotate'
/** Who sees a decision's details (score, reason, cache status, mode). */
export type DetailsAudience = 'operators' | 'everyone' | 'nobody'
export type CacheScope = 'caller' | 'shared'
export type InputOverflow = 'truncate' | 'refuse'
/** What a groundedness block does: block the answer, or send it without its unsupported sentences. */
export type OnUngrounded = 'block' | 'repair'

export const DEFAULT_FALLBACK_MESSAGE = "I can't answer that reliably from the information I have."

const isFunction = (value: unknown) => typeof value === 'function'

/** Every option of the middleware that has a type, a range or a default, with its Worker name. */
export const GUARD_SETTINGS = {
  checks: wordList(
    (word) => (CHECKS as readonly string[]).includes(word),
    '"sufficiency", "groundedness", or both',
    { env: 'GUARD_CHECKS', default: ['sufficiency'] },
  ),
  blockBelow: fraction({ env: 'BLOCK_BELOW', default: DEFAULT_THRESHOLDS.blockBelow }),
  flagBelow: fraction({ env: 'FLAG_BELOW', default: DEFAULT_THRESHOLDS.flagBelow }),
  groundednessBlockBelow: fraction({
    env: 'GROUNDEDNESS_BLOCK_BELOW',
    default: DEFAULT_THRESHOLDS.blockBelow,
  }),
  groundednessFlagBelow: fraction({
    env: 'GROUNDEDNESS_FLAG_BELOW',
    default: DEFAULT_THRESHOLDS.flagBelow,
  }),
  groundednessGranularity: choice(GRANULARITIES, {
    env: 'GROUNDEDNESS_GRANULARITY',
    default: 'answer',
  }),
  onUngrounded: choice(['block', 'repair'], { env: 'ON_UNGROUNDED', default: 'block' }),
  mode: choice(['enforce', 'shadow'], {
    env: 'GUARD_MODE',
    default: 'enforce',
    workerDefault: 'shadow',
  }),
  onError: choice(VERDICTS, { env: 'ON_ERROR', default: 'flag' }),
  onUnjudgeable: choice(VERDICTS, { env: 'ON_UNJUDGEABLE', default: 'block' }),
  noDocumentsScore: fraction({ env: 'NO_DOCUMENTS_SCORE', default: 0 }),
  maxDocuments: integer(1, 10_000, { env: 'JUDGE_MAX_DOCUMENTS', default: 64 }),
  maxInputChars: integer(1_000, 10_000_000, {
    unit: 'characters',
    env: 'JUDGE_MAX_INPUT_CHARS',
    default: 200_000,
  }),
  inputOverflow: choice(['truncate', 'refuse'], {
    env: 'JUDGE_INPUT_OVERFLOW',
    default: 'truncate',
  }),
  historyTurns: integer(0, 50, { env: 'JUDGE_HISTORY_TURNS', default: 4 }),
  maxBatchItems: integer(1, 1_000, { env: 'JUDGE_MAX_BATCH', default: 16 }),
  fallbackMessage: text({ env: 'FALLBACK_MESSAGE', default: DEFAULT_FALLBACK_MESSAGE }),
  streamMode: choice(['hold', 'annotate'], { env: 'STREAM_MODE', default: 'hold' }),
  streamBufferBytes: integer(1024, 33_554_432, {
    unit: 'bytes',
    env: 'STREAM_BUFFER_BYTES',
    default: 1_048_576,
  }),
  logContent: boolean({ env: 'LOG_CONTENT', default: false }),
  maxBodyBytes: integer(1024, 134_217_728, {
    unit: 'bytes',
    env: 'MAX_BODY_BYTES',
    default: 4_194_304,
  }),
  details: choice(['operators', 'everyone', 'nobody'], {
    env: 'GUARD_DETAILS',
    default: 'operators',
  }),
  cacheScope: choice(['caller', 'shared'], { env: 'CACHE_SCOPE', default: 'caller' }),
  isOperator: custom<NonNullable<RagGuardOptions['isOperator']>>(isFunction, 'a function'),
  callerId: custom<NonNullable<RagGuardOptions['callerId']>>(isFunction, 'a function'),
  blockResponse: custom<NonNullable<RagGuardOptions['blockResponse']>>(isFunction, 'a function'),
  onDecision: custom<NonNullable<RagGuardOptions['onDecision']>>(isFunction, 'a function'),
  cache: custom<VerdictCache>(
    (value) =>
      typeof value === 'object' &&
      value !== null &&
      isFunction((value as VerdictCache).get) &&
      isFunction((value as VerdictCache).put),
    'a verdict cache with get and put (cacheApiStore, kvStore)',
  ),
} satisfies Record<string, Setting<unknown>>

export const DEFAULT_STREAM_BUFFER_BYTES = GUARD_SETTINGS.streamBufferBytes.default!
export const DEFAULT_MAX_BODY_BYTES = GUARD_SETTINGS.maxBodyBytes.default!

export interface RagGuardOptions {
  /** The judge: one made by `createJudge`, or the options to make one. */
  judge: Judge | JudgeOptions
  /**
   * How the endpoint carries question, context and answer: `'json'` (JSON Pointers below),
   * `'openai-chat'` (chat completions), `'langserve'` (LangServe / retrieval-chain output), or
   * a `RouteFormat` of your own.
   * @default 'json'
   */
  format?: FormatName | RouteFormat
  /**
   * JSON Pointer (RFC 6901) to the question in the request body (`json`, `langserve`).
   * @default '/question' for json; the input for langserve
   */
  question?: string
  /**
   * Where the retrieved context is: a JSON Pointer into the request body, or
   * `{ in: 'request' | 'response', pointer }`; `'system'` for openai-chat. The value there is a
   * string, an array of strings, or an array of documents (`pageContent`, `page_content` or
   * `content`).
   * @default '/context' for json; 'system' for openai-chat; '/output/context' for langserve
   */
  context?: ContextLocation | 'system'
  /**
   * JSON Pointer to the answer in the response body (`json`, `langserve`). On block, the answer
   * there is replaced by `fallbackMessage`. For json without it, a block answers 422 with an
   * `insufficient_context` error.
   */
  answer?: string
  /**
   * What to ask the judge: `'sufficiency'` (do the documents suffice to answer the question?),
   * `'groundedness'` (is every statement of the answer supported by them?), or both. With both,
   * the verdict is the most severe, and the decision says which check decided. Groundedness needs
   * the whole answer: it starts when the answer is complete, and in a stream it can block only in
   * hold mode.
   * @default ['sufficiency']
   */
  checks?: Check[]
  /** Sufficiency scores below this are blocked. @default 0.1 */
  blockBelow?: number
  /** Sufficiency scores below this are flagged. @default 0.5 */
  flagBelow?: number
  /** Groundedness scores below this are blocked. @default 0.1 */
  groundednessBlockBelow?: number
  /** Groundedness scores below this are flagged. @default 0.5 */
  groundednessFlagBelow?: number
  /**
   * The groundedness check judges the answer whole (`'answer'`), or each of its sentences
   * (`'sentence'`: one judge call, one `i: True`/`i: False` line per sentence, each sentence
   * scored at its line's answer token; the answer's score is the lowest sentence's). More
   * sentences than the judge's `maxSentences`: judged whole.
   * @default 'answer'
   */
  groundednessGranularity?: Granularity
  /**
   * What a groundedness block does at sentence granularity: `'block'` replaces the answer with
   * `fallbackMessage`; `'repair'` sends it without the sentences scored below
   * `groundednessBlockBelow`, flagged (reason `repaired`, the removed sentences' numbers in the
   * decision). When no sentence would be left, or more than half would go, it blocks.
   * @default 'block'
   */
  onUngrounded?: OnUngrounded
  /**
   * `enforce` applies the verdict; `shadow` never alters the response and only reports, in
   * `c.var.ragGuard` and the decision record (and to operators, in headers), what it would have done.
   * @default 'enforce'
   */
  mode?: GuardMode
  /**
   * Verdict when the judge fails to give a score (timeout, HTTP error, no logprobs, an answer
   * other than True/False, too little mass on True and False).
   * @default 'flag'
   */
  onError?: Verdict
  /**
   * Verdict for input the guard cannot judge: a body it cannot read, a question or context of a
   * shape the route does not read, a request or answer past the limits, a stream it cannot hold.
   * Whatever a client sends, it never chooses an unjudged pass: with `'block'`, a problem seen in
   * the request is refused at once with a 4xx that names it (the handler is not called), and one
   * seen in the answer replaces the answer with `fallbackMessage`.
   * @default 'block'
   */
  onUnjudgeable?: Verdict
  /**
   * The score of an answer for which no documents were retrieved (nothing can support it); the
   * judge is not asked. The verdict then comes from the thresholds.
   * @default 0
   */
  noDocumentsScore?: number
  /** The most documents the judge is given. @default 64 */
  maxDocuments?: number
  /**
   * The most characters of question, earlier turns and documents the judge is given.
   * @default 200000
   */
  maxInputChars?: number
  /**
   * Past `maxDocuments` or `maxInputChars`: `'truncate'` judges the first documents that fit
   * (the decision says `truncated`), `'refuse'` makes the request unjudgeable
   * (`judge-input-too-large`). A question alone over the limit is always unjudgeable.
   * @default 'truncate'
   */
  inputOverflow?: InputOverflow
  /** Earlier user and assistant turns of a chat given to the judge with the question (openai-chat). @default 4 */
  historyTurns?: number
  /** The most inputs of one LangServe `/batch` request, or choices of one chat completion (`n`), that are judged; past it, unjudgeable. @default 16 */
  maxBatchItems?: number
  /**
   * Who sees a decision's details — the `x-rag-guard-score`, `-reason`, `-cache` and `-mode`
   * headers, and the score in a block body or a stream annotation: `'operators'` (requests for
   * which `isOperator` says yes), `'everyone'` or `'nobody'`. `x-rag-guard-verdict` is always sent
   * in enforce mode; in shadow mode, only to those who see details. The decision record always
   * has everything.
   * @default 'operators'
   */
  details?: DetailsAudience
  /** Whether a request comes from an operator, who may see details. @default nobody is */
  isOperator?: (c: Context) => boolean | Promise<boolean>
  /**
   * `'caller'`: a cached score is only reused for the same caller (`callerId`), so one caller
   * learns nothing of another's questions; `'shared'`: any caller's.
   * @default 'caller'
   */
  cacheScope?: CacheScope
  /** Who is calling, for `cacheScope: 'caller'` (e.g. a user id or a token's hash). @default one caller for all */
  callerId?: (c: Context) => string | undefined
  /**
   * The answer a blocked response carries.
   * @default "I can't answer that reliably from the information I have."
   */
  fallbackMessage?: string
  /**
   * Builds the response for a block, in place of the default (the answer replaced, or a 422).
   * The handler's response is still at `c.res`.
   */
  blockResponse?: (c: Context, decision: GuardDecision) => Response | Promise<Response>
  /**
   * Streamed answers (server-sent events) in enforce mode: `'hold'` keeps the upstream stream in
   * a buffer until the verdict is known, then sends it on or replaces it with a fallback stream;
   * `'annotate'` sends every chunk at once and appends one `rag_guard` event with the verdict
   * after the stream's own end (it can flag, never block). In shadow mode streams always pass
   * at once, and the verdict only goes to `onDecision`.
   * @default 'hold'
   */
  streamMode?: StreamMode
  /**
   * Hold mode's buffer limit, 1024 to 33554432. Past it, the `onError` verdict applies with
   * reason `stream-buffer-exceeded`.
   * @default 1048576
   * @unit bytes
   */
  streamBufferBytes?: number
  /** A verdict cache (`cacheApiStore`, `kvStore`): a repeated question and context skip the judge. */
  cache?: VerdictCache
  /**
   * Receives one record per guarded request (after the response is sent when possible), and what
   * it was about (question, documents, answer) for a sink with its own content policy. A promise
   * it returns is waited for (`waitUntil`), never by the response.
   */
  onDecision?: (record: DecisionRecord, content: DecisionContent) => unknown
  /** Put the question and the documents themselves in the decision record, not only their hashes. @default false */
  logContent?: boolean
  /**
   * The largest body the guard reads whole, 1024 to 134217728: a guarded request's body (after
   * decoding gzip or deflate), and a response body read for its context or to replace its
   * answer. A larger request or answer is unjudgeable (`request-too-large`, `response-too-large`).
   * @default 4194304
   * @unit bytes
   */
  maxBodyBytes?: number
}

/** The options, checked, with every default filled in. */
export interface GuardSettings extends DecisionPolicy {
  judge: Judge
  groundednessGranularity: Granularity
  onUngrounded: OnUngrounded
  format: RouteFormat
  checks: readonly Check[]
  maxDocuments: number
  maxInputChars: number
  inputOverflow: InputOverflow
  historyTurns: number
  maxBatchItems: number
  fallbackMessage: string
  blockResponse?: RagGuardOptions['blockResponse']
  streamMode: StreamMode
  streamBufferBytes: number
  cache?: VerdictCache
  onDecision?: RagGuardOptions['onDecision']
  logContent: boolean
  maxBodyBytes: number
  details: DetailsAudience
  isOperator?: RagGuardOptions['isOperator']
  cacheScope: CacheScope
  callerId?: RagGuardOptions['callerId']
}

/** Options that were removed, and what took their place. */
const REMOVED: Record<string, string> = {
  onMissingInput:
    'it is now "onUnjudgeable" (default "block"), which also covers input the guard cannot read',
  onOversize: 'a request over "maxBodyBytes" is now unjudgeable: "onUnjudgeable" decides it',
}

const OWNER = 'RAG Guard middleware'

function isJudge(value: Judge | JudgeOptions): value is Judge {
  return typeof (value as Judge).judge === 'function'
}

/** The checks a guard runs, and each one's thresholds. */
export interface ResolvedChecks {
  /** Each check once, in the order given. */
  checks: Check[]
  thresholds: Thresholds
  groundednessThresholds: Thresholds
}

/**
 * `checks` and the thresholds of each check, checked as every form of the guard checks them
 * (the middleware, the LangChain forms): `owner` opens a message.
 */
export function resolveChecks(
  owner: string,
  options: Pick<
    RagGuardOptions,
    'checks' | 'blockBelow' | 'flagBelow' | 'groundednessBlockBelow' | 'groundednessFlagBelow'
  >,
): ResolvedChecks {
  const option = <K extends keyof ResolvedChecksOptions>(name: K) =>
    check<(typeof GUARD_SETTINGS)[K]>(owner, name, GUARD_SETTINGS[name], options[name])
  return {
    checks: [...new Set(option('checks'))] as Check[],
    thresholds: validateThresholds(
      { blockBelow: option('blockBelow'), flagBelow: option('flagBelow') },
      { blockBelow: '"blockBelow"', flagBelow: '"flagBelow"' },
      owner,
    ),
    groundednessThresholds: validateThresholds(
      {
        blockBelow: option('groundednessBlockBelow'),
        flagBelow: option('groundednessFlagBelow'),
      },
      { blockBelow: '"groundednessBlockBelow"', flagBelow: '"groundednessFlagBelow"' },
      owner,
    ),
  }
}

type ResolvedChecksOptions = Pick<
  typeof GUARD_SETTINGS,
  'checks' | 'blockBelow' | 'flagBelow' | 'groundednessBlockBelow' | 'groundednessFlagBelow'
>

/** Checks the options once, at construction. Throws a {@link ConfigurationError} naming the first wrong one. */
export function resolveOptions(options: RagGuardOptions): GuardSettings {
  if (typeof options !== 'object' || options === null || !options.judge) {
    throw new ConfigurationError(`${OWNER} requires the "judge" option`, 'judge')
  }
  const option = <K extends keyof typeof GUARD_SETTINGS>(name: K) =>
    check<(typeof GUARD_SETTINGS)[K]>(OWNER, name, GUARD_SETTINGS[name], options[name])
  for (const [name, instead] of Object.entries(REMOVED)) {
    if (name in options) {
      throw new ConfigurationError(`${OWNER}: "${name}" was removed: ${instead}`, name)
    }
  }
  const { checks, thresholds, groundednessThresholds } = resolveChecks(OWNER, options)
  const format =
    typeof options.format === 'object'
      ? options.format
      : createFormat(options.format ?? 'json', {
          question: options.question,
          context: options.context,
          answer: options.answer,
        })
  if (checks.includes('groundedness') && !format.readAnswer) {
    throw new ConfigurationError(
      `${OWNER}: "checks" has "groundedness", which needs the answer: set "answer" to the JSON Pointer of the answer in the response`,
      'answer',
    )
  }
  return {
    judge: isJudge(options.judge) ? options.judge : createJudge(options.judge),
    format,
    checks,
    thresholds,
    groundednessThresholds,
    groundednessGranularity: option('groundednessGranularity'),
    onUngrounded: option('onUngrounded'),
    mode: option('mode'),
    onError: option('onError'),
    onUnjudgeable: option('onUnjudgeable'),
    noDocumentsScore: option('noDocumentsScore'),
    maxDocuments: option('maxDocuments'),
    maxInputChars: option('maxInputChars'),
    inputOverflow: option('inputOverflow'),
    historyTurns: option('historyTurns'),
    maxBatchItems: option('maxBatchItems'),
    fallbackMessage: option('fallbackMessage'),
    blockResponse: options.blockResponse && option('blockResponse'),
    streamMode: option('streamMode'),
    streamBufferBytes: option('streamBufferBytes'),
    cache: options.cache && option('cache'),
    onDecision: options.onDecision && option('onDecision'),
    logContent: option('logContent'),
    maxBodyBytes: option('maxBodyBytes'),
    details: option('details'),
    isOperator: options.isOperator && option('isOperator'),
    cacheScope: option('cacheScope'),
    callerId: options.callerId && option('callerId'),
  }
}
