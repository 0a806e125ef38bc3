// Miniflare's D1 (workerd's own SQLite, metered as D1 meters it) for local/d1_meter.py.
// One JSON request per stdin line: {"id", "statements": [{"sql", "params"}]}, run as one db.batch();
// one JSON answer per stdout line: {"id", "results": [{"results", "meta"}]} or {"id", "error"}.
// Usage: node local/d1_bridge.mjs (in-memory database; the caller applies schema.sql).
import { createInterface } from "node:readline";
import { Miniflare } from "miniflare";

const mf = new Miniflare({
  modules: true,
  script: "export default {}",
  d1Databases: { DB: "clipcrawler-metered" },
});
const db = await mf.getD1Database("DB");
const answer = (reply) => process.stdout.write(JSON.stringify(reply) + "\n");

answer({ ready: true });
// Requests are not awaited in turn: the round trip to workerd dominates, and D1 itself runs one batch at
// a time, each atomically, as it does for concurrent Worker invocations.
const pending = new Set();
for await (const line of createInterface({ input: process.stdin })) {
  const { id, statements } = JSON.parse(line);
  const done = db.batch(statements.map(({ sql, params }) => db.prepare(sql).bind(...params)))
    .then((results) => answer({ id, results: results.map(({ results, meta }) => ({ results: results ?? [], meta })) }))
    .catch((error) => answer({ id, error: String(error?.message ?? error) }))
    .finally(() => pending.delete(done));
  pending.add(done);
}
await Promise.all(pending);
await mf.dispose();
