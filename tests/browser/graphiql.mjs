// Open GraphiQL in headless Chromium, run the tour's first tab, then a jobProgress
// subscription, and save screenshots. Usage: node graphiql.mjs URL JOB_ID OUT_DIR
import { chromium } from "playwright-core";

const [url, jobId, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const fail = (message) => { console.error(message); process.exit(1); };
try {
  const page = await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error") console.error("console:", m.text()); });
  page.on("requestfailed", (r) => console.error("failed:", r.url()));
  await page.goto(`${url}/graphql`);
  if ((await page.title()) !== "comfygraph GraphiQL") fail(`title: ${await page.title()}`);
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30000 });
  await page.screenshot({ path: `${out}/graphiql-loaded.png` });
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(
    () => document.querySelector(".graphiql-response")?.innerText.includes("\"workflows\""),
    null, { timeout: 30000 });
  await page.screenshot({ path: `${out}/graphiql-workflows.png` });
  // The tour's live tab, with a real job id (same operation name, so GraphiQL's
  // operationName stays right however late its editor state catches up).
  await page.getByText("JobProgress", { exact: true }).click();
  const subscription = `subscription JobProgress { jobProgress(id: "${jobId}") { status progress } }`;
  await page.evaluate((text) => {
    document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(text);
  }, subscription);
  // GraphiQL takes the edited text into its state asynchronously: a run that still
  // sent the tab's placeholder answers INVALID_ID; run again (a few times at most).
  for (let attempt = 1; ; attempt++) {
    await page.click(".graphiql-execute-button");
    await page.waitForFunction(() => {
      const text = document.querySelector(".graphiql-response")?.innerText ?? "";
      return text.includes("COMPLETED") || text.includes("errors");
    }, null, { timeout: 60000 });
    const text = await page.innerText(".graphiql-response");
    if (text.includes("COMPLETED")) break;
    if (attempt === 5) fail(`no COMPLETED: ${text.slice(0, 500)}`);
    await page.waitForTimeout(1000);
  }
  await page.screenshot({ path: `${out}/graphiql-subscription.png` });
  console.log("ok");
} catch (error) {
  const page = browser.contexts()[0]?.pages()[0];
  if (page) {
    await page.screenshot({ path: `${out}/graphiql-failure.png` });
    console.error((await page.innerText("body")).slice(0, 3000));
  }
  throw error;
} finally {
  await browser.close();
}
