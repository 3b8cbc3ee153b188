/**
 * The package tests' setup: `npm pack` (which builds dist/) into a temporary folder, where each
 * test file then makes its own fresh project, and the stub model server that plays the judge,
 * the agent's model and the upstream RAG endpoint.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { startOpenAIStub } from '../stub/openai-stub'
import { NPM, ROOT } from './helpers'

declare module 'vitest' {
  export interface ProvidedContext {
    tarball: string
    workdir: string
    stubOrigin: string
  }
}

export default async function setup(project: TestProject) {
  const workdir = mkdtempSync(join(tmpdir(), 'rag-guard-package-'))
  const packed = execFileSync(NPM, ['pack', '--json', '--pack-destination', workdir], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  // prepack's build logs before the JSON
  const [{ filename }] = JSON.parse(packed.slice(packed.indexOf('['))) as [{ filename: string }]
  const stub = await startOpenAIStub()
  project.provide('tarball', join(workdir, filename))
  project.provide('workdir', workdir)
  project.provide('stubOrigin', stub.origin)
  return async () => {
    await stub.close()
    rmSync(workdir, { recursive: true, force: true })
  }
}
