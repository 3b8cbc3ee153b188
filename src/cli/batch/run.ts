/**
 * `rag-guard eval --batch`: the same examples, output and calibration as the online eval, with
 * the judge requests sent through the provider's Batch API (half the price, a separate rate
 * limit, results within 24 hours). Each run does what the recorded state calls for: collect
 * what finished, submit what has no result and is not in flight, and wait with a progress line.
 */
import { closeSync, existsSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { basename } from 'node:path'
import type { JudgeRequests } from '../../judge/requests'
import type { Check } from '../../review/checks'
import type { Example, ScoreRecord } from '../data'
import { alreadyJudged, refuseOtherEstimators, scoreRecord } from '../eval'
import { formatDuration, type ProgressStream } from '../progress'
import { collectPart, emptyCollected, type Collected } from './collect'
import { BATCH_LIMITS, buildInputs, type BatchLimits, type Pending } from './inputs'
import { BatchError, updatePart, type BatchProvider } from './provider'
import {
  customId,
  FINISHED,
  partFile,
  partIds,
  readState,
  stateFolder,
  writeState,
  type BatchPart,
  type BatchState,
} from './state'

export interface BatchRunOptions {
  examples: readonly Example[]
  checks: readonly Check[]
  /** The output file, as the online eval writes it; the state lives beside it. */
  output: string
  requests: JudgeRequests
  provider: BatchProvider
  /** `run` (the default): collect, submit, wait; `status`: only say where things are; `cancel`. */
  mode?: 'run' | 'status' | 'cancel'
  /** Between two looks at the running batches. @default 30000 @unit milliseconds */
  pollMs?: number
  limits?: BatchLimits
  /** Stops waiting (the batches go on at the provider; a rerun picks them up). */
  signal?: AbortSignal
  /** Where progress and the summary go. @default process.stderr */
  progress?: ProgressStream
}

export interface BatchSummary extends Collected {
  /** Requests (example × check) in the data. */
  total: number
  /** Already in the output before this run. */
  skipped: number
  /** Submitted by this run. */
  submitted: number
  /** In batches still running at the provider. */
  waiting: number
  parts: BatchPart[]
  /** Parts whose input file the provider rejected, collected by this run: what it said. */
  rejected: string[]
  interrupted: boolean
}

const sum = (counts: Map<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0)

function judgeOf(requests: JudgeRequests): BatchState['judge'] {
  return {
    model: requests.model,
    identity: requests.identity,
    estimator: requests.estimator,
    promptVersions: requests.promptVersions,
  }
}

/** The recorded state, or a new one; refuses the batches of another judge. */
function openState(output: string, requests: JudgeRequests): BatchState {
  const state = readState(output) ?? { version: 1, judge: judgeOf(requests), parts: [] }
  if (JSON.stringify(state.judge) !== JSON.stringify(judgeOf(requests))) {
    const { model, estimator, promptVersions } = state.judge
    throw new BatchError(
      `${stateFolder(output)} holds batches of another judge (${model}, ${estimator}, ${Object.values(promptVersions).join(', ')}): run with the same settings, or write to another --out`,
    )
  }
  return state
}

/** One line per part: its batch, status and request counts. */
export function describeParts(parts: readonly BatchPart[]): string[] {
  return parts.map((part) => {
    const counts = part.requestCounts
    const done = counts ? `${counts.completed}/${counts.total}` : `0/${part.requests}`
    return `${part.name} ${part.batchId ?? '(not created)'} ${part.collected ? 'collected' : (part.status ?? 'not submitted')} ${done}${counts?.failed ? ` (${counts.failed} failed)` : ''}${part.rejected?.length ? ` rejected: ${part.rejected.map((error) => `${error.code ?? '?'}${error.line ? ` at line ${error.line}` : ''}`).join(', ')}` : ''}`
  })
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })

/** Runs `eval --batch` as the recorded state calls for. */
export async function runBatch(options: BatchRunOptions): Promise<BatchSummary> {
  const { output, requests, provider, examples, checks } = options
  const mode = options.mode ?? 'run'
  const stream = options.progress ?? process.stderr
  refuseOtherEstimators(output, requests.estimator)
  const state = openState(output, requests)
  if (mode === 'run' && state.parts.length === 0) await provider.probe()
  const save = () => writeState(output, state)
  const open = () => state.parts.filter((part) => !part.collected)
  const byId = new Map(examples.map((example) => [example.id, example]))
  const summary: BatchSummary = {
    ...emptyCollected(),
    total: examples.length * checks.length,
    skipped: 0,
    submitted: 0,
    waiting: 0,
    parts: state.parts,
    rejected: [],
    interrupted: false,
  }

  // Where the provider says each submitted batch is.
  for (const part of open())
    if (part.batchId && !FINISHED.has(part.status ?? '')) {
      updatePart(part, await provider.retrieve(part.batchId))
      save()
    }
  if (mode === 'cancel') {
    for (const part of open())
      if (part.batchId && !FINISHED.has(part.status ?? '') && part.status !== 'cancelling') {
        updatePart(part, await provider.cancel(part.batchId))
        save()
      }
  }
  if (mode !== 'run') {
    summary.waiting = open().reduce((total, part) => total + part.requests, 0)
    return summary
  }

  let done = new Map(checks.map((check) => [check, alreadyJudged(output, check)]))
  summary.skipped = [...done.values()].reduce((total, ids) => total + ids.size, 0)
  const fd = openSync(output, 'a')
  const write = (record: ScoreRecord) => writeSync(fd, `${JSON.stringify(record)}\n`)
  try {
    const collect = async (part: BatchPart) => {
      await collectPart({
        requests,
        provider,
        part,
        ids: new Set(partIds(output, part)),
        examples: byId,
        done,
        write,
        into: summary,
      })
      part.collected = true
      save()
      unlinkIfThere(partFile(output, part, 'ids'))
      if (part.status === 'failed') summary.rejected.push(...describeParts([part]))
    }
    for (const part of open()) if (FINISHED.has(part.status ?? '')) await collect(part)

    // What has no result and is not in flight: built into new input files.
    done = new Map(checks.map((check) => [check, alreadyJudged(output, check)]))
    const inFlight = new Set(open().flatMap((part) => partIds(output, part)))
    const pending: Pending[] = []
    for (const example of examples)
      for (const check of checks)
        if (!done.get(check)!.has(example.id) && !inFlight.has(customId(check, example.id)))
          pending.push({ example, check })
    if (pending.length) {
      const built = buildInputs(
        output,
        requests,
        pending,
        state.parts.length + 1,
        options.limits ?? BATCH_LIMITS,
      )
      for (const { example, result } of built.unjudgeable) {
        write(scoreRecord(example, result))
        summary.failed.set(result.reason, (summary.failed.get(result.reason) ?? 0) + 1)
      }
      state.parts.push(...built.parts)
      save()
    }

    // Upload and create what is not yet at the provider, recording each id as it comes.
    for (const part of open()) {
      if (part.batchId) continue
      const uploadedBefore = part.inputFileId !== undefined
      if (!part.inputFileId) {
        const file = partFile(output, part, 'jsonl')
        if (!existsSync(file)) {
          // Built by a run that stopped before uploading, and removed since: built again.
          part.collected = true
          save()
          continue
        }
        part.inputFileId = await provider.upload(file)
        save()
      }
      const batch =
        (uploadedBefore ? await provider.findBatch(part.inputFileId) : undefined) ??
        (await provider.create(part.inputFileId, {
          rag_guard_output: basename(output).slice(0, 512),
          rag_guard_part: part.name,
        }))
      updatePart(part, batch)
      part.createdAt = new Date().toISOString()
      save()
      summary.submitted += part.requests
      unlinkIfThere(partFile(output, part, 'jsonl'))
    }

    // Wait, collecting each batch as it finishes.
    const startedAt = Date.now()
    let shown = ''
    while (open().length && !options.signal?.aborted) {
      for (const part of open()) {
        if (!FINISHED.has(part.status ?? '')) {
          updatePart(part, await provider.retrieve(part.batchId!))
          save()
        }
        if (FINISHED.has(part.status ?? '')) await collect(part)
      }
      shown = showProgress(stream, state.parts, startedAt, shown)
      if (open().length) await sleep(options.pollMs ?? 30_000, options.signal)
    }
    if (stream.isTTY && shown) stream.write('\n')
  } finally {
    closeSync(fd)
  }
  summary.waiting = open().reduce((total, part) => total + part.requests, 0)
  summary.interrupted = summary.waiting > 0
  return summary
}

function unlinkIfThere(file: string): void {
  if (existsSync(file)) unlinkSync(file)
}

/** The progress line: requests completed and failed across the batches, from `request_counts`. */
function showProgress(
  stream: ProgressStream,
  parts: readonly BatchPart[],
  startedAt: number,
  shown: string,
): string {
  const live = parts.filter((part) => part.batchId && (part.createdAt ?? '') !== '')
  let total = 0
  let completed = 0
  let failed = 0
  for (const part of live) {
    total += part.requestCounts?.total || part.requests
    completed += part.requestCounts?.completed ?? 0
    failed += part.requestCounts?.failed ?? 0
  }
  const running = live.filter((part) => !part.collected).length
  const line = `batches: ${live.length - running}/${live.length} done · requests ${completed}/${total} completed${failed ? `, ${failed} failed` : ''} · waited ${formatDuration((Date.now() - startedAt) / 1000)}`
  const key = line.replace(/ · waited .*/, '')
  if (stream.isTTY) stream.write(`\r${line.slice(0, (stream.columns ?? 120) - 1)}\u001b[K`)
  else if (key !== shown.replace(/ · waited .*/, '')) stream.write(`${line}\n`)
  return line
}

/** The summary the command prints: judged, without a score by reason, without a result, waiting. */
export function formatBatchSummary(summary: BatchSummary, output: string): string[] {
  const failed = sum(summary.failed)
  const byReason = (counts: Map<string, number>) =>
    [...counts].map(([reason, count]) => `${reason} ${count}`).join(', ')
  const lines = [
    `${summary.interrupted ? 'so far' : 'done'}: ${summary.scored + failed} judged now (${summary.scored} scored${failed ? `, ${failed} without a score: ${byReason(summary.failed)}` : ''}), ${summary.skipped} already in ${output}${summary.submitted ? `, ${summary.submitted} requests submitted` : ''}`,
  ]
  if (summary.fewerSamples)
    lines.push(
      `${summary.fewerSamples} sampling replies held fewer answers than asked for (the provider ignored "n"): their scores rest on fewer samples`,
    )
  for (const part of summary.rejected) lines.push(`input file rejected: ${part}`)
  if (summary.missing.size)
    lines.push(
      `no result: ${byReason(summary.missing)}; run the same command again to submit them again`,
    )
  if (summary.unknown)
    lines.push(`${summary.unknown} result lines named no request of these batches (left out)`)
  if (summary.waiting)
    lines.push(
      `waiting: ${summary.waiting} requests in batches still running at the provider (recorded in ${stateFolder(output)}); run the same command again to pick them up, or with --cancel to cancel them`,
    )
  return lines
}
