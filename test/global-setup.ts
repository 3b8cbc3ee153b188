import type { TestProject } from 'vitest/node'
import { startOpenAIStub } from './stub/openai-stub'

declare module 'vitest' {
  export interface ProvidedContext {
    stubOrigin: string
  }
}

/** Starts the OpenAI-protocol stub for the whole run; tests reach it through `env.STUB_ORIGIN`. */
export default async function setup(project: TestProject) {
  const stub = await startOpenAIStub()
  project.provide('stubOrigin', stub.origin)
  return () => stub.close()
}
