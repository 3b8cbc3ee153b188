/**
 * The options of `ragGuard()`: their types, defaults and ranges, defined once. The Worker's
 * config reads its `[vars]` through the same definitions (`env` names the variable).
 */
import type { Context } from 'hono'
import { ConfigurationError } from '../errors'
import { createFormat, type ContextLocation, type FormatName, type RouteFormat } from '../formats'
import { createJudge, type Judge, type JudgeOptions } from '../judge/judge'
import type { VerdictCache } from '../judge/cache'
import { boolean, check, choice, custom, fraction, integer, text, type Setting } from '../settings'
import type { DecisionRecord } from './decision-log'
import type { GuardDecision, GuardMode } from './decision'
import {
  DEFAULT_THRESHOLDS,
  validateThresholds,
  VERDICTS,
  type Thresholds,
  type Verdict,
} from './policy'

export type StreamMode = 'hold' | 'annotate'
export type OversizePolicy = 'reject' | 'pass'

export const DEFAULT_FALLBACK_MESSAGE = "I can't answer that reliably from the information I have."

const isFunction = (value: unknown) => typeof value === 'function'

/** Every option of the middleware that has a type, a range or a default, with its Worker name. */
export const GUARD_SETTINGS = {
  blockBelow: fraction({ env: 'BLOCK_BELOW', default: DEFAULT_THRESHOLDS.blockBelow }),
  flagBelow: fraction({ env: 'FLAG_BELOW', default: DEFAULT_THRESHOLDS.flagBelow }),
  mode: choice(['enforce', 'shadow'], {
    env: 'GUARD_MODE',
    default: 'enforce',
    workerDefault: 'shadow',
  }),
  onError: choice(VERDICTS, { env: 'ON_ERROR', default: 'flag' }),
  /** No default of its own: the `onError` verdict. The Worker uses ON_ERROR for both. */
  onMissingInput: choice(VERDICTS),
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
  onOversize: choice(['reject', 'pass'], { env: 'ON_OVERSIZE', default: 'reject' }),
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
  /** Scores below this are blocked. @default 0.1 */
  blockBelow?: number
  /** Scores below this are flagged. @default 0.5 */
  flagBelow?: number
  /**
   * `enforce` applies the verdict; `shadow` never alters the response and only reports, in
   * headers and in `c.var.ragGuard`, what it would have done.
   * @default 'enforce'
   */
  mode?: GuardMode
  /**
   * Verdict when the judge gives no score (timeout, HTTP error, no logprobs, an answer other
   * than True/False), and when a response cannot be read for its context.
   * @default 'flag'
   */
  onError?: Verdict
  /**
   * Verdict when the request has no usable question or context (body not JSON, pointer
   * missing, wrong type, empty).
   * @default the `onError` verdict
   */
  onMissingInput?: Verdict
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
  /** Receives one record per guarded request (after the response is sent when possible). */
  onDecision?: (record: DecisionRecord) => void
  /** Put the question and the documents themselves in the decision record, not only their hashes. @default false */
  logContent?: boolean
  /**
   * The largest body the guard reads whole, 1024 to 134217728: a guarded request's body, and a
   * response body read for its context or to replace its answer. A larger request is refused
   * with 413 or passed on unjudged (`onOversize`); a larger response is passed on unjudged with
   * the `onError` verdict.
   * @default 4194304
   * @unit bytes
   */
  maxBodyBytes?: number
  /** What to do with a request body over `maxBodyBytes`: `'reject'` (413) or `'pass'` (unjudged). @default 'reject' */
  onOversize?: OversizePolicy
}

/** The options, checked, with every default filled in. */
export interface GuardSettings {
  judge: Judge
  format: RouteFormat
  thresholds: Thresholds
  mode: GuardMode
  onError: Verdict
  onMissingInput: Verdict
  fallbackMessage: string
  blockResponse?: RagGuardOptions['blockResponse']
  streamMode: StreamMode
  streamBufferBytes: number
  cache?: VerdictCache
  onDecision?: RagGuardOptions['onDecision']
  logContent: boolean
  maxBodyBytes: number
  onOversize: OversizePolicy
}

const OWNER = 'RAG Guard middleware'

function isJudge(value: Judge | JudgeOptions): value is Judge {
  return typeof (value as Judge).judge === 'function'
}

/** Checks the options once, at construction. Throws a {@link ConfigurationError} naming the first wrong one. */
export function resolveOptions(options: RagGuardOptions): GuardSettings {
  if (typeof options !== 'object' || options === null || !options.judge) {
    throw new ConfigurationError(`${OWNER} requires the "judge" option`, 'judge')
  }
  const option = <K extends keyof typeof GUARD_SETTINGS>(name: K) =>
    check<(typeof GUARD_SETTINGS)[K]>(OWNER, name, GUARD_SETTINGS[name], options[name])
  const onError = option('onError')
  return {
    judge: isJudge(options.judge) ? options.judge : createJudge(options.judge),
    format:
      typeof options.format === 'object'
        ? options.format
        : createFormat(options.format ?? 'json', {
            question: options.question,
            context: options.context,
            answer: options.answer,
          }),
    thresholds: validateThresholds(
      { blockBelow: option('blockBelow'), flagBelow: option('flagBelow') },
      { blockBelow: '"blockBelow"', flagBelow: '"flagBelow"' },
      OWNER,
    ),
    mode: option('mode'),
    onError,
    onMissingInput: options.onMissingInput === undefined ? onError : option('onMissingInput'),
    fallbackMessage: option('fallbackMessage'),
    blockResponse: options.blockResponse && option('blockResponse'),
    streamMode: option('streamMode'),
    streamBufferBytes: option('streamBufferBytes'),
    cache: options.cache && option('cache'),
    onDecision: options.onDecision && option('onDecision'),
    logContent: option('logContent'),
    maxBodyBytes: option('maxBodyBytes'),
    onOversize: option('onOversize'),
  }
}
