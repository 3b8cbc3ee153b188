/**
 * Bad options fail when the middleware or the runnable is built, with ragGuard()'s own messages:
 * only the owner that opens a message differs.
 */
import { RunnableLambda } from '@langchain/core/runnables'
import { describe, expect, it } from 'vitest'
import { ConfigurationError, ragGuard, type RagGuardOptions } from '../../src'
import { ragGuardMiddleware, ragGuardRunnable } from '../../src/langchain'

const judge = { apiKey: 'sk-test', baseURL: 'http://127.0.0.1:9/v1' }
const chain = RunnableLambda.from((input: { input: string }) => ({ ...input, answer: '' }))

/** The error `build` throws, or a failure naming what did not throw. */
function thrown(build: () => unknown): ConfigurationError {
  try {
    build()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError)
    return error as ConfigurationError
  }
  throw new Error('it did not throw')
}

/** Options that ragGuard() refuses, each for one reason. */
const BAD: Array<[string, Partial<RagGuardOptions>]> = [
  ['an unknown check', { checks: ['faithfulness'] as never }],
  ['an empty list of checks', { checks: [] }],
  ['checks that are not words', { checks: 42 as never }],
  ['a groundedness threshold out of range', { groundednessBlockBelow: 2 }],
  ['a groundedness threshold that is not a number', { groundednessFlagBelow: 'high' as never }],
  [
    'groundedness thresholds in the wrong order',
    { groundednessBlockBelow: 0.6, groundednessFlagBelow: 0.5 },
  ],
  ['a threshold out of range', { blockBelow: 2 }],
  ['a threshold that is not a number', { flagBelow: 'high' as never }],
  ['thresholds in the wrong order', { blockBelow: 0.6, flagBelow: 0.5 }],
  ['an unknown mode', { mode: 'loud' as never }],
  ['an unknown onError verdict', { onError: 'ignore' as never }],
  ['an unknown onUnjudgeable verdict', { onUnjudgeable: 'ignore' as never }],
  ['a no-documents score out of range', { noDocumentsScore: -1 }],
  ['no documents at all for the judge', { maxDocuments: 0 }],
  ['a character limit below its range', { maxInputChars: 10 }],
  ['an unknown overflow rule', { inputOverflow: 'drop' as never }],
  ['too many history turns', { historyTurns: 100 }],
  ['a fallback message that is not text', { fallbackMessage: 42 as never }],
  ['a cache without get and put', { cache: {} as never }],
  ['an unknown cache scope', { cacheScope: 'team' as never }],
  ['a caller id that is not a function', { callerId: 'me' as never }],
  ['judge options out of range', { judge: { ...judge, topLogprobs: 50 } }],
  [
    'a judge model that cannot read logprobs',
    { judge: { chatModel: { logprobs: false } as never } },
  ],
]

describe('LangChain options: the same checks and messages as ragGuard()', () => {
  it.each(BAD)('the middleware refuses %s with ragGuard()’s message', (_what, bad) => {
    const expected = thrown(() => ragGuard({ judge, ...bad }))
    const error = thrown(() => ragGuardMiddleware({ judge, ...bad } as never))
    expect(error.message).toBe(
      expected.message.replace('RAG Guard middleware', 'RAG Guard LangChain middleware'),
    )
    expect(error.setting).toBe(expected.setting)
  })

  it.each(BAD)('the runnable refuses %s with ragGuard()’s message', (_what, bad) => {
    const expected = thrown(() => ragGuard({ judge, ...bad }))
    const error = thrown(() => ragGuardRunnable(chain, { judge, ...bad } as never))
    expect(error.message).toBe(
      expected.message.replace('RAG Guard middleware', 'RAG Guard LangChain runnable'),
    )
  })

  it('both require a judge, as ragGuard() does', () => {
    expect(thrown(() => ragGuardMiddleware({} as never)).message).toBe(
      'RAG Guard LangChain middleware requires the "judge" option',
    )
    expect(thrown(() => ragGuardRunnable(chain, {} as never)).message).toBe(
      'RAG Guard LangChain runnable requires the "judge" option',
    )
  })

  it('the runnable’s pointers are checked as ragGuard()’s are', () => {
    for (const name of ['question', 'answer'] as const) {
      const expected = thrown(() => ragGuard({ judge, [name]: 'input' }))
      expect(thrown(() => ragGuardRunnable(chain, { judge, [name]: 'input' })).message).toBe(
        expected.message,
      )
    }
    expect(thrown(() => ragGuardRunnable(chain, { judge, context: 'docs' })).message).toBe(
      thrown(() => ragGuard({ judge, context: 'docs' })).message,
    )
  })

  it('the runnable’s streamMode takes ragGuard()’s values', () => {
    expect(
      thrown(() => ragGuardRunnable(chain, { judge, streamMode: 'buffer' as never })).message,
    ).toBe(
      thrown(() => ragGuard({ judge, streamMode: 'buffer' as never })).message.replace(
        'RAG Guard middleware',
        'RAG Guard LangChain runnable',
      ),
    )
  })

  it('the runnable’s context names its side: input or output', () => {
    expect(
      thrown(() =>
        ragGuardRunnable(chain, { judge, context: { in: 'request' as never, pointer: '/c' } }),
      ).message,
    ).toBe('RAG Guard LangChain runnable: "context.in" must be "input" or "output", got "request"')
  })

  it('the middleware’s own options are checked the same way', () => {
    expect(thrown(() => ragGuardMiddleware({ judge, tools: 'search' as never })).message).toBe(
      'RAG Guard LangChain middleware: "tools" must be an array of tool names, got "search"',
    )
    expect(
      thrown(() => ragGuardMiddleware({ judge, exitBehavior: 'replace' as never })).message,
    ).toBe('RAG Guard LangChain middleware: "exitBehavior" must be "end" or "error", got "replace"')
    expect(thrown(() => ragGuardMiddleware({ judge, onVerdict: true as never })).message).toBe(
      'RAG Guard LangChain middleware: "onVerdict" must be a function, got true',
    )
  })

  it('a ragGuard() option that means nothing here is refused, not ignored', () => {
    expect(thrown(() => ragGuardMiddleware({ judge, details: 'everyone' } as never)).message).toBe(
      'RAG Guard LangChain middleware: "details" does not apply here: there are no response headers; the verdict is yours to show',
    )
    expect(thrown(() => ragGuardMiddleware({ judge, streamMode: 'hold' } as never)).setting).toBe(
      'streamMode',
    )
    expect(thrown(() => ragGuardRunnable(chain, { judge, tools: [] } as never)).message).toBe(
      'RAG Guard LangChain runnable: "tools" is an option of the agent middleware',
    )
  })

  it('checks and the groundedness thresholds are taken as ragGuard() takes them', () => {
    const good = {
      judge,
      checks: ['sufficiency', 'groundedness'] as Array<'sufficiency' | 'groundedness'>,
      groundednessBlockBelow: 0.2,
      groundednessFlagBelow: 0.6,
    }
    expect(() => ragGuard({ ...good, answer: '/answer' })).not.toThrow()
    expect(ragGuardMiddleware(good).name).toBe('RagGuardMiddleware')
    expect(ragGuardRunnable(chain, good).chain).toBe(chain)
    // Each check's thresholds are ordered on their own: groundedness may be lower than sufficiency.
    expect(() =>
      ragGuardRunnable(chain, {
        judge,
        blockBelow: 0.4,
        flagBelow: 0.5,
        groundednessBlockBelow: 0.1,
        groundednessFlagBelow: 0.3,
      }),
    ).not.toThrow()
  })

  it('good options build both, and neither calls the judge at construction', () => {
    expect(ragGuardMiddleware({ judge, blockBelow: 0.2, tools: ['search'] }).name).toBe(
      'RagGuardMiddleware',
    )
    expect(ragGuardRunnable(chain, { judge, streamMode: 'annotate' }).chain).toBe(chain)
  })
})
