/**
 * Benchmark only: single operations of the guard's request path, repeated `?n=` times per
 * request on the request's own `{ question, context }`, so that their CPU cost can be read from
 * the workerd process's CPU time apart from everything around them. `?op=`:
 *
 *   parse        JSON.parse of the request body (what the guard does once per request)
 *   cache-key    the verdict cache's key: JSON.stringify + SHA-256 of question and documents
 *   log-hashes   the decision log's hashes: SHA-256 of the question and of JSON.stringify(documents)
 *   log-line     one decision-log line: JSON.stringify of a record + console.log
 *   prompt       the judge prompt for question and documents
 *   digest       the documents' digest as the guard takes it (`listDigest`, a new list each time:
 *                each document behind its length joined, UTF-8 encode, SHA-256)
 *   digest-stream    the list's JSON written as a string to Workers' native `crypto.DigestStream`
 *                (no encoded copy in JavaScript, but JSON's scan; measured slower)
 *   body-none    a request with the body built (common to the next three), its body cancelled
 *   body-rewrap  + the body read (`arrayBuffer`), a new Request around the bytes, `TextDecoder`
 *                (the guard before issue 26); the new Request's body cancelled
 *   body-clone   + a clone read natively (`text()`); the request's own body cancelled (the guard now)
 *   body-text    + `text()` (the floor Workers)
 */
import { describeInput, logDecision, type DecisionRecord } from '../../../src/guard/decision-log'
import { cacheKey } from '../../../src/judge/cache'
import { buildJudgePrompt, PROMPT_VERSION } from '../../../src/judge/prompt'
import { listDigest } from '../../../src/hash'

const decoder = new TextDecoder()

const RECORD: DecisionRecord = {
  message: 'rag-guard decision',
  time: '2026-11-30T08:00:00.000Z',
  requestId: 'bench-0000',
  route: '/cpu-json/ask',
  path: '/cpu-json/ask',
  method: 'POST',
  format: 'json',
  mode: 'enforce',
  verdict: 'pass',
  applied: false,
  score: 0.9053,
  pTrue: 0.86,
  pFalse: 0.09,
  cache: 'miss',
  judgeLatencyMs: 18,
  addedLatencyMs: 0,
  status: 200,
  model: 'gpt-4o-mini',
  promptVersion: PROMPT_VERSION,
  questionChars: 41,
  contextDocuments: 8,
  contextChars: 16384,
  questionHash: 'a'.repeat(64),
  contextHash: 'b'.repeat(64),
}

export default {
  async fetch(request) {
    const url = new URL(request.url)
    const op = url.searchParams.get('op') ?? 'parse'
    const n = Number(url.searchParams.get('n') ?? 0)
    const text = await request.text()
    const { question, context } = JSON.parse(text) as { question: string; context: string[] }
    let sink = 0
    for (let index = 0; index < n; index++) {
      if (op === 'parse') sink += (JSON.parse(text) as { context: string[] }).context.length
      else if (op === 'cache-key')
        sink += (
          await cacheKey({
            judge: '["judge"]',
            promptVersion: PROMPT_VERSION,
            question,
            documents: context,
          })
        ).length
      else if (op === 'log-hashes')
        sink += Object.keys(await describeInput(question, context, false)).length
      else if (op === 'log-line') logDecision(RECORD)
      else if (op === 'digest') sink += (await listDigest([...context])).length
      else if (op === 'digest-stream') {
        const stream = new crypto.DigestStream('SHA-256')
        const writer = stream.getWriter()
        await Promise.all([writer.write(JSON.stringify(context) as never), writer.close()])
        sink += (await stream.digest).byteLength
      } else if (op.startsWith('body-')) {
        const built = new Request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: text,
        })
        if (op === 'body-none') await built.body!.cancel()
        else if (op === 'body-rewrap') {
          const bytes = new Uint8Array(await built.arrayBuffer())
          const rewrapped = new Request(built, { body: bytes, signal: built.signal })
          sink += decoder.decode(bytes).length
          await rewrapped.body!.cancel()
        } else if (op === 'body-clone') {
          const copy = built.clone()
          sink += (await copy.text()).length
          await built.body!.cancel()
        } else if (op === 'body-text') sink += (await built.text()).length
        else throw new Error(`unknown op ${op}`)
      } else if (op === 'prompt')
        sink += buildJudgePrompt(question, context).messages[1]!.content.length
      else throw new Error(`unknown op ${op}`)
    }
    return Response.json({ op, n, sink })
  },
} satisfies ExportedHandler
