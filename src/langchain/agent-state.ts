/**
 * The agent's guard state as only the guard writes it. A client of a LangGraph server supplies
 * the run's input state, `ragGuard` included, and a checkpointed thread keeps whatever a
 * message id pointed at: neither may stand for a judgement. So each verdict the middleware
 * writes names what it judged — digests of the turn's question and documents, and of the answer
 * once that is judged — and carries a seal over all of it: HMAC-SHA256 under a key the
 * middleware draws on first use and never shows. A verdict is reused only when its seal opens
 * and its digests are those of what is about to be judged; anything else is judged again.
 */
import type { ContextReading, QuestionReading } from '../formats/context'
import { constantTimeEqual, sha256Hex } from '../hash'
import type { RagGuardVerdict } from './verdict'

/** The verdict in the agent's state (`state.ragGuard`), with what it judged. */
export interface RagGuardAgentState extends RagGuardVerdict {
  /** The id of the user message whose turn was judged (for reading; never matched on). */
  turn: string
  /** The id of the last tool result judged; none when the model answered without retrieval. */
  through?: string
  /** SHA-256 of the question (with its turns) and the documents the verdict judged. */
  digest: string
  /** SHA-256 of the answer, when the verdict judged it (groundedness). */
  answerDigest?: string
  /** The guard's seal over everything above: a state without a valid one is not the guard's. */
  seal: string
}

const encoder = new TextEncoder()

/** JSON with every object's keys in order, so a state keeps its seal through a checkpointer. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`
}

/** What a verdict judged: the turn's question and its documents, as the judge was given them. */
export function turnDigest(question: QuestionReading, context: ContextReading): Promise<string> {
  return sha256Hex(canonical([question, context]))
}

export const answerDigest = (answer: string): Promise<string> => sha256Hex(answer)

/** Seals the states one middleware writes, and opens only those. */
export class StateSeal {
  #key: Promise<CryptoKey> | undefined

  // Drawn on first use, not at construction: a Worker may build the middleware in global scope,
  // where random values cannot be generated.
  #cryptoKey(): Promise<CryptoKey> {
    this.#key ??= crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]) as Promise<CryptoKey>
    return this.#key
  }

  async #sign(state: Omit<RagGuardAgentState, 'seal'>): Promise<string> {
    const signature = await crypto.subtle.sign(
      'HMAC',
      await this.#cryptoKey(),
      encoder.encode(canonical(state)),
    )
    return [...new Uint8Array(signature)].map((byte) => byte.toString(16).padStart(2, '0')).join('')
  }

  /** The state with its seal. */
  async sealed(state: Omit<RagGuardAgentState, 'seal'>): Promise<RagGuardAgentState> {
    return { ...state, seal: await this.#sign(state) }
  }

  /** The state, when it is one this middleware wrote (its seal opens); else undefined. */
  async opened(state: unknown): Promise<RagGuardAgentState | undefined> {
    if (typeof state !== 'object' || state === null) return undefined
    const { seal, ...rest } = state as RagGuardAgentState
    if (typeof seal !== 'string' || typeof rest.digest !== 'string') return undefined
    return constantTimeEqual(seal, await this.#sign(rest))
      ? (state as RagGuardAgentState)
      : undefined
  }
}
