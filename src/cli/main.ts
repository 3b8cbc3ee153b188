/**
 * `rag-guard`: judge labeled data, calibrate thresholds, score one example. Runs in Node, with
 * the same judge, prompt and scoring as the Worker.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import packageJson from '../../package.json' with { type: 'json' }
import { ConfigurationError } from '../errors'
import { decide, validateThresholds } from '../guard/policy'
import type { JudgeOptions } from '../judge/judge'
import { DEFAULT_JUDGE_OPTIONS, JUDGE_SETTINGS } from '../judge/options'
import { CHECKS, isCheck, type Check } from '../review/checks'
import { firstProblem, type Setting, type SettingValue } from '../settings'
import {
  calibrate,
  calibrationJson,
  ESTIMATORS,
  formatCalibration,
  loadChecks,
  type CalibrationReport,
  type Estimator,
} from './calibrate'
import { asksForHelp, parseCommand, refuseDirectory, UsageError } from './args'
import { BATCH_OPTIONS, batchEval, refuseWhileBatched } from './batch/command'
import { BatchError } from './batch/provider'
import { combine, formatCombined } from './combined'
import { CHECK_LABEL_VALUES, DataError, readExamples } from './data'
import { isFinalReason, MAX_CONCURRENCY, refuseOtherEstimators, runEval } from './eval'
import { renderReports } from './report'
import { isUrl, readSource, TOKEN_ENV } from './source'
import { GRANULARITIES, type Granularity } from '../judge/sentences'

const EVAL_USAGE = `  rag-guard eval <data.jsonl> [options]
      Judges every example with each check and appends one line per example and check to the
      output (scores.jsonl).
      Input lines: {"id"?, "question", "context": string | string[] | documents, "answer"?,
                    a label per check: "sufficient": true|false  or  "label": ${words('sufficiency')},
                    "grounded": true|false | ${words('groundedness')}}
      Re-running skips what is already scored: an interrupted run resumes where it stopped.
      Exits 1 when an example could not be judged (its line is kept; a run again retries it).
      --checks <list>         sufficiency, groundedness or both (sufficiency,groundedness);
                              groundedness judges the "answer"     (the checks the lines have
                                                                    labels for, else sufficiency)
      --granularity <g>       groundedness judged per "answer" or per "sentence" (one call;
                              the line keeps the lowest sentence's score and each one's
                              beside it)                                    (answer)
      --out <file>            output file                                  (scores.jsonl)
      --concurrency <n>       judge calls at once, 1 to ${MAX_CONCURRENCY}                (4)
      --retries <n>           retries of a failed call                     (3)
      --timeout-ms <ms>       budget of one judge call, retries included   (30000)
      --limit <n>             judge only the first n examples
      --batch                 through the provider's Batch API: half the price, its own rate
                              limit, results within 24 hours; logprobs or sampling (not auto).
                              Batch ids are recorded in <out>.batch/: run the same
                              command again to wait, collect, and resubmit what got no result
      --status                with --batch: where each batch is, without waiting
      --cancel                with --batch: cancel the batches still running
      --poll-seconds <s>      with --batch: between two looks at the batches   (30)
`

const CALIBRATE_USAGE = `  rag-guard calibrate <scores.jsonl | URL> [options]
      Metrics and recommended thresholds; no model calls. Reads eval output, the Worker's
      decision log (JSON lines, or wrangler tail --format json) with --labels, or the review
      page's labels export (https://guard.example.com/_guard/labels.jsonl, or a file of it).
      --labels <file | URL>   labels for a decision log: {"requestId" | "questionHash"+"contextHash",
                              "sufficient" | "grounded"}
      --check <name>          calibrate one check: sufficiency or groundedness
                              (every check with labeled scores, and with both, the combined
                              verdict: bad answers stopped and good answers lost)
      --token-env <NAME>      the variable holding an operator token for URLs    (${TOKEN_ENV})
      --token-header <name>   the header that carries it, as GUARD_TOKEN_HEADER   (authorization)
      --pass-precision <p>    of the answers passed, share that must be sufficient   (0.95)
                              (grounded, for groundedness)
      --block-precision <p>   of the answers blocked, share that must be insufficient (0.9)
                              (hallucinated; bad, for the combined verdict)
      --min-count <n>         fewest examples on a side for its precision to count  (10)
      --at <t,t,…>            thresholds to tabulate                                (0.1,…,0.9)
      --estimator <name>      calibrate only the scores of this estimator (logprobs or sampling);
                              required when a file holds both: their scores are not on one scale
      --report <file.html>    also write a self-contained HTML report
      --json                  print the report as JSON
`

const SCORE_USAGE = `  rag-guard score --question <text> --context <text> [--context <text> …] [options]
      Judges one example and prints the result and the verdict.
      --question <text>       the question
      --context <text>        a document of the context; repeat it for several
      --block-below <t>       (0.1)      --flag-below <t>   (0.5)
`

const JUDGE_USAGE = `  Judge options (eval, score), also from the environment:
      --model <name>          JUDGE_MODEL       (${DEFAULT_JUDGE_OPTIONS.model})
      --base-url <url>        OPENAI_BASE_URL   (the OpenAI API)
      --top-logprobs <n>      JUDGE_TOP_LOGPROBS (${DEFAULT_JUDGE_OPTIONS.topLogprobs})
      --estimator <name>      JUDGE_ESTIMATOR   (${DEFAULT_JUDGE_OPTIONS.estimator}): logprobs, sampling or auto
      --samples <n>           JUDGE_SAMPLES     (${DEFAULT_JUDGE_OPTIONS.samples}): answers per check when sampling
      --sampling-temperature <t>  JUDGE_SAMPLING_TEMPERATURE (${DEFAULT_JUDGE_OPTIONS.samplingTemperature})
      --reasoning-effort <e>  JUDGE_REASONING_EFFORT (the model's default): none … xhigh
      --max-output-tokens <n> JUDGE_MAX_OUTPUT_TOKENS (1 logprobs, 5 sampling, 4096 reasoning models)
      The API key is read from OPENAI_API_KEY only (never from the command line).

`

const TITLE = 'rag-guard: measure and calibrate the RAG Guard judge\n'

export const USAGE = `${TITLE}
${EVAL_USAGE}
${CALIBRATE_USAGE}
${SCORE_USAGE}
${JUDGE_USAGE}
  rag-guard <command> --help      that command's options
  rag-guard --version             the version of rag-guard
`

/** `rag-guard <command> --help`: the command's usage, and the judge options it takes. */
export const COMMAND_USAGE = {
  eval: `${TITLE}\n${EVAL_USAGE}\n${JUDGE_USAGE}`,
  calibrate: `${TITLE}\n${CALIBRATE_USAGE}`,
  score: `${TITLE}\n${SCORE_USAGE}\n${JUDGE_USAGE}`,
} as const

/**
 * The judge, and LangChain with it, loaded when a command judges: `--help`, `--version` and a
 * mistake on the command line answer at once.
 */
const loadJudge = async () => (await import('../judge/judge')).createJudge

/** `"sufficient" | "insufficient" | …`: a check's own words, and there are more. */
function words(check: Check): string {
  const { yes, no } = CHECK_LABEL_VALUES[check]
  return `"${yes[0]}" | "${no[0]}" | …`
}

function number(
  name: string,
  value: string | undefined,
  fallback: number,
  check: (value: number) => boolean,
  allowed: string,
): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (value.trim() === '' || !check(parsed))
    throw new UsageError(`--${name} must be ${allowed}, got ${JSON.stringify(value)}`)
  return parsed
}

const integer = (min: number) => (value: number) => Number.isInteger(value) && value >= min
const share = (value: number) => value >= 0 && value <= 1

/**
 * A judge setting from its flag, else from its Worker variable in the environment, checked
 * against its one definition (as the Worker reads it); a wrong value names the flag.
 */
function judgeSetting<S extends Setting<unknown>>(
  values: Record<string, string | boolean | string[] | undefined>,
  flag: string,
  setting: S,
): SettingValue<S> | undefined {
  const given = values[flag] as string | undefined
  const raw = given ?? (setting.env ? process.env[setting.env] : undefined)
  if (raw === undefined || raw === '') return undefined
  const parsed = setting.fromEnv.safeParse(raw)
  if (!parsed.success)
    throw new UsageError(
      `${given !== undefined ? `--${flag}` : setting.env} ${firstProblem(parsed.error)}`,
    )
  return parsed.data as SettingValue<S>
}

function judgeOptionsFrom(
  values: Record<string, string | boolean | string[] | undefined>,
  timeoutMs: number,
  maxRetries: number,
): JudgeOptions {
  const baseURL = (values['base-url'] as string | undefined) ?? process.env.OPENAI_BASE_URL
  const apiKey = process.env.OPENAI_API_KEY
  if (!apiKey && !baseURL)
    throw new UsageError(
      'set OPENAI_API_KEY (or --base-url / OPENAI_BASE_URL for a server that needs no key)',
    )
  return {
    model:
      (values.model as string | undefined) ??
      process.env.JUDGE_MODEL ??
      DEFAULT_JUDGE_OPTIONS.model,
    apiKey,
    baseURL,
    topLogprobs: number(
      'top-logprobs',
      (values['top-logprobs'] as string | undefined) ?? process.env.JUDGE_TOP_LOGPROBS,
      DEFAULT_JUDGE_OPTIONS.topLogprobs,
      integer(1),
      'an integer from 1 to 20',
    ),
    timeoutMs,
    maxRetries,
    estimator: judgeSetting(values, 'estimator', JUDGE_SETTINGS.estimator),
    samples: judgeSetting(values, 'samples', JUDGE_SETTINGS.samples),
    samplingTemperature: judgeSetting(
      values,
      'sampling-temperature',
      JUDGE_SETTINGS.samplingTemperature,
    ),
    reasoningEffort: judgeSetting(values, 'reasoning-effort', JUDGE_SETTINGS.reasoningEffort),
    maxOutputTokens: judgeSetting(values, 'max-output-tokens', JUDGE_SETTINGS.maxOutputTokens),
  }
}

const judgeOptions = {
  model: { type: 'string' },
  'base-url': { type: 'string' },
  'top-logprobs': { type: 'string' },
  estimator: { type: 'string' },
  samples: { type: 'string' },
  'sampling-temperature': { type: 'string' },
  'reasoning-effort': { type: 'string' },
  'max-output-tokens': { type: 'string' },
} as const

/** The options of `rag-guard eval` (the table of docs/reference/cli.md and USAGE list each). */
export const EVAL_OPTIONS = {
  ...judgeOptions,
  checks: { type: 'string' },
  granularity: { type: 'string' },
  out: { type: 'string' },
  concurrency: { type: 'string' },
  retries: { type: 'string' },
  'timeout-ms': { type: 'string' },
  limit: { type: 'string' },
  ...BATCH_OPTIONS,
} as const

/** The options of `rag-guard calibrate`. */
export const CALIBRATE_OPTIONS = {
  labels: { type: 'string' },
  check: { type: 'string' },
  'token-env': { type: 'string' },
  'token-header': { type: 'string' },
  'pass-precision': { type: 'string' },
  'block-precision': { type: 'string' },
  'min-count': { type: 'string' },
  at: { type: 'string' },
  report: { type: 'string' },
  json: { type: 'boolean' },
  estimator: { type: 'string' },
} as const

/** The options of `rag-guard score`. */
export const SCORE_OPTIONS = {
  ...judgeOptions,
  question: { type: 'string' },
  context: { type: 'string', multiple: true },
  'block-below': { type: 'string' },
  'flag-below': { type: 'string' },
} as const

/** `--checks sufficiency,groundedness` (commas or spaces), each a check, none twice. */
function checkList(value: string): Check[] {
  const names = value.split(/[\s,]+/).filter((name) => name !== '')
  const wrong = names.filter((name) => !isCheck(name))
  if (names.length === 0 || wrong.length)
    throw new UsageError(
      `--checks must be ${CHECKS.join(', ')} or both (${CHECKS.join(',')}), got ${JSON.stringify(value)}`,
    )
  return [...new Set(names as Check[])]
}

/** `logprobs`, or `sampling (5 samples at temperature 1)`, `auto (…)`. */
function describeEstimator(options: JudgeOptions): string {
  const estimator = options.estimator ?? DEFAULT_JUDGE_OPTIONS.estimator
  if (estimator === 'logprobs') return estimator
  const samples = options.samples ?? DEFAULT_JUDGE_OPTIONS.samples
  const temperature = options.samplingTemperature ?? DEFAULT_JUDGE_OPTIONS.samplingTemperature
  return `${estimator} (${samples} samples at temperature ${temperature}${estimator === 'auto' ? ' when there are no logprobs' : ''})`
}

async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    {
      command: 'eval',
      flags: EVAL_OPTIONS,
      positionals: { count: 1, message: 'eval takes one data file: rag-guard eval <data.jsonl>' },
      usage: COMMAND_USAGE.eval,
    },
    args,
  )
  const input = positionals[0]!
  const output = values.out ?? 'scores.jsonl'
  refuseDirectory('the data file', input)
  refuseDirectory('--out', output)
  // Every flag is checked before the banner: a mistake is the only thing printed.
  const asked = values.checks === undefined ? undefined : checkList(values.checks)
  const granularity = values.granularity as Granularity | undefined
  if (granularity !== undefined && !(GRANULARITIES as readonly string[]).includes(granularity))
    throw new UsageError(
      `--granularity must be "answer" or "sentence", got ${JSON.stringify(granularity)}`,
    )
  const limit = number('limit', values.limit, Infinity, integer(1), 'a positive integer')
  const concurrency = number(
    'concurrency',
    values.concurrency,
    4,
    (value) => integer(1)(value) && value <= MAX_CONCURRENCY,
    `an integer from 1 to ${MAX_CONCURRENCY}`,
  )
  const options = judgeOptionsFrom(
    values,
    number('timeout-ms', values['timeout-ms'], 30_000, integer(1), 'a positive integer'),
    number('retries', values.retries, 3, integer(0), 'an integer ≥ 0'),
  )
  const read = readExamples(readFileSync(input, 'utf8'), input, { checks: asked })
  const checks = read.checks
  const examples = read.examples.slice(0, limit)
  if (values.batch || values.status || values.cancel)
    return await batchEval({
      examples,
      checks,
      output,
      judge: options,
      values,
      ...(granularity ? { granularity } : {}),
    })
  refuseWhileBatched(output)
  const judge = (await loadJudge())(options)
  refuseOtherEstimators(output, judge.estimator)
  const interrupt = new AbortController()
  const onSignal = () => {
    process.stderr.write(
      '\nstopping: the calls in flight finish and are written; run the same command again to resume\n',
    )
    interrupt.abort()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.stderr.write(
    `judge: ${judge.model} · prompt ${checks.map((check) => judge.promptVersions[check]).join(', ')} · estimator ${describeEstimator(options)} · ${examples.length} examples${checks.length > 1 || checks[0] !== 'sufficiency' ? ` × ${checks.join(', ')}` : ''} → ${output}\n`,
  )
  if (checks.length > 1 || checks[0] !== 'sufficiency')
    process.stderr.write(
      `labels: ${checks.map((check) => `${check} ${examples.filter((example) => (check === 'sufficiency' ? example.sufficient : example.grounded) !== undefined).length} of ${examples.length}`).join(' · ')}\n`,
    )
  const summary = await runEval({
    examples,
    judge,
    checks,
    ...(granularity ? { granularity } : {}),
    output,
    concurrency,
    signal: interrupt.signal,
  })
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  process.stderr.write(
    `${summary.interrupted ? 'interrupted' : 'done'}: ${summary.judged} judged now, ${summary.skipped} already in ${output}${summary.withoutScore ? `, ${summary.withoutScore} without a score` : ''}\n`,
  )
  if (summary.withoutScore) process.stderr.write(`${describeFailures(summary.failures, output)}\n`)
  // A run with calls that gave no score did not do its job, even though every line is written.
  return summary.interrupted ? 130 : summary.withoutScore ? 1 : 0
}

/**
 * `without a score: judge-http-error 118, unexpected-token 2 (…)`, and which of them the same
 * command judges again: a failure of the call is retried, the judge's own answer is final.
 */
function describeFailures(failures: Record<string, number>, output: string): string {
  const reasons = Object.entries(failures).sort(([, a], [, b]) => b - a)
  const retried = reasons.filter(([reason]) => !isFinalReason(reason)).map(([reason]) => reason)
  return `without a score: ${reasons.map(([reason, count]) => `${reason} ${count}`).join(', ')} (see "reason" and "message" in ${output})${retried.length ? `; the same command judges the ${retried.join(', ')} ones again` : ''}`
}

async function calibrateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    {
      command: 'calibrate',
      flags: CALIBRATE_OPTIONS,
      positionals: {
        count: 1,
        message: 'calibrate takes one scores file: rag-guard calibrate <scores.jsonl | URL>',
      },
      usage: COMMAND_USAGE.calibrate,
    },
    args,
  )
  const input = positionals[0]!
  if (!isUrl(input)) refuseDirectory('the scores file', input)
  if (values.labels !== undefined && !isUrl(values.labels))
    refuseDirectory('--labels', values.labels)
  if (values.report !== undefined) refuseDirectory('--report', values.report)
  const check = values.check
  if (check !== undefined && !isCheck(check))
    throw new UsageError(
      `--check must be sufficiency or groundedness, got ${JSON.stringify(check)}`,
    )
  // URLs (the review page's export) are fetched with an operator token from the environment.
  const source = {
    token: process.env[values['token-env'] ?? TOKEN_ENV] || undefined,
    tokenHeader: values['token-header'],
  }
  const estimator = values.estimator as Estimator | undefined
  if (estimator !== undefined && !ESTIMATORS.includes(estimator))
    throw new UsageError(
      `--estimator must be ${ESTIMATORS.map((name) => `"${name}"`).join(' or ')}, got ${JSON.stringify(estimator)}`,
    )
  const at =
    values.at === undefined
      ? undefined
      : values.at
          .split(',')
          .map((value) => number('at', value, 0, share, 'comma-separated numbers from 0 to 1'))
  const targets = {
    passPrecision: number(
      'pass-precision',
      values['pass-precision'],
      0.95,
      share,
      'a number from 0 to 1',
    ),
    blockPrecision: number(
      'block-precision',
      values['block-precision'],
      0.9,
      share,
      'a number from 0 to 1',
    ),
    minCount: number('min-count', values['min-count'], 10, integer(1), 'a positive integer'),
  }
  const loaded = loadChecks(
    await readSource(input, source),
    input,
    values.labels === undefined ? undefined : await readSource(values.labels, source),
    estimator,
    check === undefined ? undefined : [check],
  )
  const reports = loaded.checks.map((one) => calibrate(one, targets, at))
  const byCheck: Partial<Record<Check, CalibrationReport>> = Object.fromEntries(
    reports.map((report) => [report.loaded.check, report]),
  )
  const combined = loaded.combined ? combine(loaded.combined, targets, byCheck) : undefined
  if (values.report) writeFileSync(values.report, renderReports(reports, combined))
  const text = [
    ...reports.map(formatCalibration),
    ...(loaded.leftOut.length
      ? [`Not calibrated alone, no labeled scores: ${loaded.leftOut.join(', ')}.`]
      : []),
    ...(combined ? [formatCombined(combined)] : []),
  ]
  process.stdout.write(
    values.json
      ? `${JSON.stringify(
          {
            checks: Object.fromEntries(
              reports.map((report) => [report.loaded.check, calibrationJson(report)]),
            ),
            ...(loaded.leftOut.length ? { leftOut: loaded.leftOut } : {}),
            ...(combined ? { combined } : {}),
          },
          null,
          2,
        )}\n`
      : `${text.join(`\n\n${'─'.repeat(72)}\n\n`)}\n`,
  )
  if (values.report && !values.json) process.stdout.write(`\nreport: ${values.report}\n`)
  return 0
}

async function scoreCommand(args: string[]): Promise<number> {
  const { values } = parseCommand(
    {
      command: 'score',
      flags: SCORE_OPTIONS,
      positionals: {
        count: 0,
        message: 'score takes no positional argument: give the text with --question and --context',
      },
      usage: COMMAND_USAGE.score,
    },
    args,
  )
  if (!values.question) throw new UsageError('score needs --question <text>')
  if (!values.context?.length) throw new UsageError('score needs at least one --context <text>')
  const thresholds = validateThresholds(
    {
      blockBelow: number('block-below', values['block-below'], 0.1, share, 'a number from 0 to 1'),
      flagBelow: number('flag-below', values['flag-below'], 0.5, share, 'a number from 0 to 1'),
    },
    { blockBelow: '--block-below', flagBelow: '--flag-below' },
  )
  const createJudge = await loadJudge()
  const result = await createJudge(judgeOptionsFrom(values, 30_000, 3)).judge({
    question: values.question,
    context: values.context,
  })
  const verdict = result.ok ? decide(result.score, thresholds) : undefined
  process.stdout.write(`${JSON.stringify({ ...result, verdict: verdict ?? null }, null, 2)}\n`)
  return result.ok ? 0 : 1
}

const COMMANDS = { eval: evalCommand, calibrate: calibrateCommand, score: scoreCommand } as const
type Command = keyof typeof COMMANDS
const isCommand = (name: string | undefined): name is Command =>
  name !== undefined && Object.hasOwn(COMMANDS, name)

/** Failures of the file system that the user's paths cause: said in one line, like bad data. */
const FILE_ERRORS = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM'])

/** Runs the CLI; returns the exit code. Errors in use or data are reported plainly, without a stack. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args
  try {
    if (isCommand(command)) {
      if (asksForHelp(rest)) {
        process.stdout.write(COMMAND_USAGE[command])
        return 0
      }
      return await COMMANDS[command](rest)
    }
    switch (command) {
      case '-v':
      case '--version':
      case 'version':
        process.stdout.write(`${packageJson.version}\n`)
        return 0
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        // `rag-guard help eval` is `rag-guard eval --help`.
        process.stdout.write(isCommand(rest[0]) ? COMMAND_USAGE[rest[0]] : USAGE)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(
          `unknown command ${JSON.stringify(command)}: use eval, calibrate or score`,
        )
    }
  } catch (error) {
    const code = (error as { code?: unknown }).code
    const known =
      error instanceof UsageError ||
      error instanceof DataError ||
      error instanceof ConfigurationError ||
      error instanceof BatchError ||
      (typeof code === 'string' && (FILE_ERRORS.has(code) || code.startsWith('ERR_PARSE_ARGS_')))
    if (!known) throw error
    // One line (a data error may list its lines below it), then where to look.
    const help =
      error instanceof UsageError ||
      (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))
    const where = isCommand(command) ? `rag-guard ${command} --help` : 'rag-guard --help'
    const message =
      error instanceof DataError ? error.message : (error as Error).message.split('\n')[0]
    process.stderr.write(`rag-guard: ${message}\n${help ? `run ${where} for the options\n` : ''}`)
    return 2
  }
}
