// start, stop, pid and list against the real kernel: limits, reaping,
// signals, escalation, locking, recovery.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, readlinkSync, symlinkSync, mkdirSync, writeFileSync, unlinkSync } from "node:fs";
import { describe, it } from "node:test";
import { spawn } from "node:child_process";
import { cgroupFsRoot, jobCgroup } from "../../src/runtime/cgroups.ts";
import { alive, bashJob, BPM, type Root, skipUnlessRoot, sleep, useRoot, eventually } from "./harness.ts";

/** Plans handed to the helper that it did not remove. */
const plansLeft = (root: Root) => readdirSync(`${root.path}/sys/run/bpm`).filter((f) => f.startsWith("plan-"));
const listJson = (root: Root) => JSON.parse(root.bpm("list", "--json").stdout) as Array<Record<string, any>>;
/** The last stop's events in a job's bpm.log: the helper's own record, on its own clock (not Node's start-up, slow under load). */
function lastStop(root: Root, job: string): { events: string[]; how?: string; ms: (from: string, to: string) => number } {
  const all = readFileSync(`${root.path}/sys/log/${job}/bpm.log`, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const from = all.map((e) => e.message.endsWith(".stopping")).lastIndexOf(true);
  const stop = all.slice(from).map((e) => ({ ...e, event: e.message.split(".").pop() }));
  const at = (event: string) => Date.parse(stop.find((e) => e.event === event)!.timestamp);
  return { events: stop.map((e) => e.event), how: stop.at(-1)?.data.how, ms: (a, b) => at(b) - at(a) };
}

describe("lifecycle", { skip: skipUnlessRoot }, () => {
  const root = useRoot("lifecycle");

  it("writes a pidfile without newline, reports running, and stops at once on TERM", async () => {
    root().job("quick", bashJob("quick", "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done"));
    assert.equal(root().bpm("start", "quick").status, 0);
    await root().waitForLog("quick", "up");
    const pidfile = readFileSync(`${root().path}/sys/run/bpm/quick/quick.pid`, "utf8");
    assert.match(pidfile, /^\d+$/);
    assert.equal(root().bpm("pid", "quick").stdout, `${pidfile}\n`);
    assert.match(root().bpm("list").stdout, new RegExp(`^Name +Pid +Status\\nquick +${pidfile} running\\n`));
    assert.deepEqual(plansLeft(root()), [], "the helper removes the plan it was handed");
    assert.equal(root().bpm("stop", "quick").status, 0);
    // Ended by its TERM within the grace period: no QUIT, no KILL.
    const stop = lastStop(root(), "quick");
    assert.deepEqual([stop.events, stop.how], [["stopping", "complete"], "exited"]);
    assert.ok(!alive(Number(pidfile)));
    assert.ok(!existsSync(`${root().path}/sys/run/bpm/quick/quick.pid`));
    assert.match(root().log("quick"), /bye/);
    assert.deepEqual(plansLeft(root()), []);
    assert.equal(root().bpm("stop", "quick").status, 0, "stopping a stopped job succeeds");
    const pid = root().bpm("pid", "quick");
    assert.equal(pid.status, 1);
    assert.equal(pid.stderr, "Error: process is not running or could not be found\n");
  });

  it("start of a running process does nothing; a dead one is reported failed and restarted", async () => {
    root().job("again", bashJob("again", "echo started; exec sleep 1000"));
    assert.equal(root().bpm("start", "again").status, 0);
    const pid = Number(root().bpm("pid", "again").stdout);
    assert.equal(root().bpm("start", "again").status, 0);
    assert.equal(Number(root().bpm("pid", "again").stdout), pid, "already running: same process");
    process.kill(pid, "SIGKILL");
    let list = "";
    await eventually(() => /again +- +failed/.test((list = root().bpm("list").stdout)), () => list);
    assert.equal(root().bpm("start", "again").status, 0);
    const pid2 = Number(root().bpm("pid", "again").stdout);
    assert.notEqual(pid2, pid);
    assert.ok(alive(pid2));
    assert.equal(root().bpm("stop", "again").status, 0);
  });

  it("records how a process ended: exit code", async () => {
    root().job("exits", bashJob("exits", "echo bye; exit 7"));
    assert.equal(root().bpm("start", "exits").status, 0);
    let row = listJson(root()).find((r) => r.name === "exits")!;
    await eventually(() => (row = listJson(root()).find((r) => r.name === "exits")!).status === "failed", () => JSON.stringify(row));
    assert.equal(row.status, "failed");
    assert.equal(row.lastExit.code, 7);
    assert.match(root().bpm("list", "--long").stdout, /exits +- +failed +exit 7 at /);
  });

  it("kills a job over its memory limit and says it was an OOM kill", async () => {
    root().job("hog", bashJob("hog", "echo up; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", "  limits: {memory: 32M}\n"));
    assert.equal(root().bpm("start", "hog").status, 0);
    let row;
    for (let i = 0; i < 200; i++) {
      row = listJson(root()).find((r) => r.name === "hog")!;
      if (row.status === "failed" && row.lastExit) break;
      await sleep(50);
    }
    assert.equal(row!.status, "failed");
    assert.equal(row!.lastExit.oomKilled, true, JSON.stringify(row));
    assert.doesNotMatch(root().log("hog"), /survived/);
  });

  it("limits the number of processes", async () => {
    // python3, not bash: bash retries a failed fork for many seconds.
    const forker = "import os, time\nn = 0\ntry:\n    for i in range(40):\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint('running=%d' % n, flush=True)\ntime.sleep(1000)\n";
    root().job("forky", `processes:\n- name: forky\n  executable: /usr/bin/python3\n  args: [-c, ${JSON.stringify(forker)}]\n  limits: {processes: 10}\n`);
    assert.equal(root().bpm("start", "forky").status, 0);
    const log = await root().waitForLog("forky", /running=\d+/);
    const n = Number(/running=(\d+)/.exec(log)![1]);
    assert.ok(n < 10, `expected fork to fail under the pids limit, ${n} children ran`);
    assert.equal(root().bpm("stop", "forky").status, 0);
  });

  it("reaps orphaned zombies and forwards signals to the job, the init having become the small reaper", async () => {
    root().job("reaper", bashJob("reaper", "trap 'echo got USR1' USR1; (sleep 0.1 &) ; sleep 0.5; echo zombies=$(ps -eo stat= | grep -c Z); while :; do sleep 0.05; done"));
    assert.equal(root().bpm("start", "reaper").status, 0);
    // Once the job runs, the init is bpm-reaper (helper-c/reaper), not the helper holding the plan.
    const init = Number(root().bpm("pid", "reaper").stdout);
    await eventually(() => /\/reaper-[0-9a-f]{64}$/.test(readlinkSync(`/proc/${init}/exe`)), () => readlinkSync(`/proc/${init}/exe`));
    await root().waitForLog("reaper", /zombies=\d/);
    assert.match(root().log("reaper"), /zombies=0/);
    process.kill(Number(root().bpm("pid", "reaper").stdout), "SIGUSR1");
    await root().waitForLog("reaper", "got USR1");
    assert.equal(root().bpm("stop", "reaper").status, 0);
  });

  it("refuses a symlink planted at a log path", () => {
    root().job("planted", bashJob("planted", "exec sleep 1000"));
    mkdirSync(`${root().path}/sys/log/planted`, { recursive: true });
    writeFileSync(`${root().path}/victim`, "untouched");
    symlinkSync(`${root().path}/victim`, `${root().path}/sys/log/planted/planted.stdout.log`);
    const r = root().bpm("start", "planted");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /symlink/);
    assert.equal(readFileSync(`${root().path}/victim`, "utf8"), "untouched");
    assert.notEqual(root().bpm("list").stdout.match(/planted +- +stopped/), null);
    unlinkSync(`${root().path}/sys/log/planted/planted.stdout.log`);
  });

  it("stops what start recorded even after bpm.yml broke or dropped the process (the original refused)", async () => {
    const r = root();
    r.job("drift", `processes:\n- name: drift\n  executable: /bin/bash\n  args: [-c, "trap 'echo got INT; exit 0' INT; echo up; while :; do sleep 0.1; done"]\n  shutdown_signal: INT\n- name: extra\n  executable: /bin/sleep\n  args: ["1000"]\n`);
    assert.equal(r.bpm("start", "drift").status, 0);
    assert.equal(r.bpm("start", "drift", "-p", "extra").status, 0);
    await r.waitForLog("drift", "up");
    writeFileSync(`${r.path}/jobs/drift/config/bpm.yml`, "processes: [this is: not yaml\n");
    const stopped = r.bpm("stop", "drift");
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.match(r.log("drift"), /got INT/, "the shutdown signal recorded at start");
    r.job("drift", "processes:\n- name: drift\n  executable: /bin/true\n");
    assert.equal(r.bpm("stop", "drift", "-p", "extra").status, 0);
    assert.match(r.bpm("list").stdout, /^drift +- +stopped$/m);
    assert.doesNotMatch(r.bpm("list").stderr, /extra process running/);
  });

  it("reads a changed bpm.yml afresh, even one of the same size changed in the same second", async () => {
    const r = root();
    const config = (v: string) => bashJob("fresh", `echo FOO=$FOO; exec sleep 1000`, `  env: {FOO: ${v}}\n`);
    r.job("fresh", config("a"));
    assert.equal(r.bpm("start", "fresh").status, 0);
    await r.waitForLog("fresh", "FOO=a");
    assert.equal(r.bpm("stop", "fresh").status, 0);
    r.job("fresh", config("b"));
    assert.equal(r.bpm("start", "fresh").status, 0);
    await r.waitForLog("fresh", "FOO=b");
    assert.equal(r.bpm("stop", "fresh").status, 0);
    // Broken now: start and list see it at once.
    r.job("fresh", config("[unclosed"));
    assert.match(r.bpm("start", "fresh").stderr, /^Error: failed to parse job configuration: /);
    assert.match(r.bpm("list").stderr, /^invalid config for fresh: /m);
  });

  it("reports a missing executable as a start failure", () => {
    root().job("noexec", "processes:\n- name: noexec\n  executable: /nonexistent/bin/server\n");
    const r = root().bpm("start", "noexec");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^Error: failed to start job-process: exec \/nonexistent\/bin\/server: No such file or directory/);
    assert.match(root().bpm("list").stdout, /noexec +- +stopped/);
  });

  it("runs the pre_start hook on the host and aborts the start when it fails", async () => {
    const hook = `${root().path}/hook.sh`;
    // As in the original, the hook runs once the job's directories exist.
    writeFileSync(hook, `#!/bin/sh\necho hook ran as $(id -u) with FOO=$FOO, tmp owned by $(stat -c %U ${root().path}/data/hooked/tmp)\n`, { mode: 0o755 });
    root().job("hooked", bashJob("hooked", "echo main; exec sleep 1000", `  env: {FOO: bar}\n  hooks: {pre_start: ${hook}}\n`));
    assert.equal(root().bpm("start", "hooked").status, 0);
    await root().waitForLog("hooked", "main");
    assert.match(root().log("hooked"), /hook ran as 0 with FOO=bar, tmp owned by vcap/);
    assert.equal(root().bpm("stop", "hooked").status, 0);
    writeFileSync(hook, "#!/bin/sh\nexit 3\n", { mode: 0o755 });
    const r = root().bpm("start", "hooked");
    assert.equal(r.status, 1);
    assert.equal(r.stderr, "Error: failed to start job-process: prestart hook failed: exit status 3\n");
  });

  it("serialises 50 concurrent start/stop pairs into one consistent outcome", async () => {
    root().job("storm", bashJob("storm", "exec sleep 1000"));
    const runs = [];
    for (let i = 0; i < 50; i++) runs.push(root().bpmAsync("start", "storm"), root().bpmAsync("stop", "storm"));
    const results = await Promise.all(runs);
    for (const r of results) assert.equal(r.status, 0, r.stderr);
    const status = listJson(root()).find((r) => r.name === "storm")!;
    const pidfile = `${root().path}/sys/run/bpm/storm/storm.pid`;
    if (status.status === "running") {
      assert.equal(Number(readFileSync(pidfile, "utf8")), status.pid);
    } else {
      assert.equal(status.status, "stopped");
      assert.ok(!existsSync(pidfile));
    }
    const sleeps = (await root().bpmAsync("stop", "storm")).status;
    assert.equal(sleeps, 0);
    assert.equal(listJson(root()).find((r) => r.name === "storm")!.status, "stopped");
  });
});

describe("many jobs and slow stops", { skip: skipUnlessRoot }, () => {
  const root = useRoot("many");

  it("starts 20 jobs together, all run, all stop", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `job${i}`);
    for (const n of names) root().job(n, bashJob(n, "exec sleep 1000"));
    const started = await Promise.all(names.map((n) => root().bpmAsync("start", n)));
    for (const r of started) assert.equal(r.status, 0, r.stderr);
    const rows = listJson(root());
    assert.equal(rows.filter((r) => r.status === "running").length, 20);
    const stopped = await Promise.all(names.map((n) => root().bpmAsync("stop", n)));
    for (const r of stopped) assert.equal(r.status, 0, r.stderr);
    assert.equal(listJson(root()).filter((r) => r.status === "stopped").length, 20);
    for (const r of rows) assert.ok(!alive(r.pid));
  });

  it("kills a TERM-ignoring job, its children and grandchildren about 17 s after stop", async () => {
    root().job("stubborn", bashJob("stubborn", "trap '' TERM QUIT; bash -c 'sleep 1000 & sleep 1000' & echo up; while :; do sleep 0.1; done"));
    assert.equal(root().bpm("start", "stubborn").status, 0);
    await root().waitForLog("stubborn", "up");
    const init = Number(root().bpm("pid", "stubborn").stdout);
    const cg = jobCgroup(cgroupFsRoot(), root().path, "bpm-stubborn");
    let tree: number[] = [];
    const procs = () => (tree = readFileSync(`${cg.pids}/cgroup.procs`, "utf8").trim().split("\n").map(Number));
    await eventually(() => procs().length >= 5, () => `init, job, child and grandchildren in the cgroup: ${tree.join(",")}`);
    const r = await root().bpmAsync("stop", "stubborn");
    assert.equal(r.status, 0, r.stderr);
    // From TERM to the init gone: the 15 s grace, QUIT, 2 s, KILL (bpm.log's clock; generous above).
    const stop = lastStop(root(), "stubborn");
    assert.equal(stop.how, "killed", stop.events.join(" "));
    const took = stop.ms("stopping", "forceful-shutdown");
    assert.ok(took >= 16_500 && took < 25_000, `stop took ${took} ms from TERM to the init killed`);
    assert.ok(!alive(init));
    for (const pid of tree) assert.ok(!alive(pid), `pid ${pid} of the job outlived stop`);
    assert.match(readFileSync(`${root().path}/sys/log/stubborn/bpm.log`, "utf8"), /forceful-shutdown/);
  });
});

describe("recovery", { skip: skipUnlessRoot }, () => {
  const root = useRoot("recovery");

  it("treats state left by a reboot, or a recycled pid, as failed and starts afresh", async () => {
    root().job("rebooted", bashJob("rebooted", "echo fresh; exec sleep 1000"));
    mkdirSync(`${root().path}/sys/run/bpm/rebooted`, { recursive: true });
    // The pid now belongs to someone else (this test runner), with another start time.
    writeFileSync(`${root().path}/sys/run/bpm/rebooted/rebooted.state`, `bpm-state 2\npid ${process.pid}\nstart-time 1\nstarted-at 1577836800000\nshutdown-signal TERM\n`);
    writeFileSync(`${root().path}/sys/run/bpm/rebooted/rebooted.pid`, String(process.pid));
    assert.match(root().bpm("list").stdout, /rebooted +- +failed/);
    assert.equal(root().bpm("pid", "rebooted").status, 1);
    assert.equal(root().bpm("start", "rebooted").status, 0);
    await root().waitForLog("rebooted", "fresh");
    const pid = Number(root().bpm("pid", "rebooted").stdout);
    assert.notEqual(pid, process.pid);
    assert.equal(root().bpm("stop", "rebooted").status, 0);
    assert.ok(alive(process.pid), "the recycled pid's owner was not signalled");
  });

  it("recovers when bpm itself is killed in the middle of a start", async () => {
    root().job("interrupted", bashJob("interrupted", "echo up; exec sleep 1000"));
    for (const delay of [5, 30, 60, 120]) {
      const c = spawn(BPM, ["start", "interrupted"], { env: { ...process.env, BPM_BOSH_ROOT: root().path }, stdio: "ignore" });
      const closed = new Promise((r) => c.on("close", r)); // it may be done before the kill
      await sleep(delay);
      c.kill("SIGKILL");
      await closed;
      // Whatever was left, the next start leaves exactly one running process with a matching pidfile.
      assert.equal(root().bpm("start", "interrupted").status, 0);
      const rows = listJson(root()).filter((r) => r.name === "interrupted");
      assert.equal(rows[0]!.status, "running");
      assert.equal(Number(readFileSync(`${root().path}/sys/run/bpm/interrupted/interrupted.pid`, "utf8")), rows[0]!.pid);
      assert.equal(rows[0]!.pids, 2, "one init and one job in the cgroup");
      assert.equal(root().bpm("stop", "interrupted").status, 0);
      assert.equal(listJson(root()).find((r) => r.name === "interrupted")!.status, "stopped");
    }
  });
});
