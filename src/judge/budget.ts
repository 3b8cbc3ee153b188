/**
 * One judge step's time budget: every request and every wait inside it races one deadline, and
 * the caller's signal cancels it all. Failed attempts are retried while the wait still fits.
 */
import { classifyFailure, type ClassifiedFailure } from './failures'

export class JudgeTimeout extends Error {
  override readonly name = 'JudgeTimeout'
}

/** The first wait between attempts; it doubles with each retry. */
const RETRY_BASE_MS = 100

export interface Budget {
  /** Aborted at the deadline (with a {@link JudgeTimeout}) or when the caller cancels. */
  readonly signal: AbortSignal
  readonly deadline: number
  /** `work`, or a rejection as soon as the budget is spent or cancelled. */
  race<T>(work: Promise<T>): Promise<T>
  /** Whether the budget ended by its deadline (else: the caller cancelled). */
  timedOut(): boolean
  /** Stops the timer and cancels whatever is still running. */
  end(): void
}

export function startBudget(timeoutMs: number, signal?: AbortSignal): Budget {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new JudgeTimeout()), timeoutMs)
  const forwardAbort = () => controller.abort(signal?.reason)
  if (signal?.aborted) forwardAbort()
  signal?.addEventListener('abort', forwardAbort, { once: true })
  // Every wait races this, so the budget bounds the whole step whatever the client does.
  const aborted = new Promise<never>((_, reject) => {
    if (controller.signal.aborted) reject(controller.signal.reason)
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), {
      once: true,
    })
  })
  aborted.catch(() => {})
  return {
    signal: controller.signal,
    deadline: Date.now() + timeoutMs,
    race: (work) => Promise.race([work, aborted]),
    timedOut: () => controller.signal.reason instanceof JudgeTimeout,
    end() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', forwardAbort)
      controller.abort()
    },
  }
}

/** The failure of the last attempt, as it is reported. */
export type Reported = Omit<ClassifiedFailure, 'retryable' | 'retryAfterMs'>

/**
 * Runs `attempt` until it succeeds, retrying what may pass on a second try (5xx, 429, a lost
 * connection) while the wait still fits in the budget; otherwise reports the failure itself
 * rather than a timeout, so the real cause is seen. Rejects only when the budget ends.
 */
export async function retrying<T>(
  budget: Budget,
  maxRetries: number,
  attempt: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; failure: Reported }> {
  for (let attempts = 0; ; attempts++) {
    let failure: ClassifiedFailure
    try {
      return { ok: true, value: await budget.race(attempt()) }
    } catch (error) {
      if (budget.signal.aborted) throw error
      failure = classifyFailure(error)
    }
    const wait = failure.retryAfterMs ?? RETRY_BASE_MS * 2 ** attempts * (0.8 + Math.random() * 0.4)
    const { retryable, retryAfterMs: _retryAfter, ...reported } = failure
    if (!retryable || attempts >= maxRetries || Date.now() + wait >= budget.deadline) {
      return {
        ok: false,
        failure:
          attempts > 0
            ? { ...reported, message: `${reported.message} (after ${attempts + 1} attempts)` }
            : reported,
      }
    }
    await budget.race(new Promise((resolve) => setTimeout(resolve, wait)))
  }
}
