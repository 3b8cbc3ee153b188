/**
 * The command-line side of `rag-guard eval --batch`: the judge's requests and the provider from
 * the options `eval` already read, interruption, and what is printed.
 */
import type { JudgeOptions } from '../../judge/judge'
import { JUDGE_SETTINGS } from '../../judge/options'
import { createJudgeRequests } from '../../judge/requests'
import type { Granularity } from '../../judge/sentences'
import type { Check } from '../../review/checks'
import { firstProblem } from '../../settings'
import type { Example } from '../data'
import { openAIBatchProvider, BatchError, type BatchProvider } from './provider'
import { describeParts, formatBatchSummary, runBatch } from './run'
import { readState, stateFolder } from './state'

/** The options of `eval` that belong to the Batch API (the table of docs/reference/cli.md and USAGE list each). */
export const BATCH_OPTIONS = {
  batch: { type: 'boolean' },
  status: { type: 'boolean' },
  cancel: { type: 'boolean' },
  'poll-seconds': { type: 'string' },
} as const

export interface BatchCommand {
  examples: readonly Example[]
  checks: readonly Check[]
  output: string
  judge: JudgeOptions
  /** Groundedness per answer or per sentence (`--granularity`). @default 'answer' */
  granularity?: Granularity
  values: { batch?: boolean; status?: boolean; cancel?: boolean; 'poll-seconds'?: string }
  /** For tests: another provider than the OpenAI client's. */
  provider?: BatchProvider
}

/** Headers for every request, as the Worker takes them (`JUDGE_HEADERS`: Azure's `api-key`, …). */
function headersFromEnvironment(): Record<string, string> | undefined {
  const raw = process.env.JUDGE_HEADERS
  if (!raw) return undefined
  const parsed = JUDGE_SETTINGS.headers.fromEnv.safeParse(raw)
  if (!parsed.success) throw new BatchError(`JUDGE_HEADERS ${firstProblem(parsed.error)}`)
  return parsed.data as Record<string, string>
}

/**
 * Refuses an online eval into an output whose batches are still out: their requests would be
 * judged, and paid for, twice.
 */
export function refuseWhileBatched(output: string): void {
  const waiting = (readState(output)?.parts ?? []).filter((part) => !part.collected)
  if (waiting.length)
    throw new BatchError(
      `${waiting.reduce((total, part) => total + part.requests, 0)} requests of ${output} are in batches not collected yet (${stateFolder(output)}): run with --batch to collect them, or --batch --cancel first`,
    )
}

/** Runs `eval --batch` (with `--status` or `--cancel`); returns the exit code. */
export async function batchEval(command: BatchCommand): Promise<number> {
  const { values, output } = command
  if (!values.batch) throw new BatchError('--status and --cancel go with --batch')
  if (values.status && values.cancel) throw new BatchError('--status or --cancel, not both')
  const pollSeconds = Number(values['poll-seconds'] ?? 30)
  if (!(pollSeconds > 0))
    throw new BatchError(
      `--poll-seconds must be a number above 0, got ${JSON.stringify(values['poll-seconds'])}`,
    )
  let requests
  try {
    requests = createJudgeRequests(command.judge, command.granularity)
  } catch (error) {
    throw new BatchError((error as Error).message)
  }
  const headers = command.judge.headers ?? headersFromEnvironment()
  const provider =
    command.provider ??
    openAIBatchProvider({ apiKey: command.judge.apiKey, baseURL: command.judge.baseURL, headers })
  const interrupt = new AbortController()
  const onSignal = () => {
    process.stderr.write(
      `\nstopping: the batches go on at the provider, recorded in ${stateFolder(output)}; run the same command again to pick them up\n`,
    )
    interrupt.abort()
  }
  const mode = values.status ? 'status' : values.cancel ? 'cancel' : 'run'
  if (mode === 'run') {
    process.stderr.write(
      `judge (Batch API): ${requests.model} · prompt ${command.checks.map((check) => requests.promptVersions[check]).join(', ')} · estimator ${requests.estimator}${requests.estimator === 'sampling' ? ` (${requests.samples} samples, n = ${requests.samples})` : ''} · ${command.examples.length} examples${command.checks.length > 1 || command.checks[0] !== 'sufficiency' ? ` × ${command.checks.join(', ')}` : ''} → ${output} (state in ${stateFolder(output)})\n`,
    )
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const summary = await runBatch({
      examples: command.examples,
      checks: command.checks,
      output,
      requests,
      provider,
      mode,
      pollMs: pollSeconds * 1000,
      signal: interrupt.signal,
    })
    const parts = describeParts(summary.parts)
    if (mode !== 'run') {
      process.stdout.write(
        `${parts.length ? parts.join('\n') : `no batches recorded in ${stateFolder(output)}`}\n`,
      )
      if (summary.waiting)
        process.stdout.write(
          `${summary.waiting} requests in batches not collected yet; run without --status to wait for them and collect them\n`,
        )
      return 0
    }
    process.stderr.write(`${formatBatchSummary(summary, output).join('\n')}\n`)
    return summary.interrupted ? 130 : 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
