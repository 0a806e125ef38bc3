// Both Workers' bindings in Miniflare as wrangler itself translates wrangler.producer.toml and
// wrangler.consumer.toml for Miniflare (unstable_getMiniflareWorkerOptions: vars, D1, queue producers, and
// consumers with their batch size, timeout, retries, retry delay and dead-letter queue), with the glue
// script in place of the Python main module, and the D1 database migrated by `wrangler d1 migrations apply`.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Miniflare, Response as MiniflareResponse, _enableControlEndpoints } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { compatibilityDate as newestRuntimeDate } from "workerd";

const HERE = new URL(".", import.meta.url).pathname;
const GLUE = join(HERE, "glue.worker.mjs");

export function readWorker(root, worker) {
  const path = join(root, `wrangler.${worker}.toml`);
  const config = unstable_readConfig({ config: path });
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path);
  return { worker, path, config, workerOptions };
}

/** `wrangler d1 migrations apply DB --local` into `persist`, as a deployment's first step would. */
export function applyMigrations(root, { path, config }, persist) {
  const [database] = config.d1_databases;
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  const args = ["d1", "migrations", "apply", database.binding, "--local", "--persist-to", persist, "-c", path];
  const child = spawn(wrangler, args, { cwd: root, env: { ...process.env, CI: "true" }, timeout: 120_000 });
  const output = { stdout: "", stderr: "" };
  child.stdout.on("data", (chunk) => (output.stdout += chunk));
  child.stderr.on("data", (chunk) => (output.stderr += chunk));
  return new Promise((done, fail) => {
    child.once("error", fail);
    child.once("close", (code) =>
      code === 0
        ? done(output.stdout)
        : fail(new Error(`wrangler d1 migrations apply failed (${code}):\n${output.stdout}\n${output.stderr}`)),
    );
  });
}

/** A node handler for a service binding: errors become a 500 whose text says what failed. */
function nodeService(handler) {
  return async (request) => {
    try {
      return await handler(request);
    } catch (error) {
      return new MiniflareResponse(String(error?.stack ?? error), { status: 500 });
    }
  };
}

/**
 * Start Miniflare with one glue Worker per wrangler config. onEvent(worker, event, payload) answers the
 * glue's scheduled/queue calls (JSON); onFetch(worker, request) answers HTTP requests (a Response).
 */
export async function startMiniflare(workers, { persist, onEvent, onFetch }) {
  // Fake timers in the queue brokers let hour-long retry delays pass in milliseconds.
  _enableControlEndpoints();
  const mf = new Miniflare({
    d1Persist: join(persist, "v3", "d1"),
    workers: workers.map(({ worker, config, workerOptions }) => {
      const { modulesRules, compatibilityFlags, ...bindings } = workerOptions;
      return {
        ...bindings,
        name: config.name,
        modules: [{ type: "ESModule", path: GLUE }],
        // The glue is JavaScript: no python_workers flag, and a date this workerd build supports.
        compatibilityDate: [config.compatibility_date, newestRuntimeDate].sort()[0],
        compatibilityFlags: compatibilityFlags.filter((flag) => !flag.startsWith("python_")),
        serviceBindings: {
          ...bindings.serviceBindings,
          PYTHON_EVENT: nodeService(async (request) => {
            const event = new URL(request.url).pathname.slice(1);
            const answer = await onEvent(worker, event, await request.json());
            return new MiniflareResponse(JSON.stringify(answer ?? {}), {
              headers: { "content-type": "application/json" },
            });
          }),
          PYTHON_FETCH: nodeService((request) => onFetch(worker, request)),
        },
      };
    }),
  });
  await mf.ready;
  return mf;
}

/** Control of a queue broker's fake clock (Miniflare's test-only control endpoints). */
export class QueueClock {
  #mf;
  #names;
  constructor(mf, queueNames) {
    this.#mf = mf;
    this.#names = [...new Set(queueNames)];
  }
  async #each(name, args = []) {
    const mf = this.#mf;
    const ns = await mf._getInternalDurableObjectNamespace("queues", "queues:queue", "QueueBrokerObject");
    for (const queue of this.#names) {
      const answer = await ns.get(ns.idFromName(queue)).fetch("http://queue-broker/", {
        cf: { miniflare: { name: queue, controlOp: { name, args } } },
      });
      if (!answer.ok) throw new Error(`queue ${queue}: ${name} failed: ${await answer.text()}`);
      await answer.arrayBuffer();
    }
  }
  enable(nowMs) {
    return this.#each("enableFakeTimers", [nowMs]);
  }
  advance(ms) {
    return this.#each("advanceFakeTime", [ms]);
  }
  /** Wait for every delivery already started (they run until the consumer's queue() returns). */
  settle() {
    return this.#each("waitForFakeTasks");
  }
}
