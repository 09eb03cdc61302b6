// Loads the server's page (GET /) in headless Chromium through playwright-core, as a user would use it: types the
// API key, picks an image, types a prompt, sets temperature 0 and a token limit, presses Send, and waits for the
// streamed answer. Prints one JSON object (the model line, the answer, the status line, how many times the answer
// changed while streaming) for server_test.cpp to check.
//   node web_page.cjs PLAYWRIGHT_CORE_DIR CHROMIUM URL API_KEY IMAGE PROMPT MAX_TOKENS
'use strict';
const [pwDir, executablePath, url, apiKey, imagePath, prompt, maxTokens] = process.argv.slice(2);
const { chromium } = require(pwDir);

async function main() {
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const consoleErrors = [];
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(url);
    await page.fill('#key', apiKey);
    await page.dispatchEvent('#key', 'change');
    await page.waitForFunction(() => document.getElementById('model').textContent.startsWith('Model '));
    await page.setInputFiles('#file', imagePath);
    await page.fill('#prompt', prompt);
    await page.fill('#temperature', '0');
    await page.fill('#max_tokens', maxTokens);
    await page.evaluate(() => {
      window.answerUpdates = 0;
      new MutationObserver((records) => { window.answerUpdates += records.length; })
        .observe(document.getElementById('answer'), { childList: true, characterData: true, subtree: true });
    });
    await page.click('#send');
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Done') ||
                                     document.getElementById('answer').classList.contains('error'),
                               null, { timeout: 120000 });
    const out = await page.evaluate(() => ({
      model: document.getElementById('model').textContent,
      answer: document.getElementById('answer').textContent,
      error: document.getElementById('answer').classList.contains('error'),
      status: document.getElementById('status').textContent,
      updates: window.answerUpdates,
    }));
    out.page_errors = consoleErrors;
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`web page test: ${e.stack || e}`);
  process.exit(1);
});
