/**
 * How busy the machine was with other work while the benchmark ran: every process's CPU time
 * from /proc, sampled twice a second, split into the benchmark's own process tree (this Node
 * process, its stub, its workerd children) and everything else. Latency figures are only as
 * good as the machine was quiet; CPU-time figures suffer much less (they count the process's
 * own CPU), but share caches and cores.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'

interface ProcessTicks {
  ppid: number
  ticks: number
}

function snapshot(): Map<number, ProcessTicks> {
  const processes = new Map<number, ProcessTicks>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      processes.set(Number(entry), {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
      })
    } catch {
      // Gone.
    }
  }
  return processes
}

function descendants(processes: Map<number, ProcessTicks>, root: number): Set<number> {
  const tree = new Set([root])
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, { ppid }] of processes) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid)
        grew = true
      }
    }
  }
  return tree
}

export interface MachineLoad {
  /** Share of all cores' time used by processes outside the benchmark, over the run. */
  foreignShare: number
  /** The largest such share over any 10-second window. */
  foreignPeakShare: number
  /** Share used by the benchmark itself (client, stub, workerd). */
  ownShare: number
}

export function monitorMachineLoad(intervalMs = 500): { stop(): MachineLoad } {
  const capacityPerMs = (cpus().length * 100) / 1000 // ticks per ms, all cores
  let previous = snapshot()
  let previousAt = performance.now()
  const startedAt = previousAt
  let own = 0
  let foreign = 0
  const windows: Array<{ at: number; foreign: number }> = []
  const sample = () => {
    const now = snapshot()
    const at = performance.now()
    const tree = descendants(now, process.pid)
    let stepForeign = 0
    for (const [pid, current] of now) {
      const before = previous.get(pid)?.ticks ?? 0
      const delta = Math.max(0, current.ticks - before)
      if (tree.has(pid)) own += delta
      else stepForeign += delta
    }
    foreign += stepForeign
    windows.push({ at, foreign: stepForeign })
    previous = now
    previousAt = at
  }
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
      sample()
      const elapsed = previousAt - startedAt
      let peak = 0
      for (let start = 0; start < windows.length; start++) {
        let sum = 0
        let end = start
        while (end < windows.length && windows[end]!.at - windows[start]!.at < 10_000) {
          sum += windows[end]!.foreign
          end++
        }
        const span = Math.max(windows[end - 1]!.at - windows[start]!.at + intervalMs, intervalMs)
        if (span >= 5_000) peak = Math.max(peak, sum / (span * capacityPerMs))
      }
      return {
        foreignShare: foreign / (elapsed * capacityPerMs),
        foreignPeakShare: peak,
        ownShare: own / (elapsed * capacityPerMs),
      }
    },
  }
}
