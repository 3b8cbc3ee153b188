/**
 * The workerd process behind a Miniflare instance, read from /proc (Linux only): its CPU time
 * and its memory. Miniflare spawns one workerd per instance as a child of this Node process and
 * does not expose its pid, so it is found as the child whose command is `workerd` and that was
 * not there before the instance started.
 *
 * CPU time comes two ways:
 *   - `utime + stime` of /proc/<pid>/stat: every thread of the process, dead ones included, in
 *     clock ticks (1/100 s here): exact in total, but coarse; measure over hundreds of ms.
 *   - the sum of /proc/<pid>/task/<tid>/schedstat: nanoseconds on CPU per live thread; fine
 *     grained, misses threads that exited in between (workerd's threads live as long as it does).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'

const TICKS_PER_SECOND = 100 // getconf CLK_TCK; Linux's USER_HZ is 100 on every common build

/**
 * Pids of this process's children whose command is `command`: `workerd`, or the tool a wrapper
 * runs it under (valgrind's callgrind shows as `callgrind-amd64`).
 */
export function workerdChildren(parent = process.pid, command = 'workerd'): Set<number> {
  const found = new Set<number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      const comm = stat.slice(stat.indexOf('(') + 1, close)
      const ppid = Number(stat.slice(close + 2).split(' ')[1])
      if (comm === command && ppid === parent) found.add(Number(entry))
    } catch {
      // The process ended while the list was read.
    }
  }
  return found
}

/** The one workerd child that is not in `before`. */
export function newWorkerd(before: Set<number>, command = 'workerd'): number {
  const fresh = [...workerdChildren(process.pid, command)].filter((pid) => !before.has(pid))
  if (fresh.length !== 1) {
    throw new Error(`expected one new workerd process, found ${fresh.length} (${fresh.join(', ')})`)
  }
  return fresh[0]!
}

export interface CpuReading {
  /** utime + stime of /proc/<pid>/stat, in ms (10 ms resolution). */
  statMs: number
  /** Sum of the threads' schedstat run time, in ms (ns resolution). */
  schedMs: number
}

export function readCpu(pid: number): CpuReading {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // After "pid (comm) ", fields[0] is state (field 3); utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12])
  let nanoseconds = 0
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      nanoseconds += Number(
        readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0],
      )
    } catch {
      // The thread ended.
    }
  }
  return { statMs: (ticks * 1000) / TICKS_PER_SECOND, schedMs: nanoseconds / 1e6 }
}

export function cpuSince(pid: number, before: CpuReading): CpuReading {
  const now = readCpu(pid)
  return { statMs: now.statMs - before.statMs, schedMs: now.schedMs - before.schedMs }
}

/**
 * Waits until the process has used (almost) no CPU for `quietMs`: work the Worker left running
 * after its responses (`waitUntil`: cache writes, decision-log lines) is then done and counted.
 */
export async function settle(pid: number, quietMs = 150, thresholdMs = 0.5, limitMs = 10_000) {
  const started = Date.now()
  let last = readCpu(pid).schedMs
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, quietMs))
    const now = readCpu(pid).schedMs
    if (now - last < thresholdMs || Date.now() - started > limitMs) return
    last = now
  }
}

export interface MemoryReading {
  /** Resident set size now, in MiB. */
  rssMiB: number
  /** Peak resident set size since start or since {@link resetPeakRss}, in MiB. */
  hwmMiB: number
}

export function readMemory(pid: number): MemoryReading {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1])
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 }
}

/** Resets the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0, `clear_refs` 5). */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}
