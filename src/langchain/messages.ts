/**
 * What an agent's messages give the judge: the question of the current turn (the last user
 * message, with the turns before it, read as the openai-chat format reads a chat) and the
 * documents its tools retrieved since then. Pure.
 */
import type { BaseMessage } from '@langchain/core/messages'
import { readContext, type ContextReading, type QuestionReading } from '../formats/context'
import { openAIChatFormat } from '../formats/openai-chat'
import type { ReadLimits } from '../formats/context'
import { isRecord } from '../json'

/** Reads the question of a chat: the last user message and the turns before it. */
const chat = openAIChatFormat({ context: 'system' })

const ROLES: Record<string, string> = {
  human: 'user',
  ai: 'assistant',
  system: 'system',
  tool: 'tool',
}

/** The position of the last user message: where the current turn starts; -1 without one. */
export function turnStart(messages: readonly BaseMessage[]): number {
  return messages.findLastIndex((message) => message.type === 'human')
}

/** What identifies a turn across the agent's steps: its user message's id (the reducer gives one). */
export function turnId(messages: readonly BaseMessage[], start: number): string {
  return messages[start]?.id ?? `message-${start}`
}

/** The turn's question, with up to `limits.turns` earlier user and assistant turns. */
export function turnQuestion(
  messages: readonly BaseMessage[],
  start: number,
  limits: ReadLimits,
): QuestionReading {
  const asChat = messages
    .slice(0, start + 1)
    .map((message) => ({ role: ROLES[message.type] ?? message.type, content: message.content }))
  return chat.readRequest({ messages: asChat }, limits).question
}

export interface ToolResult {
  id?: string
  name?: string
  status?: string
  text: string
  artifact?: unknown
}

/** The tool results of the turn that count as retrieval: all of them, or those of `tools`. */
export function retrievals(
  messages: readonly BaseMessage[],
  start: number,
  tools?: ReadonlySet<string>,
): ToolResult[] {
  const found: ToolResult[] = []
  for (const message of messages.slice(start + 1)) {
    if (message.type !== 'tool') continue
    const result = message as BaseMessage & { status?: string; artifact?: unknown }
    if (tools && !tools.has(result.name ?? '')) continue
    found.push({
      id: result.id,
      name: result.name,
      status: result.status,
      text: result.text,
      artifact: result.artifact,
    })
  }
  return found
}

const isDocument = (item: unknown) => isRecord(item) && typeof item.pageContent === 'string'

/**
 * The documents of the turn's retrievals: a tool's documents when it returns them as its
 * artifact (`responseFormat: 'content_and_artifact'`), else its text as one document. A tool that
 * failed retrieved nothing.
 */
export function retrievedDocuments(
  results: readonly ToolResult[],
  limits: ReadLimits,
): ContextReading {
  const documents: unknown[] = []
  for (const result of results) {
    if (result.status === 'error') continue
    const { artifact } = result
    if (Array.isArray(artifact) && artifact.length > 0 && artifact.every(isDocument)) {
      for (const document of artifact) documents.push(document)
    } else documents.push(result.text)
  }
  return readContext(documents, 'tool results', limits.documents)
}
