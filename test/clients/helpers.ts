/** Test-side helpers of the client tests. */
import { expect } from 'vitest'
import type { Case } from './rig'
import type { StreamVerdict } from './verdict'

/** The verdict an annotated stream must carry for a case (P(True) as the judge was scripted). */
export const expectedVerdict = (item: Case): StreamVerdict => ({
  verdict: item.verdict,
  score: expect.closeTo(item.score, 6) as unknown as number,
  reason: null,
  mode: 'enforce',
})

/** Runs `run` once per key; later calls get the same promise (the endpoint alone, asked once per question). */
export function once<A extends unknown[], R>(run: (...args: A) => Promise<R>) {
  const done = new Map<string, Promise<R>>()
  return (...args: A): Promise<R> => {
    const key = JSON.stringify(args)
    let found = done.get(key)
    if (!found) {
      found = run(...args)
      done.set(key, found)
    }
    return found
  }
}

/** An observation without the fields that legitimately differ behind the guard (its headers). */
export const comparable = <T extends object>(observed: T) => {
  const { headers: _headers, ...rest } = observed as T & { headers?: unknown }
  return rest
}

/** The token counts of an OpenAI `usage` object, whatever their values. */
export const OPENAI_USAGE = {
  prompt_tokens: expect.any(Number),
  completion_tokens: expect.any(Number),
  total_tokens: expect.any(Number),
}

/** SSE body sent by the guard in annotate mode: the endpoint's bytes, then exactly one comment line. */
// A line end first: the guard pipes a stream's tail natively once it needs nothing more from it,
// so it adds one not knowing the stream ended at one (here it did: the line end is a blank line).
export const VERDICT_TAIL = /^\n: rag-guard (\{[^\n]*\})\n\n$/
