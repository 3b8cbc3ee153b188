/**
 * Batch API input files: one JSONL line per judge request, `{custom_id, method, url, body}`,
 * written as they are built (never held whole) and split where the API's limits are, so a set
 * of any size is submitted, never refused.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs'
import type { JudgeRequests } from '../../judge/requests'
import type { JudgeNoScore } from '../../judge/result'
import type { Check } from '../../review/checks'
import type { Example } from '../data'
import { customId, partFile, stateFolder, type BatchPart } from './state'

/** The Batch API's endpoint for chat completions: the judge's requests. */
export const BATCH_ENDPOINT = '/v1/chat/completions'

/** What one input file may hold (OpenAI: 50,000 requests and 200 MB). */
export interface BatchLimits {
  requests: number
  bytes: number
}

export const BATCH_LIMITS: BatchLimits = { requests: 50_000, bytes: 200 * 1024 * 1024 }

/** A request to make: one example and check. */
export interface Pending {
  example: Example
  check: Check
}

export interface BuiltInputs {
  parts: BatchPart[]
  /** Requests that need no model: their no-score results (no question, no documents, …). */
  unjudgeable: Array<Pending & { result: JudgeNoScore }>
}

/**
 * Writes the requests of `pending` into input files `part-NNNN.jsonl` (and their ids into
 * `part-NNNN.ids`), starting at `firstNumber`: a new file whenever the next line would pass
 * the request or byte limit, or its model differs (one model per file, as the API requires).
 */
export function buildInputs(
  output: string,
  requests: JudgeRequests,
  pending: Iterable<Pending>,
  firstNumber: number,
  limits: BatchLimits = BATCH_LIMITS,
): BuiltInputs {
  mkdirSync(stateFolder(output), { recursive: true })
  const parts: BatchPart[] = []
  const unjudgeable: BuiltInputs['unjudgeable'] = []
  let open: { part: BatchPart; jsonl: number; ids: number; model: unknown } | undefined
  const close = () => {
    if (!open) return
    closeSync(open.jsonl)
    closeSync(open.ids)
    parts.push(open.part)
    open = undefined
  }
  for (const { example, check } of pending) {
    const built = requests.request(
      {
        question: example.question,
        context: example.context,
        ...(check === 'groundedness' ? { answer: example.answer } : {}),
      },
      check,
    )
    if (!built.ok) {
      unjudgeable.push({ example, check, result: built.result })
      continue
    }
    const id = customId(check, example.id)
    const line = `${JSON.stringify({ custom_id: id, method: 'POST', url: BATCH_ENDPOINT, body: built.body })}\n`
    const bytes = Buffer.byteLength(line)
    if (
      open &&
      (open.part.requests + 1 > limits.requests ||
        open.part.bytes + bytes > limits.bytes ||
        open.model !== built.body.model)
    )
      close()
    if (!open) {
      const part: BatchPart = {
        name: `part-${String(firstNumber + parts.length).padStart(4, '0')}`,
        requests: 0,
        bytes: 0,
      }
      open = {
        part,
        jsonl: openSync(partFile(output, part, 'jsonl'), 'w'),
        ids: openSync(partFile(output, part, 'ids'), 'w'),
        model: built.body.model,
      }
    }
    // One line over the byte limit alone still goes, in a file of its own: the API says why.
    writeSync(open.jsonl, line)
    writeSync(open.ids, `${id}\n`)
    open.part.requests++
    open.part.bytes += bytes
  }
  close()
  return { parts, unjudgeable }
}
