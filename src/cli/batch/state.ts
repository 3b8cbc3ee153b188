/**
 * What `rag-guard eval --batch` has submitted, recorded beside the output file the moment it
 * exists, so that an interrupted process, a closed laptop or a rerun the next day never loses a
 * submitted batch nor pays for one twice. One folder per output file:
 *
 *   <out>.batch/state.json      the judge the batches were built for, and each part: its input
 *                               file id, batch id, last status and request counts, whether its
 *                               results are in <out>
 *   <out>.batch/part-NNNN.ids   the custom_ids a part holds, one a line (what is in flight)
 *   <out>.batch/part-NNNN.jsonl its Batch API input file, until the batch is created
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Check } from '../../review/checks'

/** A batch's status, as the Batch API names it. */
export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled'

/** The statuses after which a batch changes no more: its results can be collected. */
export const FINISHED: ReadonlySet<string> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
])

export interface RequestCounts {
  total: number
  completed: number
  failed: number
}

/** One input file and the batch made of it. */
export interface BatchPart {
  /** `part-0001`: the names of its local files. */
  name: string
  requests: number
  bytes: number
  inputFileId?: string
  batchId?: string
  status?: BatchStatus
  requestCounts?: RequestCounts
  outputFileId?: string
  errorFileId?: string
  /** Why the provider rejected the input file (a failed batch's `errors`): code and line. */
  rejected?: Array<{ code?: string; line?: number | null }>
  /** When the batch was created (ISO time). */
  createdAt?: string
  /** Its results (and its errors) are in the output file. */
  collected?: boolean
}

export interface BatchState {
  version: 1
  /** What the requests were built for: another judge's batches are never mixed in. */
  judge: {
    model: string
    identity: string
    estimator: string
    promptVersions: Readonly<Record<Check, string>>
  }
  parts: BatchPart[]
}

/** The folder beside `output` that holds its batch state. */
export const stateFolder = (output: string) => `${output}.batch`

export const partFile = (output: string, part: BatchPart, kind: 'ids' | 'jsonl') =>
  join(stateFolder(output), `${part.name}.${kind}`)

export function readState(output: string): BatchState | undefined {
  const file = join(stateFolder(output), 'state.json')
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')) as BatchState
}

/** Writes the state whole, then moves it into place: a crash leaves the old state or the new. */
export function writeState(output: string, state: BatchState): void {
  mkdirSync(stateFolder(output), { recursive: true })
  const file = join(stateFolder(output), 'state.json')
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`)
  renameSync(`${file}.tmp`, file)
}

/** The ids a part holds. */
export function partIds(output: string, part: BatchPart): string[] {
  const file = partFile(output, part, 'ids')
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').filter(Boolean)
}

/** `sufficiency:id` ↔ (check, example id): a request's `custom_id`. */
export const customId = (check: Check, id: string) => `${check}:${id}`

export function parseCustomId(value: unknown): { check: Check; id: string } | undefined {
  if (typeof value !== 'string') return undefined
  const colon = value.indexOf(':')
  const check = value.slice(0, colon)
  if (check !== 'sufficiency' && check !== 'groundedness') return undefined
  return { check, id: value.slice(colon + 1) }
}
