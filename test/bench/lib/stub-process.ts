/**
 * The OpenAI-protocol stub (test/stub/openai-stub.ts) in a process of its own, so that the
 * benchmark's client and the stub do not share one event loop: a GC pause or a burst of work in
 * one (JSON of 1 MB bodies, reading streams) then does not delay the other's timers.
 *
 * Run directly, it starts the stub and prints its origin as one JSON line.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startOpenAIStub, type OpenAIStub } from '../../stub/openai-stub'
import { ROOT } from '../../support/local-worker'

export function startStubProcess(): Promise<OpenAIStub> {
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [fileURLToPath(import.meta.url)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let text = ''
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`the stub process exited (${code})`)))
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk
      const line = text.split('\n')[0]
      if (text.includes('\n') && line) {
        const { origin } = JSON.parse(line) as { origin: string }
        resolve({
          origin,
          close: () =>
            new Promise<void>((done) => {
              child.removeAllListeners('exit')
              child.once('exit', () => done())
              child.kill()
            }),
        })
      }
    })
  })
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const stub = await startOpenAIStub()
  console.log(JSON.stringify({ origin: stub.origin }))
  process.on('SIGTERM', () => void stub.close().then(() => process.exit(0)))
}
