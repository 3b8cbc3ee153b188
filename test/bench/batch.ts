/**
 * `npx tsx test/bench/batch.ts [rows]`: what `rag-guard eval --batch` costs on this machine for a
 * large labeled set (100,000 rows, both checks, by default), each phase in a process of its own
 * so that its peak memory is its own:
 *
 *   build    read the rows, build every judge request and write the Batch API input files,
 *            split at 50,000 requests / 200 MB: time, peak RSS, files and bytes
 *   score    read a batch's output files as they stream in (from the stand-in Batch API over
 *            HTTP), score every reply with the online judge's code, write the output: time,
 *            peak RSS
 *
 * The replies are the stand-in model's (word overlap, with 20 top_logprobs), written straight
 * into the stand-in's output files, since running 200,000 chat requests through HTTP would
 * measure the stand-in, not the CLI.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { collectPart, emptyCollected } from '../../src/cli/batch/collect'
import { buildInputs } from '../../src/cli/batch/inputs'
import { openAIBatchProvider } from '../../src/cli/batch/provider'
import { partIds } from '../../src/cli/batch/state'
import { readExamples, type Example, type ScoreRecord } from '../../src/cli/data'
import { createJudgeRequests } from '../../src/judge/requests'
import type { Check } from '../../src/review/checks'

const WORDS =
  'the tower river bridge city council built opened metres high north station century museum garden old new railway harbour stone'.split(
    ' ',
  )

/** A HaluEval-sized row: a question, four documents of about 800 characters, an answer. */
function row(index: number): string {
  const word = (k: number) => WORDS[(index * 7 + k * 13) % WORDS.length]
  const sentence = (k: number) =>
    `The ${word(k)} ${word(k + 1)} of place ${index} was ${word(k + 2)} in ${1800 + ((index + k) % 200)}.`
  const document = (d: number) =>
    Array.from({ length: 12 }, (_, k) => sentence(d * 12 + k)).join(' ')
  return JSON.stringify({
    id: `row-${index}`,
    question: `When was the ${word(1)} ${word(2)} of place ${index} ${word(3)}?`,
    context: [0, 1, 2, 3].map(document),
    answer: `It was ${word(3)} in ${1800 + ((index + 1) % 200)}.`,
    sufficient: index % 2 === 0,
    grounded: index % 3 !== 0,
  })
}

const checks: Check[] = ['sufficiency', 'groundedness']
const requests = () => createJudgeRequests({ apiKey: 'k', model: 'gpt-4o-mini' })
const peak = () => Math.round(process.resourceUsage().maxRSS / 1024)
const rss = () => Math.round(process.memoryUsage().rss / 1024 / 1024)

function load(data: string): Example[] {
  return readExamples(readFileSync(data, 'utf8'), data, { checks }).examples
}

/** Phase `build`: input files of every request. */
function build(data: string, output: string) {
  const examples = load(data)
  const before = { rss: rss(), peak: peak() }
  const startedAt = performance.now()
  const built = buildInputs(
    output,
    requests(),
    (function* () {
      for (const example of examples) for (const check of checks) yield { example, check }
    })(),
    1,
  )
  const ms = performance.now() - startedAt
  const parts = built.parts.map((part) => ({
    name: part.name,
    requests: part.requests,
    bytes: part.bytes,
  }))
  writeFileSync(`${output}.parts.json`, JSON.stringify(parts))
  return {
    ms: Math.round(ms),
    rssBefore: before.rss,
    peakBefore: before.peak,
    peakAfter: peak(),
    parts,
  }
}

/** A stand-in reply to a request line: the word-overlap P(True) as 20 top_logprobs. */
function reply(line: string): string {
  const request = JSON.parse(line) as { custom_id: string }
  const p = 0.05 + ((request.custom_id.length * 37 + line.length) % 90) / 100
  const top = [
    { token: 'True', logprob: Math.log(p), bytes: [84, 114, 117, 101] },
    { token: 'False', logprob: Math.log(1 - p), bytes: [70, 97, 108, 115, 101] },
    ...Array.from({ length: 18 }, (_, k) => ({ token: `t${k}`, logprob: -12 - k, bytes: null })),
  ]
  return JSON.stringify({
    id: 'batch_req',
    custom_id: request.custom_id,
    response: {
      status_code: 200,
      request_id: 'req',
      body: {
        id: 'chatcmpl',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-mini-2024-07-18',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: p > 0.5 ? 'True' : 'False', refusal: null },
            logprobs: {
              content: [
                {
                  token: p > 0.5 ? 'True' : 'False',
                  logprob: Math.log(Math.max(p, 1 - p)),
                  bytes: null,
                  top_logprobs: top,
                },
              ],
              refusal: null,
            },
            finish_reason: 'length',
          },
        ],
        usage: { prompt_tokens: 1200, completion_tokens: 1, total_tokens: 1201 },
      },
    },
    error: null,
  })
}

/** Phase `score`: every part's output file, streamed from a local file server, scored. */
async function score(data: string, output: string) {
  const { createServer } = await import('node:http')
  const { createReadStream } = await import('node:fs')
  const server = createServer((request, response) => {
    const name = request.url!.match(/files\/(part-\d+)\/content/)?.[1]
    response.writeHead(200, { 'content-type': 'application/octet-stream' })
    createReadStream(`${output}.batch/${name}.out.jsonl`).pipe(response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const provider = openAIBatchProvider({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'k' })
  const examples = load(data)
  const byId = new Map(examples.map((example) => [example.id, example]))
  const parts = JSON.parse(readFileSync(`${output}.parts.json`, 'utf8')) as Array<{
    name: string
    requests: number
    bytes: number
  }>
  const before = { rss: rss(), peak: peak() }
  const startedAt = performance.now()
  const { openSync, writeSync, closeSync } = await import('node:fs')
  const fd = openSync(output, 'a')
  const into = emptyCollected()
  for (const part of parts) {
    await collectPart({
      requests: requests(),
      provider,
      part: {
        ...part,
        status: 'completed',
        outputFileId: part.name,
        batchId: `batch-${part.name}`,
      },
      ids: new Set(partIds(output, { ...part })),
      examples: byId,
      done: new Map(),
      write: (record: ScoreRecord) => writeSync(fd, `${JSON.stringify(record)}\n`),
      into,
    })
  }
  closeSync(fd)
  const ms = performance.now() - startedAt
  server.close()
  return {
    ms: Math.round(ms),
    rssBefore: before.rss,
    peakBefore: before.peak,
    peakAfter: peak(),
    scored: into.scored,
    unknown: into.unknown,
  }
}

const [phase, data, output] = process.argv.slice(2)
if (phase === 'build') console.log(JSON.stringify(build(data!, output!)))
else if (phase === 'score') console.log(JSON.stringify(await score(data!, output!)))
else {
  const rows = Number(phase ?? 100_000)
  const folder = mkdtempSync(join(tmpdir(), 'rag-guard-batch-bench-'))
  const dataFile = join(folder, 'data.jsonl')
  const out = join(folder, 'scores.jsonl')
  writeFileSync(dataFile, Array.from({ length: rows }, (_, index) => row(index)).join('\n'))
  const self = import.meta.filename
  const run = (which: string) => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', self, which, dataFile, out], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    })
    if (child.status !== 0) throw new Error(child.stderr)
    return JSON.parse(child.stdout.trim().split('\n').at(-1)!)
  }
  const built = run('build')
  // The stand-in's replies, one output file per part.
  for (const part of built.parts as Array<{ name: string }>) {
    const input = readFileSync(join(`${out}.batch`, `${part.name}.jsonl`), 'utf8')
    writeFileSync(
      join(`${out}.batch`, `${part.name}.out.jsonl`),
      input.split('\n').filter(Boolean).map(reply).join('\n') + '\n',
    )
  }
  const scored = run('score')
  const size = (file: string) => statSync(file).size
  const outputs = readdirSync(`${out}.batch`).filter((name) => name.endsWith('.out.jsonl'))
  console.log(
    JSON.stringify(
      {
        rows,
        checks: checks.length,
        dataMB: +(size(dataFile) / 2 ** 20).toFixed(1),
        build: built,
        outputFilesMB: outputs.map(
          (name) => +(size(join(`${out}.batch`, name)) / 2 ** 20).toFixed(1),
        ),
        score: scored,
        scoresMB: +(size(out) / 2 ** 20).toFixed(1),
      },
      null,
      2,
    ),
  )
  rmSync(folder, { recursive: true, force: true })
}
