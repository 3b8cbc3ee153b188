/**
 * A minimal Chrome DevTools Protocol client for workerd's inspector (the one `wrangler check
 * startup` uses): heap usage, CPU profiles, garbage collection of one Worker's isolate.
 * Uses `ws`, which Miniflare itself depends on.
 */
import WebSocket from 'ws'

export interface CpuProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
  hitCount?: number
}

export interface CpuProfile {
  nodes: CpuProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface Inspector {
  send<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T>
  /** Calls `listener` with the params of every event named `method`. */
  on(method: string, listener: (params: Record<string, unknown>) => void): void
  close(): void
}

export async function connectInspector(url: string): Promise<Inspector> {
  const socket = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  let nextId = 1
  const waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  const listeners = new Map<string, Array<(params: Record<string, unknown>) => void>>()
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as {
      id?: number
      method?: string
      params?: Record<string, unknown>
      result?: unknown
      error?: { message: string }
    }
    if (message.id === undefined) {
      for (const listener of listeners.get(message.method ?? '') ?? [])
        listener(message.params ?? {})
      return
    }
    const pending = waiting.get(message.id)
    waiting.delete(message.id)
    if (message.error) pending?.reject(new Error(message.error.message))
    else pending?.resolve(message.result)
  })
  return {
    send<T>(method: string, params: Record<string, unknown> = {}) {
      const id = nextId++
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
        socket.send(JSON.stringify({ id, method, params }))
      })
    },
    on(method, listener) {
      listeners.set(method, [...(listeners.get(method) ?? []), listener])
    },
    close: () => socket.close(),
  }
}

/** Milliseconds of a profile's samples that are not `(idle)`: the CPU the profiled thread used. */
export function busyMs(profile: CpuProfile): number {
  const idle = new Set(
    profile.nodes.filter((node) => node.callFrame.functionName === '(idle)').map((node) => node.id),
  )
  let total = 0
  profile.samples.forEach((sample, index) => {
    if (!idle.has(sample)) total += profile.timeDeltas[index] ?? 0
  })
  return total / 1000
}
