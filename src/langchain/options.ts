/**
 * The options of the guard's LangChain forms, the agent middleware and the guarded runnable.
 * Each option they share with `ragGuard()` is checked by the very definition `ragGuard()` uses
 * (`GUARD_SETTINGS`), so its type, default, range and message are the same; only the owner that
 * opens a message differs. The few options of their own are defined here, in the same way.
 */
import { ConfigurationError } from '../errors'
import { parseJsonPointer, type JsonPointer } from '../formats/json-pointer'
import type { DecisionPolicy } from '../guard/decision'
import type { InputLimits } from '../guard/extract'
import {
  GUARD_SETTINGS,
  resolveChecks,
  type CacheScope,
  type OnUngrounded,
  type RagGuardOptions,
  type StreamMode,
} from '../guard/options'
import type { VerdictCache } from '../judge/cache'
import type { Check } from '../judge/prompt'
import type { Granularity } from '../judge/sentences'
import { createJudge, type Judge, type JudgeOptions } from '../judge/judge'
import { check, choice, custom, type Setting } from '../settings'
import type { RagGuardVerdict } from './verdict'

export const MIDDLEWARE_OWNER = 'RAG Guard LangChain middleware'
export const RUNNABLE_OWNER = 'RAG Guard LangChain runnable'

/** Who is calling, as LangChain knows it: the run's `configurable` values, and an agent's `context`. */
export interface CallerInfo {
  configurable?: Record<string, unknown>
  context?: unknown
}

/** Where a chain's documents are: a JSON Pointer into its output, or into either side. */
export type ChainContextLocation = string | { in: 'input' | 'output'; pointer: string }

/** What the agent does when it blocks before the answer is written. */
export type ExitBehavior = 'end' | 'error'

const isFunction = (value: unknown) => typeof value === 'function'

/** The options of the LangChain forms that `ragGuard()` does not have, defined once. */
export const LANGCHAIN_SETTINGS = {
  tools: custom<string[]>(
    (value) =>
      Array.isArray(value) && value.every((name) => typeof name === 'string' && name !== ''),
    'an array of tool names',
  ),
  exitBehavior: choice<ExitBehavior>(['end', 'error'], { default: 'end' }),
  onVerdict: custom<(verdict: RagGuardVerdict) => void>(isFunction, 'a function'),
} satisfies Record<string, Setting<unknown>>

/** The side of a chain a `context` location names. */
const CONTEXT_SIDE = choice<'input' | 'output'>(['input', 'output'], { default: 'output' })

/**
 * The `ragGuard()` options the LangChain forms share (the runnable also `streamMode`): checked by
 * `GUARD_SETTINGS`, documented in the README's table with the others.
 */
export const SHARED_SETTINGS = [
  'checks',
  'blockBelow',
  'flagBelow',
  'groundednessBlockBelow',
  'groundednessFlagBelow',
  'groundednessGranularity',
  'onUngrounded',
  'mode',
  'onError',
  'onUnjudgeable',
  'noDocumentsScore',
  'maxDocuments',
  'maxInputChars',
  'inputOverflow',
  'historyTurns',
  'fallbackMessage',
  'cache',
  'cacheScope',
  'callerId',
  'streamMode',
] as const satisfies readonly (keyof typeof GUARD_SETTINGS)[]

/** Options shared with `ragGuard()`: the same names, meanings, defaults and checks. */
export interface RagGuardLangChainOptions extends Pick<
  RagGuardOptions,
  | 'judge'
  | 'checks'
  | 'blockBelow'
  | 'flagBelow'
  | 'groundednessBlockBelow'
  | 'groundednessFlagBelow'
  | 'groundednessGranularity'
  | 'onUngrounded'
  | 'mode'
  | 'onError'
  | 'onUnjudgeable'
  | 'noDocumentsScore'
  | 'maxDocuments'
  | 'maxInputChars'
  | 'inputOverflow'
  | 'historyTurns'
  | 'fallbackMessage'
  | 'cache'
  | 'cacheScope'
> {
  /**
   * Who is calling, for `cacheScope: 'caller'` (a user id from the run's `configurable` or the
   * agent's `context`). @default one caller for all
   */
  callerId?: (caller: CallerInfo) => string | undefined
  /** Receives every verdict, as the state and the output carry it (for logs and metrics). */
  onVerdict?: (verdict: RagGuardVerdict) => void
}

export interface RagGuardMiddlewareOptions extends RagGuardLangChainOptions {
  /**
   * The tools whose results are the retrieved documents, by name.
   * @default every tool result since the last user message
   */
  tools?: string[]
  /**
   * A block before the answer is written: `'end'` ends the run with `fallbackMessage` as the
   * final AI message; `'error'` throws a `RagGuardBlockedError` carrying the verdict.
   * @default 'end'
   */
  exitBehavior?: ExitBehavior
}

export interface RagGuardRunnableOptions
  extends RagGuardLangChainOptions, Pick<RagGuardOptions, 'streamMode'> {
  /**
   * JSON Pointer (RFC 6901) to the question in the chain's input.
   * @default the input when it is a string, else its `input`, `question` or `query`
   */
  question?: string
  /**
   * Where the documents are: a JSON Pointer into the chain's output, or
   * `{ in: 'input' | 'output', pointer }`. Documents in the input are judged while the chain runs.
   * @default '/context' in the output (a retrieval chain's `{ input, context, answer }`)
   */
  context?: ChainContextLocation
  /**
   * JSON Pointer to the answer in the chain's output, replaced by `fallbackMessage` on block.
   * @default '/answer', or the whole output when it is a string
   */
  answer?: string
}

/** The shared options, checked, with every default filled in. */
export interface LangChainSettings extends DecisionPolicy, InputLimits {
  judge: Judge
  /** The checks, each once: sufficiency before the answer, groundedness once it is complete. */
  checks: readonly Check[]
  groundednessGranularity: Granularity
  /** `repair`: the final AI message (agent) or the chain's answer (`invoke`, a held stream) loses its unsupported sentences. */
  onUngrounded: OnUngrounded
  cache?: VerdictCache
  fallbackMessage: string
  cacheScope: CacheScope
  callerId?: RagGuardLangChainOptions['callerId']
  onVerdict?: RagGuardLangChainOptions['onVerdict']
}

export interface MiddlewareSettings extends LangChainSettings {
  /** Undefined: every tool's results count. */
  tools?: ReadonlySet<string>
  exitBehavior: ExitBehavior
}

export interface RunnableSettings extends LangChainSettings {
  streamMode: StreamMode
  /** Undefined: the input itself, or its `input`, `question` or `query`. */
  question?: JsonPointer
  context: { in: 'input' | 'output'; pointer: JsonPointer }
  /** Undefined: `/answer`, or the whole output when it is a string. */
  answer?: JsonPointer
}

/**
 * `ragGuard()` options that mean nothing here, and why: refused, so a copied option that does
 * nothing is seen at once rather than trusted.
 */
const HTTP_ONLY: Record<string, string> = {
  format: 'there is no HTTP body to read',
  blockResponse: 'there is no HTTP response',
  details: 'there are no response headers; the verdict is yours to show',
  isOperator: 'there are no response headers; the verdict is yours to show',
  onDecision: 'use "onVerdict"',
  logContent: 'use "onVerdict"',
  maxBodyBytes: 'there is no HTTP body to read',
  maxBatchItems: 'each input of a batch is judged',
  streamBufferBytes: 'held chunks are the chain’s own output, already in memory',
}

const AGENT_ONLY: Record<string, string> = {
  question: 'the question is the last user message',
  context: 'the documents are tool results; see "tools"',
  answer: 'the answer is the final AI message',
  streamMode: 'a block ends the run before the answer is written',
}

function isJudge(value: Judge | JudgeOptions): value is Judge {
  return typeof (value as Judge).judge === 'function'
}

function refuseUnused(owner: string, options: object, unused: Record<string, string>): void {
  for (const [name, why] of Object.entries(unused)) {
    if (name in options) {
      throw new ConfigurationError(`${owner}: "${name}" does not apply here: ${why}`, name)
    }
  }
}

/** The options both forms share, checked as `ragGuard()` checks them. */
function resolveShared(owner: string, options: RagGuardLangChainOptions): LangChainSettings {
  if (typeof options !== 'object' || options === null || !options.judge) {
    throw new ConfigurationError(`${owner} requires the "judge" option`, 'judge')
  }
  refuseUnused(owner, options, HTTP_ONLY)
  const given = options as unknown as Record<string, unknown>
  const option = <K extends keyof typeof GUARD_SETTINGS>(name: K) =>
    check<(typeof GUARD_SETTINGS)[K]>(owner, name, GUARD_SETTINGS[name], given[name])
  return {
    judge: isJudge(options.judge) ? options.judge : createJudge(options.judge),
    ...resolveChecks(owner, options),
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
    // Not read here (there is no HTTP body or batch limit), but part of the judge's input limits.
    maxBodyBytes: GUARD_SETTINGS.maxBodyBytes.default!,
    maxBatchItems: GUARD_SETTINGS.maxBatchItems.default!,
    fallbackMessage: option('fallbackMessage'),
    cache: options.cache && option('cache'),
    cacheScope: option('cacheScope'),
    // The same check as ragGuard's callerId (a function); here it is given what LangChain knows.
    callerId: options.callerId && (option('callerId') as unknown as LangChainSettings['callerId']),
    onVerdict:
      options.onVerdict &&
      check(owner, 'onVerdict', LANGCHAIN_SETTINGS.onVerdict, options.onVerdict),
  }
}

/** Checks the agent middleware's options once, at construction. */
export function resolveMiddlewareOptions(options: RagGuardMiddlewareOptions): MiddlewareSettings {
  const owner = MIDDLEWARE_OWNER
  const shared = resolveShared(owner, options)
  refuseUnused(owner, options, AGENT_ONLY)
  const tools = options.tools && check(owner, 'tools', LANGCHAIN_SETTINGS.tools, options.tools)
  return {
    ...shared,
    ...(tools ? { tools: new Set(tools) } : {}),
    exitBehavior: check(
      owner,
      'exitBehavior',
      LANGCHAIN_SETTINGS.exitBehavior,
      options.exitBehavior,
    ),
  }
}

/** Checks the guarded runnable's options once, at construction. */
export function resolveRunnableOptions(options: RagGuardRunnableOptions): RunnableSettings {
  const owner = RUNNABLE_OWNER
  const shared = resolveShared(owner, options)
  for (const name of ['tools', 'exitBehavior']) {
    if (name in options) {
      throw new ConfigurationError(`${owner}: "${name}" is an option of the agent middleware`, name)
    }
  }
  // Pointers are parsed as ragGuard() parses its own, with the same messages.
  const location = options.context ?? '/context'
  const context =
    typeof location === 'string'
      ? { in: 'output' as const, pointer: parseJsonPointer(location, 'context') }
      : {
          in: check(owner, 'context.in', CONTEXT_SIDE, location?.in),
          pointer: parseJsonPointer(location?.pointer, 'context'),
        }
  return {
    ...shared,
    streamMode: check(owner, 'streamMode', GUARD_SETTINGS.streamMode, options.streamMode),
    ...(options.question !== undefined
      ? { question: parseJsonPointer(options.question, 'question') }
      : {}),
    context,
    ...(options.answer !== undefined ? { answer: parseJsonPointer(options.answer, 'answer') } : {}),
  }
}
