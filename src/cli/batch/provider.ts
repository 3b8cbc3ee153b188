/**
 * The provider's Batch API through the official `openai` client (its `files` and `batches`
 * resources), with the base URL, key and headers the CLI takes for the judge. Errors are told
 * in one line of our own: the API's own text can echo what was sent, and is never shown.
 */
import { createReadStream } from 'node:fs'
import OpenAI, { APIError } from 'openai'
import { BATCH_ENDPOINT } from './inputs'
import type { BatchPart, BatchStatus, RequestCounts } from './state'

/** The Batch API cannot be used as asked: told in one line, and the run stops (exit 2). */
export class BatchError extends Error {
  override readonly name = 'BatchError'
}

export interface ProviderOptions {
  apiKey?: string
  baseURL?: string
  headers?: Record<string, string>
  /** @default globalThis.fetch */
  fetch?: typeof fetch
}

/** What the runner needs of a batch. */
export interface BatchView {
  id: string
  status: BatchStatus
  inputFileId: string
  requestCounts?: RequestCounts
  outputFileId?: string
  errorFileId?: string
  errors?: Array<{ code?: string; line?: number | null }>
}

export interface BatchProvider {
  /** Throws a {@link BatchError} when the server has no Batch API, before any work is done. */
  probe(): Promise<void>
  upload(path: string): Promise<string>
  /** The batch already made of this input file (a crash between creating and recording it). */
  findBatch(inputFileId: string): Promise<BatchView | undefined>
  create(inputFileId: string, metadata: Record<string, string>): Promise<BatchView>
  retrieve(batchId: string): Promise<BatchView>
  cancel(batchId: string): Promise<BatchView>
  /** A file's content, as it arrives. */
  content(fileId: string): Promise<ReadableStream<Uint8Array>>
}

const view = (batch: OpenAI.Batches.Batch): BatchView => ({
  id: batch.id,
  status: batch.status,
  inputFileId: batch.input_file_id,
  ...(batch.request_counts ? { requestCounts: batch.request_counts } : {}),
  ...(batch.output_file_id ? { outputFileId: batch.output_file_id } : {}),
  ...(batch.error_file_id ? { errorFileId: batch.error_file_id } : {}),
  ...(batch.errors?.data?.length
    ? { errors: batch.errors.data.map(({ code, line }) => ({ code, line })) }
    : {}),
})

export function openAIBatchProvider(options: ProviderOptions): BatchProvider {
  const where = options.baseURL ?? 'the OpenAI API'
  const client = new OpenAI({
    // OpenAI-compatible servers that need no key still need a non-empty one in the client.
    apiKey: options.apiKey || 'no-key',
    ...(options.baseURL ? { baseURL: options.baseURL } : {}),
    ...(options.headers ? { defaultHeaders: options.headers } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  })

  /** Runs a call; an API error becomes one line that says what to do. */
  async function call<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (error) {
      if (!(error instanceof APIError)) throw error
      const status = error.status
      if (status === undefined)
        throw new BatchError(`${what}: ${where} could not be reached; run the same command again`)
      if (status === 401 || status === 403)
        throw new BatchError(`${what}: ${where} answered ${status}: check OPENAI_API_KEY`)
      throw new BatchError(`${what}: ${where} answered ${status}`)
    }
  }

  /** A chat-only server (vLLM, llama.cpp, Ollama, the stand-in model) has no Batch API. */
  const unavailable = (error: unknown, asking: string) =>
    error instanceof APIError && [404, 405, 501].includes(error.status ?? 0)
      ? new BatchError(
          `${where} has no Batch API (${asking} answered ${error.status}): run rag-guard eval without --batch`,
        )
      : undefined

  return {
    async probe() {
      try {
        await client.batches.list({ limit: 1 })
      } catch (error) {
        throw unavailable(error, 'GET /batches') ?? error
      }
    },
    async upload(path) {
      try {
        const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' })
        return file.id
      } catch (error) {
        const missing = unavailable(error, 'uploading the input file')
        if (missing) throw missing
        return call('uploading a batch input file', () => Promise.reject(error))
      }
    },
    findBatch: (inputFileId) =>
      call('listing batches', async () => {
        for await (const batch of client.batches.list({ limit: 100 }))
          if (batch.input_file_id === inputFileId) return view(batch)
        return undefined
      }),
    create: (inputFileId, metadata) =>
      call('creating a batch', async () =>
        view(
          await client.batches.create({
            input_file_id: inputFileId,
            endpoint: BATCH_ENDPOINT,
            completion_window: '24h',
            metadata,
          }),
        ),
      ),
    retrieve: (batchId) =>
      call(`reading batch ${batchId}`, async () => view(await client.batches.retrieve(batchId))),
    cancel: (batchId) =>
      call(`cancelling batch ${batchId}`, async () => view(await client.batches.cancel(batchId))),
    content: (fileId) =>
      call(`downloading file ${fileId}`, async () => {
        const response = await client.files.content(fileId)
        if (!response.body) throw new BatchError(`file ${fileId} came back empty`)
        return response.body as ReadableStream<Uint8Array>
      }),
  }
}

/** A part as the provider last said it is. */
export function updatePart(part: BatchPart, batch: BatchView): void {
  part.batchId = batch.id
  part.status = batch.status
  if (batch.requestCounts) part.requestCounts = batch.requestCounts
  if (batch.outputFileId) part.outputFileId = batch.outputFileId
  if (batch.errorFileId) part.errorFileId = batch.errorFileId
  if (batch.errors) part.rejected = batch.errors
}
