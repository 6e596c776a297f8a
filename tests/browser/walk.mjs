// The dashboard in a real browser (headless Chromium through puppeteer-core), driven by the
// `browser` test of tests/api (which starts the service and passes what it made in the
// environment). Each role signs in through the form and walks its pages; the numbers shown are
// compared with the API's answers (fetched with the role's bearer token); an appeal is resolved
// through its form; a member is refused another member's page; no page a role may see logs a
// console error; every page is saved as a screenshot under $SCREENSHOTS. Exits 1 on the first
// failed check, naming it.
import { createRequire } from "node:module";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`missing ${name}`);
  return value;
};
// puppeteer-core lives in the checkout's git-ignored .browser/ (scripts/browser-deps).
const puppeteer = createRequire(`${env("DRIVER_DIR")}/`)("puppeteer-core");
const BASE = env("BASE");
const SHOTS = env("SCREENSHOTS");
const T = {
  admin: env("ADMIN_TOKEN"),
  orgAdmin: env("ORG_ADMIN_TOKEN"),
  auditor: env("AUDITOR_TOKEN"),
  member: env("MEMBER_TOKEN"),
};
const ROOT = env("ROOT_ORG");
const BRANCH = env("BRANCH_ORG");
const MEMBER = env("MEMBER_ID");
const OTHER = env("OTHER_MEMBER_ID");
const APPEAL_MEMBER = env("APPEAL_MEMBER_ID");
const APPEAL = env("APPEAL_ID");
const QUARTER = env("QUARTER");

let checks = 0;
function check(condition, what) {
  checks += 1;
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function api(token, path) {
  const response = await fetch(`${BASE}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  check(response.ok, `API ${path} answers 2xx (got ${response.status})`);
  return response.json();
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN"],
});

async function session(role) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  // A Chinese user's browser: the pages answer in Chinese until the switch says otherwise.
  await page.setExtraHTTPHeaders({ "accept-language": "zh-CN,zh;q=0.9" });
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/`);
  const field = await page.$('input[type="password"][name="token"]');
  check(field !== null, `${role}: the sign-in form has the token field`);
  await page.type('input[name="token"]', T[role]);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  return { page, errors, context };
}

async function visit(s, path, shot) {
  const response = await s.page.goto(`${BASE}${path}`);
  if (shot) await s.page.screenshot({ path: `${SHOTS}/${shot}.png`, fullPage: true });
  return response;
}

const text = (page, selector) => page.$eval(selector, (e) => e.textContent.trim());
const percent = (rate) => (rate === null ? "—" : `${(rate * 100).toFixed(1)}%`);
const hours = (h) => (h === null ? "—" : Number(h).toFixed(2));

function noConsoleErrors(s, role) {
  check(s.errors.length === 0, `${role}: no console errors (${s.errors.join(" | ")})`);
}

// --- An auditor reads the queue (before the administrator resolves the appeal); its forms are not theirs.
{
  const s = await session("auditor");
  await visit(s, `/orgs/${ROOT}/appeals`, "auditor-appeals");
  check((await s.page.$(`section[data-appeal="${APPEAL}"]`)) !== null, "the auditor sees the open appeal");
  check((await s.page.$("main form")) === null, "but no form to resolve it");
  noConsoleErrors(s, "auditor");
  await s.context.close();
}

// --- An administrator: the tree, the figures, the lists, an appeal resolved, rules, health.
{
  const s = await session("admin");
  check(s.page.url().endsWith(`/orgs/${ROOT}`), `admin lands on the root (${s.page.url()})`);
  await visit(s, `/orgs/${ROOT}?quarter=${QUARTER}`, "org");
  const rollup = await api(T.admin, `/v1/orgs/${ROOT}/compliance?quarter=${QUARTER}`);
  for (const f of ["members", "compliant", "non_compliant", "in_progress", "exempt"]) {
    check((await text(s.page, `#rollup [data-field="${f}"]`)) === String(rollup[f]), `root ${f}`);
  }
  check((await text(s.page, '#rollup [data-field="compliance_rate"]')) === percent(rollup.compliance_rate), "root rate");
  check((await s.page.$("figure svg")) !== null, "the chart is drawn");
  // Each child's figures, then a drill-down by its link.
  const node = await api(T.admin, `/v1/orgs/${ROOT}?limit=50`);
  check(node.children.length > 0, "the root has children");
  for (const child of node.children) {
    const theirs = await api(T.admin, `/v1/orgs/${child.org_id}/compliance?quarter=${QUARTER}`);
    const shown = await text(s.page, `tr[data-org="${child.org_id}"] [data-field="members"]`);
    check(shown === String(theirs.members), `child ${child.org_id} members`);
  }
  await Promise.all([s.page.waitForNavigation(), s.page.click(`tr[data-org="${node.children[0].org_id}"] a`)]);
  check(s.page.url().includes(`/orgs/${node.children[0].org_id}`), "drill-down follows the child");

  await visit(s, `/orgs/${ROOT}/behind?quarter=${QUARTER}`, "behind");
  const list = await api(T.admin, `/v1/orgs/${ROOT}/members?quarter=${QUARTER}&status=non_compliant&order=shortfall&limit=50`);
  const rows = await s.page.$$eval("#behind tbody tr", (r) => r.map((e) => e.dataset.member));
  check(JSON.stringify(rows) === JSON.stringify(list.members.map((m) => m.member_id)), "behind list = API list");
  const short = await s.page.$$eval("#behind tbody tr td:last-child", (r) => r.map((e) => Number(e.textContent)));
  check(short.length > 0 && short.every((h, i) => i === 0 || short[i - 1] >= h), "most hours short first");
  check(short.every((h, i) => h.toFixed(2) === list.members[i].shortfall_hours.toFixed(2)), "hours short = API");
  // The download link, followed with the page's session cookie.
  const href = await s.page.$eval("a[download]", (a) => a.getAttribute("href"));
  const cookie = (await s.page.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const csv = await fetch(`${BASE}${href}`, { headers: { cookie } });
  const lines = (await csv.text()).trim().split("\n");
  check(csv.status === 200 && lines.length === list.members.length + 1, "the CSV holds the list");

  await visit(s, `/members/${MEMBER}`, "member");
  const profile = await api(T.admin, `/v1/members/${MEMBER}`);
  check((await text(s.page, '#profile [data-field="total"]')) === hours(profile.credited_hours.total), "lifetime hours");
  const quarters = await api(T.admin, `/v1/members/${MEMBER}/compliance`);
  for (const q of quarters.quarters) {
    const shown = await s.page.$eval(`tr[data-quarter="${q.quarter}"] [data-status]`, (e) => e.dataset.status);
    check(shown === q.status, `member quarter ${q.quarter} status`);
  }

  await visit(s, `/orgs/${ROOT}/appeals`, "appeals");
  const form = `section[data-appeal="${APPEAL}"] form`;
  check((await s.page.$(form)) !== null, "the appeal is in the queue with its form");
  await s.page.select(`${form} select[name="outcome"]`, "overturned");
  await s.page.type(`${form} input[name="note"]`, "浏览器测试：补录学时后满足条件");
  await Promise.all([s.page.waitForNavigation(), s.page.click(`${form} button[type="submit"]`)]);
  const decided = await api(T.admin, `/v1/members/${APPEAL_MEMBER}/eligibility/browser-eval`);
  check(decided.appeal.status === "overturned", "the appeal is resolved through the form");
  check((await s.page.$(`section[data-appeal="${APPEAL}"]`)) === null, "and is off the queue");

  await visit(s, "/rules", "rules");
  const rulesets = await api(T.admin, "/v1/rulesets");
  const versions = await s.page.$$eval("#rulesets tbody tr", (r) => r.map((e) => e.dataset.version));
  check(versions.length === rulesets.length, "every ruleset is listed");
  // A what-if from the form on /rules: a stricter ruleset from the quarter shown.
  await s.page.type("#effective_from", QUARTER);
  await s.page.$eval("#required_hours", (e) => { e.value = "10"; });
  await Promise.all([s.page.waitForNavigation(), s.page.click('form[action="/what-ifs"] button')]);
  const whatIf = s.page.url().split("/what-ifs/")[1];
  check(/^[0-9a-f-]{36}$/.test(whatIf), `the what-if's page (${s.page.url()})`);
  let result = await api(T.admin, `/v1/what-ifs/${whatIf}`);
  for (let i = 0; i < 100 && result.status === "running"; i += 1) {
    await new Promise((r) => setTimeout(r, 100));
    result = await api(T.admin, `/v1/what-ifs/${whatIf}`);
  }
  check(result.status === "succeeded" && result.members_changed > 0, `the what-if finds changes (${result.status}, ${result.members_changed})`);
  await visit(s, `/what-ifs/${whatIf}`, "what-if");
  check((await text(s.page, '#what-if [data-field="members_changed"]')) === String(result.members_changed), "what-if count");
  const published = await api(T.admin, "/v1/rulesets");
  check(published.length === rulesets.length, "the what-if published nothing");
  await visit(s, "/health", "health");
  const health = await api(T.admin, "/v1/health");
  check((await text(s.page, '#skipped [data-field="open"]')) === String(health.skipped_events.open), "skipped events");

  // English by the switch; the page's language follows.
  await visit(s, `/orgs/${ROOT}?quarter=${QUARTER}`);
  check((await s.page.$eval("html", (e) => e.lang)) === "zh-CN", "Chinese by default");
  await Promise.all([s.page.waitForNavigation(), s.page.click("header a.lang")]);
  const lang = await s.page.$eval("html", (e) => e.lang);
  check(lang === "en", `English by the switch (${s.page.url()}: ${lang})`);
  await s.page.screenshot({ path: `${SHOTS}/org-en.png`, fullPage: true });
  // The keyboard: the first Tab reaches the skip link, which leads to the content.
  await s.page.keyboard.press("Tab");
  check((await s.page.evaluate(() => document.activeElement.className)) === "skip", "Tab reaches the skip link");
  noConsoleErrors(s, "admin");
  await s.context.close();
}

// --- An organisation's administrator: their subtree, nothing above.
{
  const s = await session("orgAdmin");
  check(s.page.url().endsWith(`/orgs/${BRANCH}`), `org admin lands on their branch (${s.page.url()})`);
  const theirs = await api(T.orgAdmin, `/v1/orgs/${BRANCH}/compliance?quarter=${QUARTER}`);
  await visit(s, `/orgs/${BRANCH}?quarter=${QUARTER}`, "org-admin");
  check((await text(s.page, '#rollup [data-field="members"]')) === String(theirs.members), "branch members");
  await visit(s, `/orgs/${BRANCH}/behind?quarter=${QUARTER}`);
  noConsoleErrors(s, "orgAdmin");
  const above = await visit(s, `/orgs/${ROOT}`);
  check(above.status() === 403, "the root is out of their reach");
  await s.context.close();
}

// --- A member: their own record only.
{
  const s = await session("member");
  check(s.page.url().endsWith(`/members/${MEMBER}`), `member lands on their page (${s.page.url()})`);
  await s.page.screenshot({ path: `${SHOTS}/member-own.png`, fullPage: true });
  noConsoleErrors(s, "member");
  const other = await api(T.admin, `/v1/members/${OTHER}`);
  const refused = await visit(s, `/members/${OTHER}`, "member-refused");
  check(refused.status() === 403, "another member's page is refused");
  const body = await s.page.content();
  check(!body.includes(other.name) && !body.includes(other.member_no), "nothing of the other member is shown");
  const org = await visit(s, `/orgs/${ROOT}`);
  check(org.status() === 403, "organisation pages are refused to a member");
  await s.context.close();
}

await browser.close();
console.log(`browser: ${checks} checks passed`);
