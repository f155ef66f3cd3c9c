// `npm test`: build the executable, then run every unit and integration test
// with Node's test runner. Integration tests need root and the vcap user
// (.ci/run sets both up); without root they are skipped with a message.
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const only = process.argv.slice(2);
execFileSync(process.execPath, ["build/build.mjs"], { stdio: "inherit" });
const files = only.length
  ? only
  : ["test/unit", "test/integration"].flatMap((d) => readdirSync(d).filter((f) => f.endsWith(".test.ts")).sort().map((f) => join(d, f)));
// A test that hangs fails after 5 minutes (the longest takes about 2) instead of holding CI.
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=4", "--test-timeout=300000", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
