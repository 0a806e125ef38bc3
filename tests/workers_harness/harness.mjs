// The Workers harness: producer/entry.py and consumer/entry.py, unchanged, in Pyodide in Node, on
// Miniflare's real D1 and Queues, crawling the Helix emulator over loopback. See README.md.
//
// Usage: node tests/workers_harness/harness.mjs --python PYTHON --wheels DIR --out RESULT.json [--log FILE]
// PYTHON runs the emulator (tests/workers_harness/emulator.py); DIR holds scripts/fetch-wheels' wheels.
// RESULT.json gets the HTTP answers, every queue delivery and its outcome, and the tables as read back
// through the Worker's own D1 adapter; tests/test_workers_harness.py compares them with local mode.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Response as MiniflareResponse } from "miniflare";
import { QueueClock, applyMigrations, readWorker, startMiniflare } from "./deployment.mjs";
import { PythonWorker } from "./python-worker.mjs";
import {
  D1Database,
  ExecutionContext,
  MessageBatch,
  Ratelimit,
  ScheduledController,
  WorkerQueue,
  metered,
  outsideCpu,
} from "./runtime-objects.mjs";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = resolve(HERE, "..", "..");
const WORKERS = ["producer", "consumer"];
const QUEUE_STEP_MS = 10_000; // fake queue time per step while waiting for retries and batch timeouts
const QUEUE_TIME_LIMIT_MS = 3 * 3600_000;
const AFTERMATH_MS = 20 * 60_000; // queue time let pass after the last run: nothing may be delivered
const AFTERMATH_STEP_MS = 60_000;

const { values: args } = parseArgs({
  options: {
    python: { type: "string" },
    wheels: { type: "string" },
    out: { type: "string" },
    log: { type: "string" },
  },
});
for (const name of ["python", "wheels", "out"]) {
  if (!args[name]) throw new Error(`harness: --${name} is required`);
}

const logLines = [];
const log = (line) => logLines.push(line);

async function startEmulator() {
  const child = spawn(args.python, ["-m", "tests.workers_harness.emulator"], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stderr.on("data", (chunk) => log(`emulator ! ${String(chunk).trimEnd()}`));
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((ok, fail) => {
    lines.once("line", ok);
    child.once("exit", (code) => fail(new Error(`the emulator exited (${code}) before it was ready`)));
  });
  return { child, scenario: JSON.parse(first) };
}

function stage(worker) {
  const done = spawnSync(process.execPath, [join(ROOT, "scripts", "stage-worker.mjs"), worker], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (done.status !== 0) throw new Error(`stage-worker ${worker} failed:\n${done.stderr}`);
  return join(ROOT, "build", worker);
}

/** The secrets `wrangler secret put` would set, pointing the Workers at the emulator. */
function secrets(scenario) {
  return {
    TWITCH_API_URL: `${scenario.url}/helix`,
    TWITCH_AUTH_URL: `${scenario.url}/oauth2`,
    TWITCH_CLIENT_ID: scenario.client_id,
    TWITCH_CLIENT_SECRET: scenario.client_secret,
    CLIPCRAWLER_API_TOKEN: scenario.api_token,
  };
}

/** A Worker's env as the runtime hands it over: vars and secrets as strings, bindings as objects. */
function workerEnv(proxies, config, sent) {
  const env = { ...proxies };
  for (const { binding } of config.d1_databases) env[binding] = new D1Database(proxies[binding]);
  for (const { binding, queue } of config.queues.producers ?? []) {
    env[binding] = new WorkerQueue(proxies[binding], (messages) => sent(queue, messages));
  }
  for (const { name } of config.ratelimits ?? []) env[name] = new Ratelimit(proxies[name]);
  return env;
}

function matches(body, fields) {
  return body !== null && typeof body === "object" && Object.entries(fields).every(([k, v]) => body[k] === v);
}

async function main() {
  // The Workers' fetch() is the runtime's: its CPU here is metered as outside the Worker's code.
  const nodeFetch = globalThis.fetch;
  globalThis.fetch = (...args) => metered(() => nodeFetch(...args));
  const temp = mkdtempSync(join(tmpdir(), "clipcrawler-workers-"));
  const result = {
    deliveries: [],
    sends: [],
    invocations: [],
    errors: [],
    responses: {},
    aftermath: [],
    route_deliveries: [],
  };
  result.seconds = {};
  let phaseStart = performance.now();
  const phase = (name) => {
    const now = performance.now();
    result.seconds[name] = Math.round(now - phaseStart) / 1000;
    phaseStart = now;
  };
  let emulator;
  let mf;
  try {
    emulator = await startEmulator();
    const { scenario } = emulator;
    const configs = Object.fromEntries(WORKERS.map((w) => [w, readWorker(ROOT, w)]));
    phase("emulator");
    const migrated = applyMigrations(ROOT, configs.consumer, temp);
    const python = Object.fromEntries(
      await Promise.all(
        WORKERS.map(async (worker) => [
          worker,
          await PythonWorker.start({
            name: worker,
            staged: stage(worker),
            main: resolve(ROOT, configs[worker].config.main),
            wheels: args.wheels,
            compatibilityDate: configs[worker].config.compatibility_date,
            log,
          }),
        ]),
      ),
    );
    result.migrations = await migrated;
    phase("pyodide_and_migrations");
    for (const worker of WORKERS) {
      Object.assign(configs[worker].workerOptions.bindings, secrets(scenario));
    }

    const envs = {};
    let inFlight = 0;
    let invocations = 0;
    const [jobsConsumer] = configs.consumer.config.queues.consumers;
    const deadLetterQueue = jobsConsumer.dead_letter_queue;

    // Invocations running now: CPU measured across one that overlapped another is not its own alone.
    const running = new Set();

    async function invoke(worker, handler, what, ...eventArgs) {
      inFlight += 1;
      invocations += 1;
      const record = { worker, handler, what, ok: false, overlapped: running.size > 0 };
      for (const other of running) other.overlapped = true;
      running.add(record);
      result.invocations.push(record);
      // This process's CPU (Pyodide's, and the JS of the binding proxies it calls) while the handler ran.
      const cpuBefore = process.cpuUsage();
      const outsideBefore = outsideCpu.ms;
      const wallBefore = performance.now();
      try {
        const answer = await python[worker].invoke(handler, new ExecutionContext(), envs[worker], ...eventArgs);
        record.ok = true;
        return answer;
      } catch (error) {
        record.error = String(error?.message ?? error);
        result.errors.push({ worker, handler, error: record.error });
        throw error;
      } finally {
        const cpu = process.cpuUsage(cpuBefore);
        record.cpu_ms = (cpu.user + cpu.system) / 1000;
        record.wall_ms = performance.now() - wallBefore;
        record.outside_cpu_ms = outsideCpu.ms - outsideBefore;
        running.delete(record);
        inFlight -= 1;
      }
    }

    async function onEvent(worker, event, payload) {
      if (event === "scheduled") {
        const controller = new ScheduledController(payload.scheduledTime, payload.cron);
        await invoke(worker, "scheduled", payload.cron, controller, undefined, undefined);
        return {};
      }
      const { queue, messages } = payload;
      const deliveries = messages.map((m) => ({ queue, id: m.id, attempts: m.attempts, body: m.body }));
      (result.routing ? result.route_deliveries : result.finished ? result.aftermath : result.deliveries).push(
        ...deliveries,
      );
      if (queue === jobsConsumer.queue && messages.some((m) => matches(m.body, scenario.poisoned))) {
        // The invocation dies before the Python code runs (as an isolate over its limits would): the
        // queue retries the whole batch, and in the end moves it to the dead-letter queue.
        for (const d of deliveries) d.outcome = { action: "crash" };
        throw new Error("simulated crash of the consumer invocation");
      }
      const batch = new MessageBatch(queue, messages);
      const what = `${queue}: ${messages.map((m) => m.body?.type ?? typeof m.body).join(", ")}`;
      await invoke(worker, "queue", what, batch, undefined, undefined);
      const outcomes = batch.outcomes();
      deliveries.forEach((d, i) => (d.outcome = outcomes[i]));
      return { outcomes };
    }

    async function onFetch(worker, request) {
      // Miniflare's Request class is not named Request, which the SDK looks for: hand over a plain one.
      const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
      const plain = new Request(request.url, { method: request.method, headers: request.headers, body });
      const route = `${request.method} ${new URL(request.url).pathname}`;
      const response = await invoke(worker, "fetch", route, plain);
      return new MiniflareResponse(await response.arrayBuffer(), {
        status: response.status,
        headers: response.headers,
      });
    }

    mf = await startMiniflare(
      WORKERS.map((w) => configs[w]),
      { persist: temp, onEvent, onFetch },
    );
    const proxies = {};
    for (const worker of WORKERS) {
      proxies[worker] = await mf.getBindings(configs[worker].config.name);
      envs[worker] = workerEnv(proxies[worker], configs[worker].config, (queue, messages) =>
        result.sends.push(...messages.map((m) => ({ worker, queue, ...m }))),
      );
    }
    const db = proxies.consumer.DB;
    const clock = new QueueClock(mf, [jobsConsumer.queue, deadLetterQueue]);
    await clock.enable(scenario.start * 1000);
    result.runtimes = Object.fromEntries(WORKERS.map((w) => [w, python[w].describe(envs[w])]));
    phase("miniflare");

    async function quiet() {
      for (;;) {
        const before = invocations;
        await clock.settle();
        if (inFlight === 0 && invocations === before) return;
      }
    }

    async function runsFinished(count) {
      const { results } = await db
        .prepare("SELECT count(*) AS runs, sum(status = 'finished') AS finished FROM runs")
        .all();
      return results[0].runs === count && results[0].finished === count;
    }

    async function settle(done, what) {
      let waited = 0;
      for (;;) {
        await quiet();
        if (await done()) return waited;
        if (waited >= QUEUE_TIME_LIMIT_MS) {
          throw new Error(`${what}: not done after ${waited / 1000} s of queue time`);
        }
        await clock.advance(QUEUE_STEP_MS);
        waited += QUEUE_STEP_MS;
      }
    }

    async function http(method, path, { token, body } = {}) {
      const headers = { "content-type": "application/json" };
      if (token) headers.authorization = `Bearer ${token}`;
      const response = await mf.dispatchFetch(`https://${configs.producer.config.name}.example${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {}
      return { status: response.status, json, text: json === null ? text : undefined };
    }

    /** The dashboard as a browser uses it: forms, a session cookie, redirects not followed. */
    async function browse(method, path, { cookie, form } = {}) {
      const headers = cookie ? { cookie } : {};
      let body;
      if (form) {
        headers["content-type"] = "application/x-www-form-urlencoded";
        body = new URLSearchParams(form).toString();
      }
      const response = await mf.dispatchFetch(`https://${configs.producer.config.name}.example${path}`, {
        method,
        headers,
        body,
        redirect: "manual",
      });
      const setCookie = response.headers.get("set-cookie");
      return {
        status: response.status,
        location: response.headers.get("location"),
        content_type: response.headers.get("content-type"),
        // The session cookie itself stays out of the report: only its attributes.
        cookie_attributes: setCookie?.split(";").slice(1).map((a) => a.trim()) ?? null,
        cookie: setCookie?.split(";")[0],
        html: await response.text(),
      };
    }

    /** The calls of routes.py in order, with the session cookie and CSRF token they carry along. */
    async function playRoutes(calls, apiToken) {
      const answers = {};
      let session;
      let ended;
      let csrf = "";
      let aligned = false;
      for (const c of calls) {
        if (c.client && !aligned) {
          // The Rate Limiting binding counts in fixed windows of real time: a flood that straddles a window's
          // edge splits its count and is blocked one try later than in local mode. Start it in a fresh window.
          const into = Date.now() % 60_000;
          if (into > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - into + 250));
          aligned = true;
        }
        const headers = {};
        if (c.auth === "bearer") headers.authorization = `Bearer ${apiToken}`;
        if (c.auth === "wrong") headers.authorization = "Bearer wrong-token-of-the-right-length";
        if (c.auth === "cookie" && session) headers.cookie = session;
        if (c.auth === "old_cookie" && ended) headers.cookie = ended;
        if (c.client) headers["cf-connecting-ip"] = c.client;
        let body;
        if (c.json !== undefined) {
          headers["content-type"] = "application/json";
          body = JSON.stringify(c.json);
        } else if (c.raw !== undefined) {
          headers["content-type"] = c.content_type;
          body = c.raw;
        } else if (c.form !== undefined) {
          headers["content-type"] = "application/x-www-form-urlencoded";
          const filled = Object.entries(c.form).map(([k, v]) => [k, v.replace("{csrf}", csrf).replace("{token}", apiToken)]);
          body = new URLSearchParams(filled).toString();
        }
        const response = await mf.dispatchFetch(`https://${configs.producer.config.name}.example${c.path}`, {
          method: c.method,
          headers,
          body,
          redirect: "manual",
        });
        const text = await response.text();
        const found = /name="csrf" value="([0-9a-f]+)"/.exec(text);
        if (found) csrf = found[1];
        const setCookie = response.headers.get("set-cookie");
        if (c.save_cookie && setCookie) session = setCookie.split(";")[0];
        if (c.end_session) [ended, session] = [session, undefined];
        answers[c.name] = {
          status: response.status,
          content_type: response.headers.get("content-type"),
          location: response.headers.get("location"),
          retry_after: response.headers.get("retry-after"),
          body: text,
        };
      }
      return answers;
    }

    // The story: streamers added through the API, the hourly cron, then the manual kick. Both Workers'
    // clocks read the scenario's start now, as the emulator's does (see scenario.py).
    const offset = scenario.start - Date.now() / 1000;
    for (const worker of WORKERS) python[worker].shiftWallClock(offset);
    const token = scenario.api_token;
    result.responses.kick_without_token = await http("POST", "/runs", { body: {} });
    const logins = scenario.logins;
    result.responses.add_streamers = await http("POST", "/streamers", { token, body: { logins } });

    const producer = await mf.getWorker(configs.producer.config.name);
    const [cron] = configs.producer.config.triggers.crons;
    result.cron = await producer.scheduled({ scheduledTime: new Date(scenario.slot * 1000), cron });
    result.cron_queue_seconds = (await settle(() => runsFinished(1), "the cron's run")) / 1000;

    result.marked = (await db.prepare(scenario.mark.sql).bind(scenario.mark.at).all()).results;
    result.responses.kick = await http("POST", "/runs", { token, body: {} });
    result.kick_queue_seconds = (await settle(() => runsFinished(2), "the kick's run")) / 1000;
    result.responses.kicked_run = await http("GET", `/runs/${result.responses.kick.json?.run_id}`, { token });
    const { cookie, ...login } = await browse("POST", "/ui/login", { form: { token, next: "/ui/runs/1" } });
    result.responses.login = { ...login, html: undefined };
    result.responses.run_page = await browse("GET", login.location ?? "/ui/runs/1", { cookie });
    delete result.responses.run_page.cookie;
    result.responses.clips = await http("GET", "/clips?sort=views&limit=5", { token });
    const streamerId = result.responses.add_streamers.json?.added?.[0]?.id ?? "none";
    result.responses.streamer_page = await browse("GET", `/ui/streamers/${streamerId}`, { cookie });
    result.responses.streamer_page.streamer_id = streamerId;
    delete result.responses.streamer_page.cookie;

    // Hostile messages on the jobs queue (scenario.hostile_messages), once each; the test checks how each ended.
    const deliveredBefore = result.deliveries.length;
    for (const body of scenario.hostile) await proxies.consumer.JOBS.send(body, { contentType: "json" });
    await settle(
      async () => result.deliveries.length >= deliveredBefore + scenario.hostile.length,
      "the hostile messages",
    );
    result.responses.backfill = await http("POST", "/runs", { token, body: scenario.backfill });
    result.backfill_queue_seconds = (await settle(() => runsFinished(3), "the backfill's run")) / 1000;

    phase("story");
    result.finished = true;
    for (let waited = 0; waited < AFTERMATH_MS; waited += AFTERMATH_STEP_MS) {
      await clock.advance(AFTERMATH_STEP_MS);
      await quiet();
    }
    phase("aftermath");

    // Read back through the Worker's own adapter (shared/bindings.py) over the SDK-wrapped binding.
    result.tables = JSON.parse(
      await python.consumer.runPython(
        `
import json
from workers import _EnvWrapper
from shared.bindings import D1Database
db = D1Database(_EnvWrapper(env).DB)
json.dumps({t: await db.all(f"SELECT * FROM {t} ORDER BY id") for t in tables})
`,
        { env: envs.consumer, tables: scenario.tables },
      ),
    );
    const nulls = await db
      .prepare("SELECT id, typeof(vod_offset) AS stored FROM clips WHERE vod_offset IS NULL ORDER BY id")
      .all();
    result.null_vod_offsets = nulls.results;
    result.wall_clock_end = Number(await python.consumer.runPython("import time; time.time()"));
    phase("tables");

    // Every route of the app, after the tables are read (some calls change state): see routes.py.
    result.routing = true;
    result.routes = await playRoutes(scenario.routes, token);
    phase("routes");
  } catch (error) {
    result.failure = String(error?.stack ?? error);
  } finally {
    await mf?.dispose().catch((error) => log(`dispose: ${error}`));
    if (emulator) {
      emulator.child.stdin.end();
      await new Promise((done) => {
        const timer = setTimeout(() => (emulator.child.kill(), done()), 5000);
        emulator.child.once("exit", () => (clearTimeout(timer), done()));
      });
    }
    rmSync(temp, { recursive: true, force: true });
    writeFileSync(args.out, JSON.stringify(result, null, 1));
    if (args.log) writeFileSync(args.log, logLines.join("\n") + "\n");
  }
  return result.failure ? 1 : 0;
}

process.exitCode = await main();
