/**
 * What the review page's browser tests share: Debian's Chromium (CHROMIUM_PATH, else `chromium`
 * on the PATH), launched headless, and a free local port for `wrangler dev`.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { chromium, type Browser } from 'playwright-core'
import { expect } from 'vitest'

/** Debian's Chromium: CHROMIUM_PATH, else `chromium` on the PATH. */
export function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).stdout.trim()
  return found || '/usr/bin/chromium'
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** Headless Chromium, with nothing that reaches the network on its own. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath()
  expect(
    existsSync(executablePath),
    `Chromium not found at ${executablePath}: install Debian's chromium (bash .ci/run does) or set CHROMIUM_PATH`,
  ).toBe(true)
  return chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  })
}
