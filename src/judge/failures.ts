/**
 * A failed chat request, as a reason code: never the API's own error text (it can echo the key),
 * only what is matched in it.
 */
import { ContextOverflowError } from '@langchain/core/errors'
import { isRecord } from '../json'
import type { JudgeNoScore } from './result'

/** A request parameter a provider refused, which the judge can do without. */
export type RefusedParameter = 'logprobs' | 'n'

export interface ClassifiedFailure extends Pick<JudgeNoScore, 'reason' | 'message' | 'status'> {
  retryable: boolean
  retryAfterMs?: number
  /**
   * The 400 names a parameter the judge can do without: `logprobs` (with `top_logprobs` and
   * `temperature: 0`, which reasoning models refuse alongside it), or `n`.
   */
  refused?: RefusedParameter
}

/** The `retry-after` header of a failed call (seconds, or an HTTP date), in milliseconds. */
function retryAfter(headers: unknown): number | undefined {
  const value = headers instanceof Headers ? headers.get('retry-after') : undefined
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/**
 * Whether a 400 says the prompt is longer than the model's window: OpenAI's error code
 * `context_length_exceeded`, or the wording vLLM, llama.cpp and Azure use (LangChain's
 * `ContextOverflowError` says so for ChatOpenAI; this covers other chat models). Only matched,
 * never copied into a message.
 */
function isContextOverflow(error: unknown): boolean {
  const fields = isRecord(error) ? error : {}
  if (fields.code === 'context_length_exceeded') return true
  const text = error instanceof Error ? error.message : ''
  return /context length|context window|maximum context|too many tokens|exceeds? the (?:model'?s? )?(?:maximum|max)/i.test(
    text,
  )
}

/**
 * The parameter a 400 refuses, when the judge can do without it, read only from the error's
 * structured fields: OpenAI names it in `param` with the code `unsupported_parameter` or
 * `unsupported_value` ("Unsupported parameter: 'logprobs' is not supported with this model.";
 * reasoning models refuse `temperature: 0` the same way), and `n` in `param`. Never from the
 * message's text: it can quote the request's data, and a refusal read there would switch the
 * judge's estimator for every later request (issue 24). A value out of range (`top_logprobs`
 * above Azure's 5) is not a refusal: the model has logprobs, the setting is wrong.
 */
function refusedParameter(error: unknown): RefusedParameter | undefined {
  const fields = isRecord(error) ? error : {}
  const param = typeof fields.param === 'string' ? fields.param : ''
  const code = typeof fields.code === 'string' ? fields.code : ''
  const unsupported = code === 'unsupported_parameter' || code === 'unsupported_value'
  if (param === 'logprobs' || (unsupported && /^(?:top_logprobs|temperature)$/.test(param)))
    return 'logprobs'
  if (param === 'n') return 'n'
  return undefined
}

/** Maps a failed judge call to a reason code, without copying the API's error text. */
export function classifyFailure(error: unknown): ClassifiedFailure {
  const fields = (isRecord(error) ? error : {}) as {
    status?: unknown
    headers?: unknown
  }
  const name = error instanceof Error ? error.name : 'Error'
  const status = typeof fields.status === 'number' ? fields.status : undefined
  if (status === 429) {
    return {
      reason: 'judge-rate-limited',
      message: 'the judge API answered 429 (rate limited)',
      status,
      retryable: true,
      retryAfterMs: retryAfter(fields.headers),
    }
  }
  if (ContextOverflowError.isInstance(error) || (status === 400 && isContextOverflow(error))) {
    return {
      reason: 'judge-context-overflow',
      message: "the judge API refused the prompt as longer than the model's context window",
      ...(status !== undefined ? { status } : {}),
      retryable: false,
    }
  }
  if (status !== undefined && status >= 400) {
    const refused = status === 400 ? refusedParameter(error) : undefined
    // Server errors may pass on a second try; a 4xx will not.
    return {
      reason: 'judge-http-error',
      message: `the judge API answered ${status}${refused ? ` (it refused "${refused}")` : ''}`,
      status,
      retryable: status >= 500 || status === 408,
      retryAfterMs: retryAfter(fields.headers),
      ...(refused ? { refused } : {}),
    }
  }
  // openai-node's APIError carries `status`, `headers` and `requestID`; without a status it is a
  // connection failure. Matched by shape: bundles can hold two copies of the class.
  if ('requestID' in fields && 'headers' in fields && status === undefined) {
    return {
      reason: 'judge-unreachable',
      message: 'the judge API could not be reached',
      retryable: true,
    }
  }
  // workerd reports a connection lost mid-answer (a reset, a body cut short) as a plain Error.
  if (
    /network connection lost|connection (?:reset|closed|lost)|premature eof|socket hang up|econnreset/i.test(
      error instanceof Error ? error.message : '',
    )
  ) {
    return {
      reason: 'judge-unreachable',
      message: 'the connection to the judge API was lost',
      retryable: true,
    }
  }
  if (error instanceof SyntaxError || error instanceof TypeError) {
    return {
      reason: 'judge-bad-response',
      message: `the judge API sent a body that is not a chat completion (${name})`,
      retryable: false,
    }
  }
  return { reason: 'judge-error', message: `the judge call failed (${name})`, retryable: false }
}
