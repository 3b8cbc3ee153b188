/**
 * A local stand-in of the OpenAI Batch API (Files and Batches), in front of any server that
 * speaks chat completions (the scripted stub, the stand-in model): each request of a batch is
 * sent to that server as it is, and its answer lands in the output file (200) or the error file
 * (any other status), matched by `custom_id`, as the API does.
 *
 *   POST /v1/files                       multipart (purpose, file) → a file object
 *   GET  /v1/files/:id/content           the file's bytes
 *   POST /v1/batches                     {input_file_id, endpoint, completion_window, metadata}
 *   GET  /v1/batches                     the batches, newest first (one page)
 *   GET  /v1/batches/:id                 the batch; each look moves it on (below)
 *   POST /v1/batches/:id/cancel          cancelling; cancelled at the next look
 *
 * Time is counted in looks, not in milliseconds, so tests are deterministic under any load: a
 * batch is `validating` when created; the next look validates the input (a bad line, a mixed
 * model, the wrong endpoint or too many requests or bytes fail the batch with `errors`, as the
 * API does) and moves it to `in_progress`; each look after that runs `perLook` requests; once
 * all have run, `finalizing`, then `completed` with its files. `expireAfter` requests in, the
 * batch `expired`: the rest are in the error file as `batch_expired`, the results so far kept.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface BatchScript {
  /** Requests run per look at an `in_progress` batch. @default all */
  perLook?: number
  /** The window expires after this many requests of a batch have run. */
  expireAfter?: number
  /** What one input file may hold. @default 50,000 requests, 200 MB */
  maxRequests?: number
  maxBytes?: number
  /** Answer 404 to the Files and Batches APIs, as a chat-only server does. */
  noBatchApi?: boolean
}

interface StoredFile {
  id: string
  filename: string
  purpose: string
  content: string
}

interface StoredBatch {
  id: string
  inputFileId: string
  endpoint: string
  status: string
  metadata: Record<string, string>
  createdAt: number
  lines: Array<{ custom_id: string; body: unknown }>
  ran: number
  output: string[]
  errors: string[]
  failedCount: number
  errorsData?: Array<{ code: string; line: number; message: string }>
  outputFileId?: string
  errorFileId?: string
  cancelRequested?: boolean
}

export interface BatchStandIn {
  origin: string
  /** The base URL to give the CLI (`OPENAI_BASE_URL`). */
  baseURL: string
  script: BatchScript
  /** Every call, `METHOD /path`, in order (to see what a run asked for). */
  calls: string[]
  /** The batches made so far, oldest first. */
  batches(): Array<{ id: string; status: string; requests: number; inputFileId: string }>
  /** The text of a stored file (an uploaded input file, an output or error file). */
  file(id: string): string | undefined
  close(): Promise<void>
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => resolve(Buffer.concat(chunks)))
    request.on('error', reject)
  })
}

/** Starts the stand-in on 127.0.0.1, sending batched requests to `chatBaseURL`. */
export async function startBatchStandIn(
  chatBaseURL: string,
  script: BatchScript = {},
): Promise<BatchStandIn> {
  const files = new Map<string, StoredFile>()
  const batches = new Map<string, StoredBatch>()
  const calls: string[] = []
  let counter = 0
  const next = (prefix: string) => `${prefix}-standin${String(++counter).padStart(5, '0')}`
  const now = () => Math.floor(Date.now() / 1000)

  const storeFile = (filename: string, purpose: string, content: string) => {
    const file = { id: next('file'), filename, purpose, content }
    files.set(file.id, file)
    return file
  }
  const fileObject = (file: StoredFile) => ({
    id: file.id,
    object: 'file',
    bytes: Buffer.byteLength(file.content),
    created_at: now(),
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
  })
  const batchObject = (batch: StoredBatch) => ({
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: batch.errorsData ? { object: 'list', data: batch.errorsData } : null,
    input_file_id: batch.inputFileId,
    completion_window: '24h',
    status: batch.status,
    output_file_id: batch.outputFileId ?? null,
    error_file_id: batch.errorFileId ?? null,
    created_at: batch.createdAt,
    request_counts: {
      total: batch.lines.length,
      completed: batch.ran - batch.failedCount,
      failed: batch.failedCount,
    },
    metadata: batch.metadata,
  })

  /** The input's problems, as the API reports them: code, line (1-based) and message. */
  function validate(batch: StoredBatch, content: string) {
    const problems: Array<{ code: string; line: number; message: string }> = []
    const seen = new Set<string>()
    let model: unknown
    const lines = content.split('\n').filter((line) => line.trim() !== '')
    if (lines.length > (script.maxRequests ?? 50_000))
      problems.push({ code: 'too_many_requests', line: 0, message: 'too many requests' })
    if (Buffer.byteLength(content) > (script.maxBytes ?? 200 * 1024 * 1024))
      problems.push({ code: 'file_too_large', line: 0, message: 'the file is too large' })
    lines.forEach((text, index) => {
      let line: { custom_id?: unknown; method?: unknown; url?: unknown; body?: { model?: unknown } }
      try {
        line = JSON.parse(text)
      } catch {
        problems.push({ code: 'invalid_json_line', line: index + 1, message: 'not JSON' })
        return
      }
      if (typeof line.custom_id !== 'string' || seen.has(line.custom_id))
        problems.push({ code: 'duplicate_custom_id', line: index + 1, message: 'custom_id' })
      seen.add(String(line.custom_id))
      if (line.method !== 'POST' || line.url !== batch.endpoint)
        problems.push({ code: 'invalid_url', line: index + 1, message: 'url' })
      if (index === 0) model = line.body?.model
      else if (line.body?.model !== model)
        problems.push({ code: 'mixed_models', line: index + 1, message: 'one model per file' })
      if (!problems.length)
        batch.lines.push({ custom_id: line.custom_id as string, body: line.body })
    })
    return problems
  }

  async function runOne(batch: StoredBatch, line: StoredBatch['lines'][number]) {
    const response = await fetch(`${chatBaseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(line.body),
    })
    const text = await response.text()
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = { error: { message: 'not JSON' } }
    }
    const record = JSON.stringify({
      id: next('batch_req'),
      custom_id: line.custom_id,
      response: { status_code: response.status, request_id: next('req'), body },
      error: null,
    })
    if (response.status === 200) batch.output.push(record)
    else {
      batch.errors.push(record)
      batch.failedCount++
    }
  }

  function finish(batch: StoredBatch, status: string, notRun?: string) {
    if (notRun)
      for (const line of batch.lines.slice(batch.ran))
        batch.errors.push(
          JSON.stringify({
            id: next('batch_req'),
            custom_id: line.custom_id,
            response: null,
            error: { code: notRun, message: `${notRun} (stand-in)` },
          }),
        )
    if (batch.output.length)
      batch.outputFileId = storeFile(
        'output.jsonl',
        'batch_output',
        `${batch.output.join('\n')}\n`,
      ).id
    if (batch.errors.length)
      batch.errorFileId = storeFile(
        'errors.jsonl',
        'batch_output',
        `${batch.errors.join('\n')}\n`,
      ).id
    batch.status = status
  }

  /** One look moves a batch one step on. */
  async function advance(batch: StoredBatch) {
    switch (batch.status) {
      case 'validating': {
        const problems = validate(batch, files.get(batch.inputFileId)?.content ?? '')
        if (problems.length) {
          batch.errorsData = problems
          batch.lines = []
          batch.status = 'failed'
        } else batch.status = 'in_progress'
        return
      }
      case 'cancelling':
        return finish(batch, 'cancelled', 'batch_cancelled')
      case 'in_progress': {
        const until = Math.min(batch.lines.length, batch.ran + (script.perLook ?? Infinity))
        const limit = script.expireAfter ?? Infinity
        // Eight at a time, as a provider runs them side by side.
        while (batch.ran < until && batch.ran < limit) {
          const slice = batch.lines.slice(batch.ran, Math.min(until, limit, batch.ran + 8))
          await Promise.all(slice.map((line) => runOne(batch, line)))
          batch.ran += slice.length
        }
        if (batch.ran >= limit && batch.ran < batch.lines.length)
          return finish(batch, 'expired', 'batch_expired')
        if (batch.ran === batch.lines.length) batch.status = 'finalizing'
        return
      }
      case 'finalizing':
        return finish(batch, 'completed')
    }
  }

  const server: Server = createServer(async (incoming, response) => {
    const url = new URL(incoming.url ?? '/', 'http://stand-in')
    const json = (status: number, value: unknown) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
    const notFound = (what: string) =>
      json(404, { error: { message: `no ${what}`, type: 'invalid_request_error' } })
    calls.push(`${incoming.method} ${url.pathname}`)
    if (script.noBatchApi) return notFound('such route')
    const body = await readBody(incoming)
    const path = url.pathname.replace(/^\/v1/, '')

    if (incoming.method === 'POST' && path === '/files') {
      const form = await new Request('http://stand-in/', {
        method: 'POST',
        headers: { 'content-type': incoming.headers['content-type'] ?? '' },
        body,
      }).formData()
      const file = form.get('file')
      if (form.get('purpose') !== 'batch' || !(file instanceof Blob))
        return json(400, { error: { message: 'purpose batch and a file are required' } })
      return json(200, fileObject(storeFile((file as File).name, 'batch', await file.text())))
    }
    const content = path.match(/^\/files\/([^/]+)\/content$/)
    if (incoming.method === 'GET' && content) {
      const file = files.get(content[1]!)
      if (!file) return notFound('such file')
      return response
        .writeHead(200, { 'content-type': 'application/octet-stream' })
        .end(file.content)
    }
    if (incoming.method === 'POST' && path === '/batches') {
      const asked = JSON.parse(body.toString('utf8')) as {
        input_file_id?: string
        endpoint?: string
        completion_window?: string
        metadata?: Record<string, string>
      }
      if (!asked.input_file_id || !files.has(asked.input_file_id)) return notFound('such file')
      if (asked.completion_window !== '24h' || !asked.endpoint)
        return json(400, { error: { message: 'endpoint and completion_window 24h required' } })
      const batch: StoredBatch = {
        id: next('batch'),
        inputFileId: asked.input_file_id,
        endpoint: asked.endpoint,
        status: 'validating',
        metadata: asked.metadata ?? {},
        createdAt: now(),
        lines: [],
        ran: 0,
        output: [],
        errors: [],
        failedCount: 0,
      }
      batches.set(batch.id, batch)
      return json(200, batchObject(batch))
    }
    if (incoming.method === 'GET' && path === '/batches') {
      const data = [...batches.values()].reverse().map(batchObject)
      return json(200, { object: 'list', data, has_more: false, first_id: data[0]?.id ?? null })
    }
    const one = path.match(/^\/batches\/([^/]+)(\/cancel)?$/)
    const batch = one && batches.get(one[1]!)
    if (one && !batch) return notFound('such batch')
    if (batch && incoming.method === 'GET' && !one![2]) {
      await advance(batch)
      return json(200, batchObject(batch))
    }
    if (batch && incoming.method === 'POST' && one![2]) {
      if (['validating', 'in_progress', 'finalizing'].includes(batch.status))
        batch.status = 'cancelling'
      return json(200, batchObject(batch))
    }
    return notFound('such route')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    baseURL: `${origin}/v1`,
    script,
    calls,
    batches: () =>
      [...batches.values()].map((batch) => ({
        id: batch.id,
        status: batch.status,
        requests: batch.lines.length,
        inputFileId: batch.inputFileId,
      })),
    file: (id) => files.get(id)?.content,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
