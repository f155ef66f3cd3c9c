// The formats the CLI and the helper share, held against the built helper:
// every verb's plan, encoded here, is decoded by the verb's reader in the
// helper and printed back from what it parsed (plan-dump VERB), and a record
// or plan of another kind is refused; every record in test/fixtures/records is
// read by both sides (parseRecord here, state-dump there) to the same result.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { jobPaths } from "../../src/bosh/paths.ts";
import { jobBook, logBook, type LogNeed } from "../../src/plan/book.ts";
import { cgroupLayout, jobCgroupAt, jobCgroupIn, type Placement } from "../../src/plan/cgroup.ts";
import { encodeEnterPlan, encodeLogPlan, encodePlan, encodeStopPlan } from "../../src/plan/encode.ts";
import { enterPlan } from "../../src/plan/enter.ts";
import { parseRecord, type ProcessRecord } from "../../src/plan/record.ts";
import { eventLine, PLAN_KINDS, PLAN_RECORDS, PLAN_VERSION, RECORD_KEYS as K, type PlanKind, type PlanTag } from "../../src/plan/wire.ts";
import { startTime } from "../../src/runtime/procs.ts";
import { bootId, isLive } from "../../src/runtime/state.ts";
import { plan, root } from "./plan-fixture.ts";

/** The built helper, or the one built beside another bpm under test (BPM_UNDER_TEST=/work/baseline/bpm). */
const HELPER = process.env.BPM_UNDER_TEST
  ? join(dirname(process.env.BPM_UNDER_TEST), "dist", "helper", "bpm-helper")
  : resolve(import.meta.dirname, "../../dist/helper/bpm-helper");
const RECORDS = resolve(import.meta.dirname, "../fixtures/records");
const skip = existsSync(HELPER) ? false : "needs the built helper (npm run build)";

/** An encoded plan's kind and records, by the table in wire.ts. */
function decode(buf: Buffer): { kind: PlanKind; records: string[][] } {
  const nl = buf.indexOf(10);
  const [version, kind, len] = buf.subarray(0, nl).toString().split(" ");
  assert.equal(version, PLAN_VERSION);
  assert.ok((PLAN_KINDS as readonly string[]).includes(kind!), `unknown kind ${kind}`);
  assert.equal(Number(len), buf.length - nl - 1);
  const fields = buf.subarray(nl + 1).toString().split("\0");
  const records: string[][] = [];
  for (let i = 0; ; ) {
    const tag = fields[i++] as PlanTag;
    assert.ok(Object.hasOwn(PLAN_RECORDS, tag), `unknown tag ${tag}`);
    if (tag === "end") break;
    records.push([tag, ...fields.slice(i, i + PLAN_RECORDS[tag].fields)]);
    i += PLAN_RECORDS[tag].fields;
  }
  return { kind: kind as PlanKind, records };
}

/** A plan of this kind with these records, framed as the encoder frames one. */
function frame(kind: string, records: string[][]): Buffer {
  const body = Buffer.from([...records.flat(), "end"].join("\0") + "\0");
  return Buffer.concat([Buffer.from(`${PLAN_VERSION} ${kind} ${body.length}\n`), body]);
}

/** The helper's canonical form: the kind first, then the records with mount flags in its table's order. */
const FLAG_ORDER = ["ro", "nosuid", "nodev", "noexec", "rec", "shared"];
const flagField: Partial<Record<PlanTag, number>> = { bind: 3, fs: 4, rootro: 1 };
function canonical({ kind, records }: { kind: PlanKind; records: string[][] }): string[] {
  const lines = records.map((r) => {
    const at = flagField[r[0] as PlanTag];
    if (at !== undefined) r = r.map((f, i) => (i === at ? f.split(",").filter(Boolean).sort((a, b) => FLAG_ORDER.indexOf(a) - FLAG_ORDER.indexOf(b)).join(",") : f));
    return r.map((f) => f.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n")).join("\t");
  });
  return [`kind\t${kind}`, ...lines];
}

/** The helper's verbs, and the kinds of plan each takes. */
const VERBS = { start: ["launch", "refusal"], launch: ["launch", "refusal"], shell: ["enter"], stop: ["stop"], log: ["log"] } as const satisfies Record<string, readonly PlanKind[]>;
const verbsOf = (kind: PlanKind) => (Object.keys(VERBS) as (keyof typeof VERBS)[]).filter((v) => (VERBS[v] as readonly PlanKind[]).includes(kind));

/** What the helper's verb reads of a plan, printed back (plan-dump VERB). */
const helperReads = (verb: string, buf: Buffer) => spawnSync(HELPER, ["plan-dump", verb], { input: buf, encoding: "utf8" });

/** Every record each kind's plans carried through the helper below. */
const carried = new Map<PlanKind, Set<string>>(PLAN_KINDS.map((k) => [k, new Set()]));

/** Same kind and records (as a set), and in the same order where order matters (mounts, argv, environment),
 * for every verb that takes the plan's kind. */
function assertRoundTrip(buf: Buffer) {
  const plan = decode(buf);
  const want = canonical(plan);
  for (const verb of verbsOf(plan.kind)) {
    const r = helperReads(verb, buf);
    assert.equal(r.status, 0, `${verb}: ${r.stderr}`);
    const got = r.stdout.split("\n").filter(Boolean);
    assert.equal(got[0], want[0], `${verb}: the kind`);
    assert.deepEqual([...got].sort(), [...want].sort(), verb);
    for (const tags of [["bind", "fs", "mknod", "symlink", "mask", "readonly", "rootro"], ["arg"], ["env"], ["hookenv"], ["prep"]]) {
      const only = (lines: string[]) => lines.filter((l) => tags.includes(l.split("\t")[0]!));
      assert.deepEqual(only(got), only(want), `${verb}: order of ${tags.join("/")}`);
    }
  }
  for (const [tag] of plan.records) carried.get(plan.kind)!.add(tag!);
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

const vcap = { name: "vcap", uid: 1000, gid: 1000, groups: [] };
/** The CLI's bpm.log lines before a hand-over, as BpmLog formats them. */
const logLines = [
  eventLine("2024-05-01T10:00:00.000Z", "info", "bpm.start.starting", { job: "web", process: "web" }),
  eventLine("2024-05-01T10:00:00.001Z", "info", "bpm.start.unknown-config-key", { job: "web", process: "web", warning: "bpm.yml:3:1: tab\there" }),
];
const refusal = () => encodePlan({ kind: "refusal", job: jobBook(jobPaths(root, "web"), vcap, "start"), why: "failed to start job-process: volume /x is mount_only but /y does not exist" }, logLines);
/** A stop as the CLI makes one: the layout a start without limits would use (v1: its cpu directories leftovers). */
const stopPlan = (cg = cgroupLayout("/sys/fs/cgroup", jobCgroupAt(1, "/sys/fs/cgroup", root, "bpm-web"), {})) =>
  encodeStopPlan({ job: jobBook(jobPaths(root, "web"), vcap, "stop"), cgroup: cg }, logLines);
/** bpm.log lines for the helper's log verb, as run, shell and trace send them (stop's only wanted). */
const logPlan = (need: LogNeed = "required") => encodeLogPlan(logBook(jobPaths(root, "web"), vcap), need, logLines);
const enter = () => {
  const record = parseRecord(readFileSync(join(RECORDS, "v3-v1-cgroups.state"), "utf8"))!;
  return encodeEnterPlan(enterPlan(record.pid, record.entry!, { executable: "/bin/bash", args: ["--norc"], env: { HISTFILE: "" } }));
};

describe("every verb's plan, through the built helper", { skip }, () => {
  it("start, with the reaper its init becomes", () => assertRoundTrip(encodePlan({ ...plan(yaml), reaper: "/var/vcap/data/bpm/bpm-reaper-0123" }, logLines)));
  it("run, traced from its start", () => assertRoundTrip(encodePlan(plan(yaml, "foreground", "run", true), logLines)));
  it("a privileged start, on cgroup v1 (its cpu directory a leftover)", () => {
    const cgroup = cgroupLayout("/sys/fs/cgroup", jobCgroupAt(1, "/sys/fs/cgroup", root, "bpm-web"), { memoryBytes: 1 << 30 });
    assert.ok(cgroup.leftovers.length > 0);
    assertRoundTrip(encodePlan({ ...plan(`${yaml}  unsafe: {privileged: true, host_pid_namespace: true}\n`), cgroup }, []));
  });
  it("a refused start", () => assertRoundTrip(refusal()));
  it("stop, on cgroup v1 and v2", () => {
    assertRoundTrip(stopPlan());
    assertRoundTrip(stopPlan(cgroupLayout("/sys/fs/cgroup", jobCgroupAt(2, "/sys/fs/cgroup", root, "bpm-web"), {})));
  });
  it("a start and a stop in a systemd scope (hybrid), with its properties", () => {
    const placement: Placement = {
      version: 1, manager: "systemd", delegable: null, why: null, tracking: ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"],
      base: { memory: "/sys/fs/cgroup/memory", pids: "/sys/fs/cgroup/pids", cpu: "/sys/fs/cgroup/cpu", cpuacct: "/sys/fs/cgroup/cpuacct" },
    };
    const cg = cgroupLayout("/sys/fs/cgroup", jobCgroupIn(placement, root, "bpm-web"), { memoryBytes: 1 << 30, pids: 100, cpus: 1.5, cpuWeight: 50 });
    assert.ok(cg.scope && cg.scope.properties.length > 8);
    assertRoundTrip(encodePlan({ ...plan(yaml), cgroup: cg }, logLines));
    assertRoundTrip(stopPlan(cg));
  });
  it("enter (shell), from a record", () => assertRoundTrip(enter()));
  it("log, required and wanted", () => {
    assertRoundTrip(logPlan("required"));
    assertRoundTrip(logPlan("wanted"));
  });
  it("carried every record of every kind above", () => {
    for (const kind of PLAN_KINDS) {
      const all = (Object.keys(PLAN_RECORDS) as PlanTag[]).filter((t) => t !== "end" && (PLAN_RECORDS[t].kinds as readonly PlanKind[]).includes(kind));
      assert.deepEqual(all.filter((t) => !carried.get(kind)!.has(t)), [], `${kind}: records no plan above carried`);
    }
  });
  it("is refused, with the record named, when a record is cut short", () => {
    const buf = encodePlan(plan(yaml), logLines);
    const nl = buf.indexOf(10);
    const body = buf.subarray(nl + 1);
    // Drop the last field but "end": the record before it misses a field.
    const cut = Buffer.concat([body.subarray(0, body.lastIndexOf(0, body.length - 6) + 1), Buffer.from("end\0")]);
    const r = helperReads("start", Buffer.concat([Buffer.from(`${PLAN_VERSION} launch ${cut.length}\n`), cut]));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /plan: record \w+ is cut short/);
  });
});

describe("each verb reads only its kinds of plan, and each kind only its records", { skip }, () => {
  const plans: Record<PlanKind, () => Buffer> = { launch: () => encodePlan(plan(yaml), logLines), refusal, enter, stop: () => stopPlan(), log: () => logPlan() };
  for (const kind of PLAN_KINDS) {
    it(`a plan of kind ${kind} with a record of another kind is refused, the record named`, () => {
      const { records } = decode(plans[kind]());
      const others = (Object.keys(PLAN_RECORDS) as PlanTag[]).filter((t) => !(PLAN_RECORDS[t].kinds as readonly PlanKind[]).includes(kind));
      assert.ok(others.length > 0);
      for (const tag of others) {
        const bad = frame(kind, [...records, [tag, ...Array<string>(PLAN_RECORDS[tag].fields).fill("1")]]);
        for (const verb of verbsOf(kind)) {
          const r = helperReads(verb, bad);
          assert.notEqual(r.status, 0, `${verb} took ${tag} in a plan of kind ${kind}`);
          assert.match(r.stderr, new RegExp(`^error: plan: record "${tag}" does not belong in a plan of kind ${kind}$`, "m"), `${verb}, ${tag}`);
        }
      }
    });
  }
  it("a verb refuses a plan of a kind it does not take, the kind named", () => {
    for (const verb of Object.keys(VERBS) as (keyof typeof VERBS)[]) {
      for (const kind of PLAN_KINDS.filter((k) => !(VERBS[verb] as readonly PlanKind[]).includes(k))) {
        const r = helperReads(verb, plans[kind]());
        assert.notEqual(r.status, 0, `${verb} took a plan of kind ${kind}`);
        assert.match(r.stderr, new RegExp(`^error: plan: a plan of kind ${kind}, where .* was expected$`, "m"), `${verb}, ${kind}`);
      }
    }
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
  /** Both sides judge the record in body: live or not, as expected. */
  const judge = (name: string, body: string, live: boolean) => {
    const file = join(dir, `${name.replace(/\W+/g, "-")}.state`);
    writeFileSync(file, body);
    assert.equal(isLive(parseRecord(readFileSync(file, "utf8"))!), live, "src/runtime/state.ts");
    const r = spawnSync(HELPER, ["state-dump", file], { encoding: "utf8" });
    assert.match(r.stdout, new RegExp(`^live ${live ? 1 : 0}$`, "m"), `helper-c/state.c: ${r.stdout}${r.stderr}`);
  };
  for (const [name, body, live] of cases) it(name, () => judge(name, body, live));

  /** Field 3 (state) and 22 (start time) of /proc/PID/stat, read as they are. */
  const stat = (pid: number) => {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return { state: f[0]!, start: Number(f[19]) };
  };
  const withPid = (pid: number, start: number) => v3.replace(/^pid .*$/m, `${K.pid} ${pid}`).replace(/^start-time .*$/m, `${K.startTime} ${start}`).replace(/^boot-id .*$/m, `${K.bootId} ${bootId()}`);

  it("a zombie with the recorded start time, in this boot: gone (only not reaped yet)", async () => {
    // sh forks a child that waits for a byte on fd 3, then becomes a sleep that never reaps it. The
    // child ends only once sh is the sleep: sh itself reaps a child that ended before its exec.
    const parent = spawn("/bin/sh", ["-c", "head -c 1 <&3 >/dev/null & echo $!; exec sleep 1000 3<&-"], { stdio: ["ignore", "pipe", "ignore", "pipe"] });
    const poll = async (what: string, done: () => boolean) => {
      for (let i = 0; !done(); i++) {
        assert.ok(i < 10_000, what);
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    try {
      const zombie = Number(await new Promise<string>((res) => parent.stdout!.once("data", (d: Buffer) => res(d.toString()))));
      await poll(`pid ${parent.pid} never became the sleep`, () => readFileSync(`/proc/${parent.pid}/comm`, "utf8") === "sleep\n");
      (parent.stdio[3] as NodeJS.WritableStream).end("x");
      await poll(`pid ${zombie} never became a zombie`, () => stat(zombie).state === "Z");
      judge("zombie", withPid(zombie, stat(zombie).start), false);
    } finally {
      parent.kill("SIGKILL");
    }
  });

  it("a pid that no longer exists: gone", () => {
    const done = spawnSync("/bin/true");
    assert.ok(!existsSync(`/proc/${done.pid}`));
    judge("no such pid", withPid(done.pid!, me.start), false);
  });
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
