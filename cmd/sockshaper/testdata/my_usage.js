// Opens the proxy's /my-usage page in headless Chromium, logged in with
// page.authenticate (it answers the 401): over the plain listener (screenshot, the page's text, whether its style sheet
// applied under its Content-Security-Policy, any CSP complaint), then over
// the HTTPS listener (the protocol Chromium used: HTTP/2). Prints one JSON
// object.
const puppeteer = require(process.env.PUPPETEER);
const [chromium, plainURL, httpsURL, user, pass, dataDir, shot] = process.argv.slice(2);
(async () => {
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, userDataDir: dataDir,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--ignore-certificate-errors"],
  });
  const out = { csp: [] };
  try {
    const page = await browser.newPage();
    page.on("console", m => { if (/Content.Security.Policy/i.test(m.text())) out.csp.push(m.text()); });
    await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 1 }); // a phone
    await page.authenticate({ username: user, password: pass });
    const r1 = await page.goto(plainURL, { waitUntil: "load", timeout: 30000 });
    out.status = r1.status();
    out.headers = r1.headers();
    out.text = await page.evaluate(() => document.body.innerText);
    out.barWidth = await page.evaluate(() => {
      const s = document.querySelector(".bar span");
      return s ? s.getBoundingClientRect().width : -1;
    });
    out.scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    await page.screenshot({ path: shot, fullPage: true });

    const r2 = await page.goto(httpsURL, { waitUntil: "load", timeout: 30000 });
    out.httpsStatus = r2.status();
    out.httpsProtocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    out.httpsText = await page.evaluate(() => document.body.innerText);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
