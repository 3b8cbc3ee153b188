/**
 * A finished batch's results into the output file: its output file (replies) and error file
 * (requests that failed or never ran), read line by line as they download, each reply scored by
 * the online judge's estimators (`JudgeRequests.read`) and written as the online eval writes it.
 * Requests that got no result (the window expired, the batch was cancelled or its input
 * rejected) are only counted: a rerun submits them again.
 */
import type { JudgeRequests } from '../../judge/requests'
import type { JudgeResult } from '../../judge/result'
import type { Check } from '../../review/checks'
import type { Example, ScoreRecord } from '../data'
import { scoreRecord } from '../eval'
import type { BatchProvider } from './provider'
import { customId, parseCustomId, type BatchPart } from './state'

/** What collecting found, in requests. */
export interface Collected {
  scored: number
  /** Results without a score, by reason code (written to the output, as online). */
  failed: Map<string, number>
  /** Requests with no result, by why: `expired`, `cancelled`, `rejected`, … (submitted again). */
  missing: Map<string, number>
  /** Sampling replies with fewer answers than asked (a provider that ignores `n`). */
  fewerSamples: number
  /** Lines whose custom_id names no pending request of this part. */
  unknown: number
}

export const emptyCollected = (): Collected => ({
  scored: 0,
  failed: new Map(),
  missing: new Map(),
  fewerSamples: 0,
  unknown: 0,
})

const add = (counts: Map<string, number>, key: string, by = 1) =>
  counts.set(key, (counts.get(key) ?? 0) + by)

/** The lines of a stream of UTF-8 text, as they arrive. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let rest = ''
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true })
    let start = 0
    for (let end = rest.indexOf('\n'); end !== -1; end = rest.indexOf('\n', start)) {
      yield rest.slice(start, end)
      start = end + 1
    }
    rest = rest.slice(start)
  }
  rest += decoder.decode()
  if (rest.trim()) yield rest
}

interface ResultLine {
  custom_id?: unknown
  response?: { status_code?: unknown; body?: unknown } | null
  error?: { code?: unknown } | null
}

/** Error codes of requests the Batch API did not run: they get no result and are resubmitted. */
const NOT_RUN: Record<string, string> = {
  batch_expired: 'expired',
  batch_cancelled: 'cancelled',
}

/**
 * The result of one output or error line, or why there is none (a request that did not run).
 * A reply with status 200 is scored; another status is the online judge's failure for it.
 */
function resultOf(
  requests: JudgeRequests,
  check: Check,
  line: ResultLine,
  answer?: string,
): JudgeResult | { missing: string } {
  const response = line.response
  const status = typeof response?.status_code === 'number' ? response.status_code : undefined
  if (status === 200) return requests.read(check, response!.body, answer)
  if (status !== undefined) return requests.failed(check, status, response!.body)
  const code = typeof line.error?.code === 'string' ? line.error.code : 'unknown'
  return { missing: NOT_RUN[code] ?? code }
}

export interface CollectOptions {
  requests: JudgeRequests
  provider: BatchProvider
  part: BatchPart
  /** The custom_ids the part holds; those left once its files are read got no result. */
  ids: Set<string>
  examples: ReadonlyMap<string, Example>
  /** Pairs already in the output with a final result: never written twice. */
  done: ReadonlyMap<Check, ReadonlySet<string>>
  write(record: ScoreRecord): void
  into: Collected
}

/** Reads a finished part's output and error files into the output; returns nothing, counts into `into`. */
export async function collectPart(options: CollectOptions): Promise<void> {
  const { requests, provider, part, ids, examples, done, into } = options
  for (const fileId of [part.outputFileId, part.errorFileId]) {
    if (!fileId) continue
    for await (const text of lines(await provider.content(fileId))) {
      if (!text.trim()) continue
      let line: ResultLine
      try {
        line = JSON.parse(text) as ResultLine
      } catch {
        into.unknown++
        continue
      }
      const named = parseCustomId(line.custom_id)
      const example = named && examples.get(named.id)
      if (!named || !example || !ids.delete(customId(named.check, named.id))) {
        into.unknown++
        continue
      }
      const result = resultOf(
        requests,
        named.check,
        line,
        named.check === 'groundedness' ? example.answer : undefined,
      )
      if ('missing' in result) {
        add(into.missing, result.missing)
        continue
      }
      if (done.get(named.check)?.has(named.id)) continue
      if (result.ok && result.estimator === 'sampling' && result.samples < requests.samples)
        into.fewerSamples++
      if (result.ok) into.scored++
      else add(into.failed, result.reason)
      options.write({ ...scoreRecord(example, result), batch: part.batchId })
    }
  }
  // Requests neither file mentions: the batch never ran them.
  if (ids.size)
    add(into.missing, part.status === 'failed' ? 'rejected' : (part.status ?? 'unknown'), ids.size)
}
