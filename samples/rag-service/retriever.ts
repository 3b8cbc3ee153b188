import { DOCUMENTS, type SampleDocument } from './documents'

/**
 * A keyword retriever, so the sample runs with no embedding model: documents are ranked by how
 * many of the question's words they contain. A real service would use a vector store; the guard
 * does not care how the context was found.
 */
const STOP_WORDS = new Set(
  'a an and are as at be by can do does for from how i if in is it its me my of on or per the there this to was what when where which who why will with you your'.split(
    ' ',
  ),
)

export function words(text: string): string[] {
  return (text.toLowerCase().match(/[a-z0-9$]+/g) ?? [])
    .filter((word) => !STOP_WORDS.has(word))
    .map(stem)
}

/** Crude English stemming: enough to match "bikes" with "bike" and "rented" with "rent". */
export function stem(word: string): string {
  return word.replace(/(?:ing|ed|es|s)$/, '') || word
}

export function retrieve(question: string, k = 2): SampleDocument[] {
  const asked = new Set(words(question))
  return DOCUMENTS.map((document) => ({
    document,
    hits: new Set(words(`${document.title} ${document.text}`).filter((word) => asked.has(word)))
      .size,
  }))
    .filter(({ hits }) => hits > 0)
    .sort((a, b) => b.hits - a.hits)
    .slice(0, k)
    .map(({ document }) => document)
}
