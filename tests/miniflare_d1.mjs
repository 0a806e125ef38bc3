// A D1 database in Miniflare (workerd's own local D1), for tests/test_wrangler.py to run the crawler's real
// statements against. One JSON request per stdin line: {"id", "op": "all" | "first" | "run" | "batch",
// "statements": [{"sql", "params"}]}; one JSON answer per stdout line: {"id", "result"} or {"id", "error"}.
// Usage: node tests/miniflare_d1.mjs PERSIST_DIR DATABASE_ID (the directory `wrangler --persist-to` wrote,
// plus v3/d1), so it opens the database that `wrangler d1 migrations apply --local` migrated.
import { createInterface } from "node:readline";
import { Miniflare } from "miniflare";

const [persist, databaseId] = process.argv.slice(2);
const mf = new Miniflare({
  modules: true,
  script: "export default {}",
  d1Databases: { DB: databaseId },
  d1Persist: persist,
});
const db = await mf.getD1Database("DB");
const prepare = ({ sql, params }) => db.prepare(sql).bind(...params);
const ops = {
  all: ([statement]) => prepare(statement).all(),
  first: ([statement]) => prepare(statement).first(),
  run: ([statement]) => prepare(statement).run(),
  batch: (statements) => db.batch(statements.map(prepare)),
};

const write = (answer) => process.stdout.write(JSON.stringify(answer) + "\n");
write({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  const { id, op, statements } = JSON.parse(line);
  try {
    write({ id, result: (await ops[op](statements)) ?? null });
  } catch (error) {
    write({ id, error: String(error?.message ?? error) });
  }
}
await mf.dispose();
