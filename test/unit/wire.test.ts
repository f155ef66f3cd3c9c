// The formats the CLI and the helper share, held against the built helper:
// every verb's plan, encoded here, is decoded by the helper and printed back
// from what it parsed (plan-dump); every record in test/fixtures/records is
// read by both sides (parseRecord here, state-dump there) to the same result.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { jobPaths } from "../../src/bosh/paths.ts";
import { jobBook } from "../../src/plan/book.ts";
import { cgroupLayout, jobCgroupAt, jobCgroupIn, type Placement } from "../../src/plan/cgroup.ts";
import { encodeEnterPlan, encodePlan, encodeStopPlan } from "../../src/plan/encode.ts";
import { enterPlan } from "../../src/plan/enter.ts";
import { parseRecord, type ProcessRecord } from "../../src/plan/record.ts";
import { PLAN_RECORDS, PLAN_VERSION, RECORD_KEYS as K, type PlanTag } from "../../src/plan/wire.ts";
import { startTime } from "../../src/runtime/procs.ts";
import { bootId, isLive } from "../../src/runtime/state.ts";
import { plan, root } from "./plan-fixture.ts";

/** The built helper, or the one built beside another bpm under test (BPM_UNDER_TEST=/work/baseline/bpm). */
const HELPER = process.env.BPM_UNDER_TEST
  ? join(dirname(process.env.BPM_UNDER_TEST), "dist", "helper", "bpm-helper")
  : resolve(import.meta.dirname, "../../dist/helper/bpm-helper");
const RECORDS = resolve(import.meta.dirname, "../fixtures/records");
const skip = existsSync(HELPER) ? false : "needs the built helper (npm run build)";

/** The records of an encoded plan, by the table in wire.ts. */
function decode(buf: Buffer): string[][] {
  const nl = buf.indexOf(10);
  assert.equal(buf.subarray(0, nl).toString(), `${PLAN_VERSION} ${buf.length - nl - 1}`);
  const fields = buf.subarray(nl + 1).toString().split("\0");
  const out: string[][] = [];
  for (let i = 0; ; ) {
    const tag = fields[i++] as PlanTag;
    assert.ok(Object.hasOwn(PLAN_RECORDS, tag), `unknown tag ${tag}`);
    if (tag === "end") break;
    out.push([tag, ...fields.slice(i, i + PLAN_RECORDS[tag])]);
    i += PLAN_RECORDS[tag];
  }
  return out;
}

/** The helper's canonical form: mount flags in its table's order, a foreground mode left unsaid. */
const FLAG_ORDER = ["ro", "nosuid", "nodev", "noexec", "rec", "shared"];
const flagField: Partial<Record<PlanTag, number>> = { bind: 3, fs: 4, rootro: 1 };
function canonical(records: string[][]): string[] {
  return records
    .filter(([tag, v]) => !(tag === "mode" && v === "foreground"))
    .map((r) => {
      const at = flagField[r[0] as PlanTag];
      if (at !== undefined) r = r.map((f, i) => (i === at ? f.split(",").filter(Boolean).sort((a, b) => FLAG_ORDER.indexOf(a) - FLAG_ORDER.indexOf(b)).join(",") : f));
      return r.map((f) => f.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n")).join("\t");
    });
}

function helperReads(buf: Buffer): string[] {
  const r = spawnSync(HELPER, ["plan-dump"], { input: buf, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean);
}

/** Same records (as a set), and in the same order where order matters: mounts, argv, environment. */
function assertRoundTrip(buf: Buffer) {
  const want = canonical(decode(buf));
  const got = helperReads(buf);
  assert.deepEqual([...got].sort(), [...want].sort());
  for (const tags of [["bind", "fs", "mknod", "symlink", "mask", "readonly", "rootro"], ["arg"], ["env"], ["hookenv"], ["prep"]]) {
    const only = (lines: string[]) => lines.filter((l) => tags.includes(l.split("\t")[0]!));
    assert.deepEqual(only(got), only(want), `order of ${tags.join("/")}`);
  }
}

const yaml = `processes:
- name: web
  executable: /bin/web
  args: [a, "b\\tc", "line\\nbreak"]
  env: {LANG: C, "WITH_TAB": "x\\ty"}
  capabilities: [NET_BIND_SERVICE, CHOWN]
  limits: {open_files: 1024, core_file_size: 0}
  hooks: {pre_start: /var/vcap/jobs/web/bin/pre}
  shutdown_signal: INT
  additional_volumes:
  - {path: /var/vcap/data/shared, writable: true, shared: true}
`;

describe("every verb's plan, through the built helper", { skip }, () => {
  it("start", () => assertRoundTrip(encodePlan(plan(yaml))));
  it("run, traced from its start", () => assertRoundTrip(encodePlan(plan(yaml, "foreground", "run", true))));
  it("a privileged start", () => assertRoundTrip(encodePlan(plan(`${yaml}  unsafe: {privileged: true, host_pid_namespace: true}\n`))));
  it("a refused start", () => {
    const paths = jobPaths(root, "web");
    const job = jobBook(paths, { name: "vcap", uid: 1000, gid: 1000, groups: [] }, "start");
    assertRoundTrip(encodePlan({ kind: "refusal", mode: "detach", job, why: "failed to start job-process: volume /x is mount_only but /y does not exist" }));
  });
  it("stop", () => {
    const paths = jobPaths(root, "web");
    const cg = cgroupLayout("/sys/fs/cgroup", jobCgroupAt(1, "/sys/fs/cgroup", root, "bpm-web"), {}, true);
    assertRoundTrip(encodeStopPlan({ job: jobBook(paths, { name: "vcap", uid: 1000, gid: 1000, groups: [] }, "stop"), cgroup: cg }));
  });
  it("a start and a stop in a systemd scope (hybrid), with its properties", () => {
    const placement: Placement = {
      version: 1, manager: "systemd", delegable: null, why: null, also: ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"],
      base: { memory: "/sys/fs/cgroup/memory", pids: "/sys/fs/cgroup/pids", cpu: "/sys/fs/cgroup/cpu", cpuacct: "/sys/fs/cgroup/cpuacct" },
    };
    const cg = cgroupLayout("/sys/fs/cgroup", jobCgroupIn(placement, root, "bpm-web"), { memoryBytes: 1 << 30, pids: 100, cpus: 1.5, cpuWeight: 50 });
    assert.ok(cg.scope && cg.scope.properties.length > 8);
    assertRoundTrip(encodePlan({ ...plan(yaml), cgroup: cg }));
    const paths = jobPaths(root, "web");
    assertRoundTrip(encodeStopPlan({ job: jobBook(paths, { name: "vcap", uid: 1000, gid: 1000, groups: [] }, "stop"), cgroup: cg }));
  });
  it("enter (shell), from a record", () => {
    const record = parseRecord(readFileSync(join(RECORDS, "v3-v1-cgroups.state"), "utf8"))!;
    assertRoundTrip(encodeEnterPlan(enterPlan(record.pid, record.entry!, { executable: "/bin/bash", args: ["--norc"], env: { HISTFILE: "" } })));
  });
  it("is refused, with the record named, when a record is cut short", () => {
    const buf = encodePlan(plan(yaml));
    const nl = buf.indexOf(10);
    const body = buf.subarray(nl + 1);
    // Drop the last field but "end": the record before it misses a field.
    const cut = Buffer.concat([body.subarray(0, body.lastIndexOf(0, body.length - 6) + 1), Buffer.from("end\0")]);
    const r = spawnSync(HELPER, ["plan-dump"], { input: Buffer.concat([Buffer.from(`${PLAN_VERSION} ${cut.length}\n`), cut]), encoding: "utf8" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /plan: /);
  });
});

describe("the liveness rule, the same on both sides", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "bpm-live-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const me = { pid: process.pid, start: startTime(process.pid)! };
  // A whole record of each version, with this process's pid, start time and boot (or another's).
  const v3 = readFileSync(join(RECORDS, "v3-v1-cgroups.state"), "utf8");
  const v2 = readFileSync(join(RECORDS, "v2-previous-bpm.state"), "utf8");
  const as = (text: string, start: number, boot: string) =>
    text.replace(/^pid .*$/m, `${K.pid} ${me.pid}`).replace(/^start-time .*$/m, `${K.startTime} ${start}`).replace(/^boot-id .*$/m, `${K.bootId} ${boot}`);
  const cases: [string, string, boolean][] = [
    ["this process, this boot", as(v3, me.start, bootId()), true],
    ["this pid, another start time", as(v3, me.start + 1, bootId()), false],
    ["this process, another boot", as(v3, me.start, "00000000-0000-0000-0000-000000000000"), false],
    ["this process, a record of the previous bpm (no boot)", as(v2, me.start, ""), true],
  ];
  for (const [name, body, live] of cases) {
    it(name, () => {
      const file = join(dir, `${name.replace(/\W+/g, "-")}.state`);
      writeFileSync(file, body);
      assert.equal(isLive(parseRecord(readFileSync(file, "utf8"))!), live, "src/runtime/state.ts");
      const r = spawnSync(HELPER, ["state-dump", file], { encoding: "utf8" });
      assert.match(r.stdout, new RegExp(`^live ${live ? 1 : 0}$`, "m"), `helper-c/state.c: ${r.stdout}${r.stderr}`);
    });
  }
});

describe("the record's test vectors, read by both sides", () => {
  const vectors = readdirSync(RECORDS).filter((f) => f.endsWith(".state")).sort();
  it("has vectors of both versions and of what is no record", () => {
    assert.ok(vectors.length >= 5, vectors.join(" "));
  });
  for (const f of vectors) {
    const text = readFileSync(join(RECORDS, f), "utf8");
    const want = JSON.parse(readFileSync(join(RECORDS, f.replace(/\.state$/, ".json")), "utf8")) as ProcessRecord | null;
    it(`${f}: src/plan/record.ts`, () => assert.deepEqual(parseRecord(text), want));
    it(`${f}: helper-c/state.c`, { skip }, () => {
      const r = spawnSync(HELPER, ["state-dump", join(RECORDS, f)], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const expected = want
        ? [
            `version ${want.version}`,
            `${K.pid} ${want.pid}`,
            `${K.startTime} ${want.startTime}`,
            ...(want.bootId ? [`${K.bootId} ${want.bootId}`] : []),
            `${K.shutdownSignal} ${want.shutdownSignal}`,
            `${K.shutdownTimeoutMs} ${want.shutdownTimeoutMs}`,
            ...(want.entry?.cgroupDirs ?? []).map((d) => `${K.cgroup} ${d}`),
            ...(want.entry?.cgroupKill ? [`${K.cgroupKill} ${want.entry.cgroupKill}`] : []),
            ...(want.entry?.cgroupOom ? [`${K.cgroupOom} ${want.entry.cgroupOom}`] : []),
            ...(want.entry?.cgroupScope ? [`${K.cgroupScope} ${want.entry.cgroupScope}`] : []),
            `live ${isLive(want) ? 1 : 0}`,
          ]
        : ["none"];
      assert.deepEqual(r.stdout.split("\n").filter(Boolean), expected);
    });
  }
});
