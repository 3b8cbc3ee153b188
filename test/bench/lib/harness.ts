/**
 * The benchmark's moving parts: Workers served by their own workerd (so its CPU time is theirs),
 * an HTTP client that times first byte and end, a bounded request pool, and CPU time per
 * request read from /proc.
 */
import {
  startLocalWorker,
  type LocalWorker,
  type LocalWorkerOptions,
} from '../../support/local-worker'
import { cpuSince, readCpu, settle } from '../../support/workerd-process'

export interface Target extends LocalWorker {
  name: string
  /** Lines the Worker wrote to stdout (console.log), drained as they come. */
  stdoutLines: number
  /** Decision-log lines among them. */
  decisionLines: number
  stderr: string[]
}

export async function startTarget(
  name: string,
  bundlePath: string,
  bindings: Record<string, unknown>,
  options: Omit<LocalWorkerOptions, 'onLine'> = {},
): Promise<Target> {
  const target = { name, stdoutLines: 0, decisionLines: 0, stderr: [] as string[] } as Target
  const worker = await startLocalWorker(bundlePath, bindings, {
    ...options,
    onLine: (line, stream) => {
      if (stream === 'stderr') {
        if (target.stderr.length < 50) target.stderr.push(line)
        return
      }
      target.stdoutLines += 1
      if (line.includes('"rag-guard decision"')) target.decisionLines += 1
    },
  })
  return Object.assign(target, worker)
}

export interface Exchange {
  status: number
  headers: Headers
  text: string
  /** ms from the request to the first body byte (or to the end when the body is empty). */
  firstByteMs: number
  totalMs: number
}

/** One POST with a JSON body (already serialized); reads the whole answer. */
export async function post(url: string, body: string): Promise<Exchange> {
  const startedAt = performance.now()
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let first: number | undefined
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    first ??= performance.now()
    text += decoder.decode(next.value, { stream: true })
  }
  text += decoder.decode()
  const end = performance.now()
  return {
    status: response.status,
    headers: response.headers,
    text,
    firstByteMs: (first ?? end) - startedAt,
    totalMs: end - startedAt,
  }
}

/** Runs `count` jobs, at most `concurrency` at a time, in index order. */
export async function pool<T>(
  count: number,
  concurrency: number,
  job: (index: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next++
        results[index] = await job(index)
      }
    }),
  )
  return results
}

export interface CpuResult {
  /** CPU ms per request from utime + stime (/proc/<pid>/stat), idle use subtracted. */
  perRequestMs: number
  /** The same from the threads' schedstat (finer, live threads only). */
  perRequestSchedMs: number
  requests: number
  /** Total process CPU of the batch, ms, and its wall time. */
  totalMs: number
  wallMs: number
}

/** The workerd process's CPU use per ms when it serves nothing (timers, housekeeping). */
export async function idleRate(pid: number, ms = 1000): Promise<number> {
  await settle(pid)
  const before = readCpu(pid)
  const startedAt = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  return cpuSince(pid, before).schedMs / (performance.now() - startedAt)
}

/**
 * CPU time per request: warm up, wait for quiet, read the process's CPU, send `count` requests
 * (`concurrency` at a time), wait until the work the Worker left behind (waitUntil) is done,
 * read again, divide. `idlePerMs` × the elapsed time is subtracted.
 */
export async function cpuPerRequest(
  target: Target,
  options: {
    count: number
    warmup: number
    concurrency: number
    idlePerMs: number
    request: (index: number) => Promise<void>
  },
): Promise<CpuResult> {
  await pool(options.warmup, options.concurrency, (index) => options.request(-1 - index))
  await settle(target.pid)
  const before = readCpu(target.pid)
  const startedAt = performance.now()
  await pool(options.count, options.concurrency, options.request)
  const wallMs = performance.now() - startedAt
  await settle(target.pid)
  const elapsed = performance.now() - startedAt
  const used = cpuSince(target.pid, before)
  const idle = options.idlePerMs * elapsed
  return {
    perRequestMs: (used.statMs - idle) / options.count,
    perRequestSchedMs: (used.schedMs - idle) / options.count,
    requests: options.count,
    totalMs: used.statMs,
    wallMs,
  }
}
