import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { calibrate, loadScores } from '../../src/cli/calibrate'
import { renderReport } from '../../src/cli/report'

/** Debian's Chromium, which .ci/run installs (`apt-get install chromium`); never a downloaded browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Headless, and quiet: no background requests that the closed network would refuse. */
function launch() {
  expect(
    existsSync(CHROMIUM),
    `Chromium not found at ${CHROMIUM}: install Debian's chromium (bash .ci/run does) or set CHROMIUM_PATH`,
  ).toBe(true)
  return chromium.launch({
    executablePath: CHROMIUM,
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

function reportFile(model: string): string {
  let seed = 3
  const next = () => ((seed = (seed * 1664525 + 1013904223) % 2 ** 32), seed / 2 ** 32)
  const lines = Array.from({ length: 240 }, (_, index) => {
    const sufficient = index % 2 === 0
    const score = Math.min(1, Math.max(0, (sufficient ? 0.75 : 0.25) + (next() - 0.5) * 0.8))
    return JSON.stringify({
      id: `q${index}`,
      sufficient,
      score,
      model,
      promptVersion: 'sufficiency-2026-11-v1',
      latencyMs: 1,
    })
  })
  const report = calibrate(loadScores(lines.join('\n'), 'scores.jsonl'), {
    passPrecision: 0.9,
    blockPrecision: 0.85,
  })
  const path = join(mkdtempSync(join(tmpdir(), 'rag-guard-report-')), 'report.html')
  writeFileSync(path, renderReport(report))
  return path
}

describe('the HTML report, in headless Chromium', () => {
  it('shows the four charts with the thresholds, the judge and the prompt version, and sends no request', async () => {
    const browser = await launch()
    try {
      const path = reportFile('gpt-4o-mini-2024-07-18')
      const page = await browser.newPage({ viewport: { width: 960, height: 1400 } })
      const requests: string[] = []
      page.on('request', (request) => requests.push(request.url()))
      await page.goto(pathToFileURL(path).href)

      expect(await page.locator('figure[data-chart] svg').count()).toBe(4)
      for (const name of ['histogram', 'roc', 'precision-coverage', 'reliability']) {
        const chart = page.locator(`figure[data-chart="${name}"] svg`)
        expect(await chart.isVisible()).toBe(true)
        const box = await chart.boundingBox()
        expect(box!.width).toBeGreaterThan(300)
        // Each chart has drawn data in it, not only axes.
        expect(await chart.locator('path, rect, circle').count()).toBeGreaterThan(0)
      }
      expect(
        await page.locator('figure[data-chart="histogram"] [data-threshold="BLOCK_BELOW"]').count(),
      ).toBe(1)
      expect(
        await page.locator('figure[data-chart="histogram"] [data-threshold="FLAG_BELOW"]').count(),
      ).toBe(1)
      expect(await page.locator('figure[data-chart="roc"] circle[data-threshold]').count()).toBe(2)
      expect(
        await page
          .locator('figure[data-chart="precision-coverage"] circle[data-threshold="FLAG_BELOW"]')
          .count(),
      ).toBe(1)
      expect(await page.locator('[data-field="model"]').textContent()).toBe(
        'gpt-4o-mini-2024-07-18',
      )
      expect(await page.locator('[data-field="prompt-version"]').textContent()).toBe(
        'sufficiency-2026-11-v1',
      )
      expect(await page.locator('[data-field="stand-in"]').count()).toBe(0)

      const screenshot = await page.screenshot({
        fullPage: true,
        path: join(tmpdir(), 'rag-guard-report.png'),
      })
      expect(screenshot.byteLength).toBeGreaterThan(20_000)
      expect(requests).toEqual([pathToFileURL(path).href])
    } finally {
      await browser.close()
    }
  })

  it('says when the scores came from the stand-in model', async () => {
    const browser = await launch()
    try {
      const page = await browser.newPage()
      await page.goto(pathToFileURL(reportFile('stand-in-word-overlap')).href)
      expect(await page.locator('[data-field="stand-in"]').textContent()).toContain(
        'not a language model',
      )
    } finally {
      await browser.close()
    }
  })
})
