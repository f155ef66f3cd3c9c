import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseFlags, repeatedFlag, requireJob } from "../../src/cli/command.ts";
import { formatTable } from "../../src/lifecycle/list.ts";

const runArgs = {
  job: { type: "positional" }, process: { type: "string", alias: "p" },
  volume: { type: "string", alias: "v" }, env: { type: "string", alias: "e" },
} as const;
const logsArgs = {
  job: { type: "positional" }, all: { type: "boolean", alias: "a" }, err: { type: "boolean", alias: "e" },
  follow: { type: "boolean", alias: "f" }, lines: { type: "string", alias: "n" },
} as const;

describe("command-line parsing", () => {
  it("keeps every value of a repeated flag, in every spelling", () => {
    const raw = ["job", "-v", "/a", "--volume", "/b:writable", "--volume=/c", "-v/d", "-e", "A=1", "-e", "A=2", "--", "-v", "x"];
    assert.deepEqual(repeatedFlag(raw, "volume", "v"), ["/a", "/b:writable", "/c", "/d"]);
    assert.deepEqual(repeatedFlag(raw, "env", "e"), ["A=1", "A=2"]);
    assert.throws(() => repeatedFlag(["-e"], "env", "e"), /needs a value/);
  });
  it("rejects unknown flags, long and short, and accepts aliases", () => {
    assert.deepEqual(parseFlags(["job", "-p", "x", "--process=y", "-v", "a"], runArgs), { _: ["job"], job: "job", process: "y", volume: "a" });
    assert.throws(() => parseFlags(["job", "--bogus"], runArgs), /unknown flag: --bogus/);
    assert.throws(() => parseFlags(["job", "-x"], runArgs), /unknown flag: -x/);
    assert.deepEqual(parseFlags(["job", "--", "--anything"], runArgs), { _: ["job", "--anything"], job: "job" });
    assert.throws(() => parseFlags(["job", "-p"], runArgs), /flag -p needs a value/);
  });
  it("takes booleans together, values attached, and --no- forms", () => {
    assert.deepEqual(parseFlags(["web", "-af", "-n5"], logsArgs), { _: ["web"], job: "web", all: true, follow: true, lines: "5" });
    assert.deepEqual(parseFlags(["-e", "--lines", "3", "web", "--no-follow"], logsArgs), { _: ["web"], job: "web", err: true, lines: "3", follow: false });
    assert.deepEqual(parseFlags([], logsArgs), { _: [], job: undefined });
  });
  it("requires a job", () => {
    assert.throws(() => requireJob({}), /must specify a job/);
    assert.equal(requireJob({ job: "web" }), "web");
  });
  it("aligns tables like Go's tabwriter with padding 1", () => {
    assert.equal(formatTable(["Name", "Pid", "Status"], [["web", "123", "running"], ["web.worker", "-", "stopped"]]),
      "Name       Pid Status\nweb        123 running\nweb.worker -   stopped\n");
  });
});
