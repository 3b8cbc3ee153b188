/**
 * Repair mode seen by real clients: an openai-chat endpoint answers three sentences, the judge
 * (per sentence) finds the second unsupported, and the guard (GROUNDEDNESS_GRANULARITY
 * "sentence", ON_UNGROUNDED "repair", enforce, hold) sends the answer without it, flagged. The
 * `openai` client, LangChain's `ChatOpenAI` and the AI SDK read an ordinary completion (or
 * stream) whose text is the two supported sentences, as written.
 */
import { describe, expect, inject, it } from 'vitest'
import {
  aiGenerateText,
  chatOpenAIInvoke,
  openaiCreate,
  openaiCreateStream,
  type ChatCase,
} from './observe'
import { DOCUMENTS, REPAIR_SENTENCES } from './rig'

const rig = inject('clientRig')
const GUARD = `${rig.repairGuard}/v1`
const chat: ChatCase = { system: DOCUMENTS, question: 'What does a day pass cost?' }
const REPAIRED = `${REPAIR_SENTENCES[0]} ${REPAIR_SENTENCES[2]}`

describe('repair mode through real clients (openai-chat, hold)', () => {
  it('openai: chat.completions.create gets the answer without the unsupported sentence, flagged', async () => {
    const observed = await openaiCreate(GUARD, chat)
    expect(observed.error).toBeUndefined()
    const completion = observed.completion as {
      choices: Array<{ message: { content: string }; finish_reason: string }>
    }
    expect(completion.choices[0]?.message.content).toBe(REPAIRED)
    expect(completion.choices[0]?.finish_reason).toBe('stop')
    expect(observed.headers).toMatchObject({
      'x-rag-guard-verdict': 'flag',
      'x-rag-guard-reason': 'repaired',
    })
    // The removed sentence's text is never in a header.
    expect(JSON.stringify(observed.headers)).not.toContain('Velocity')
  })

  it('openai: a held stream carries the repaired answer, well formed to its end', async () => {
    const observed = await openaiCreateStream(GUARD, { ...chat, includeUsage: true })
    expect(observed.error).toBeUndefined()
    expect(observed.content).toBe(REPAIRED)
    expect(observed.finishReason).toBe('stop')
    expect(observed.headers['x-rag-guard-verdict']).toBe('flag')
  })

  it('ChatOpenAI.invoke and the AI SDK generateText read the repaired text', async () => {
    const langchain = await chatOpenAIInvoke(GUARD, chat)
    expect(langchain.error).toBeUndefined()
    expect((langchain.message as { content: string }).content).toBe(REPAIRED)
    const ai = await aiGenerateText(GUARD, chat)
    expect(ai.error).toBeUndefined()
    expect(ai.text).toBe(REPAIRED)
  })
})
