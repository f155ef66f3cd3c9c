// What start made is the truth for every later command (issue 24): shell,
// list, trace and stop act on the record start left, whatever bpm.yml says
// now (broken, changed, renamed, removed); a process the previous bpm
// started (its state file, "bpm-state 2") is still listed, entered and
// stopped. Observed through the built executable, from inside the shell.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { alive, bashJob, BPM, eventually, skipUnlessRoot, type Root, useRoot } from "./harness.ts";

/** What /work/main built before this change: starts processes the way the previous version does. */
const PREVIOUS = process.env.BPM_PREVIOUS ?? "/work/baseline/bpm";

/** Runs a script in `bpm shell JOB` (piped: the shell reads it from its pty) and returns what it printed. */
function inShell(r: Root, job: string, script: string, bpm = BPM) {
  return spawnSync(bpm, ["shell", job], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, input: `${script}\nexit 7\n`, encoding: "utf8", timeout: 120_000 });
}

/** A script that prints, each on a line of its own, the shell's effective capabilities and whether the job's volume is mounted. */
const PROBE = `echo "CAP=$(sed -n 's/^CapEff:\\t//p' /proc/self/status)"; awk '$5 == "/var/vcap/data/recvol" {print "VOL=" $5}' /proc/self/mountinfo; echo "MARK=$(cat /var/vcap/data/recvol/mark)"`;

const CAPEFF_NET_BIND_SERVICE = "0000000000000400";

function recordJob(name: string, caps = "[NET_BIND_SERVICE]", volume = true): string {
  const vol = volume ? "  additional_volumes:\n  - path: /var/vcap/data/recvol\n" : "";
  return `${bashJob(name, "exec sleep 1000")}  capabilities: ${caps}\n${vol}`;
}

function assertEnteredAsStarted(res: ReturnType<typeof inShell>) {
  assert.equal(res.status, 7, `shell: ${res.stderr}${res.stdout}`);
  assert.match(res.stdout, new RegExp(`^CAP=${CAPEFF_NET_BIND_SERVICE}\\r?$`, "m"), res.stdout);
  assert.match(res.stdout, /^VOL=\/var\/vcap\/data\/recvol\r?$/m, res.stdout);
  assert.match(res.stdout, /^MARK=from-the-host\r?$/m, res.stdout);
}

function startWithVolume(r: Root, job: string, bpm = BPM) {
  r.job(job, recordJob(job));
  const started = spawnSync(bpm, ["start", job], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, encoding: "utf8" });
  assert.equal(started.status, 0, started.stderr);
  writeFileSync(join(r.path, "data", "recvol", "mark"), "from-the-host\n");
}

const BROKEN = "processes: [\n";

describe("bpm shell acts on what start made", { skip: skipUnlessRoot }, () => {
  const root = useRoot("record-shell");

  it("enters with the job's own capabilities and mounts after bpm.yml broke", () => {
    const r = root();
    startWithVolume(r, "broke");
    r.job("broke", BROKEN);
    assertEnteredAsStarted(inShell(r, "broke", PROBE));
    assert.equal(r.bpm("stop", "broke").status, 0);
  });

  it("enters with what the job runs with, not what a changed bpm.yml says", () => {
    const r = root();
    startWithVolume(r, "changed");
    // Re-rendered: other capabilities, no volume.
    r.job("changed", recordJob("changed", "[NET_RAW, SYS_PTRACE]", false));
    assertEnteredAsStarted(inShell(r, "changed", PROBE));
    assert.equal(r.bpm("stop", "changed").status, 0);
  });
});

/** `bpm list` rows as [name, pid, status]. */
const table = (out: string) => out.trim().split("\n").slice(1).map((l) => l.trim().split(/\s+/));

describe("bpm list shows every recorded process", { skip: skipUnlessRoot }, () => {
  const root = useRoot("record-list");

  it("lists processes whose bpm.yml broke, no longer names them, or is gone, in their job's place", () => {
    const r = root();
    for (const job of ["a-broken", "b-renamed", "c-removed"]) {
      r.job(job, bashJob(job, "exec sleep 1000"));
      assert.equal(r.bpm("start", job).status, 0);
    }
    const pid = (job: string) => readFileSync(join(r.path, "sys", "run", "bpm", job, `${job}.pid`), "utf8");
    const pids = { a: pid("a-broken"), b: pid("b-renamed"), c: pid("c-removed") };
    r.job("a-broken", BROKEN);
    r.job("b-renamed", bashJob("newname", "exec sleep 1000"));
    rmSync(join(r.path, "jobs", "c-removed"), { recursive: true });

    const list = r.bpm("list");
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(table(list.stdout), [
      ["a-broken", pids.a, "running"],
      ["b-renamed.newname", "-", "stopped"],
      ["b-renamed", pids.b, "running"],
      ["c-removed", pids.c, "running"],
    ]);
    // The contract's stderr lines stay beside the rows.
    assert.match(list.stderr, /^invalid config for a-broken: /m);
    assert.match(list.stderr, /^extra process running: process \(b-renamed\) not defined$/m);
    assert.match(list.stderr, /^extra process running: process \(c-removed\) not defined$/m);

    const long = r.bpm("list", "--long");
    assert.match(long.stdout, /^a-broken .* bpm\.yml unreadable$/m);
    assert.match(long.stdout, /^b-renamed .* not in bpm\.yml$/m);
    assert.match(long.stdout, /^c-removed .* no bpm\.yml$/m);
    const json = JSON.parse(r.bpm("list", "--json").stdout) as { name: string; config: string }[];
    assert.deepEqual(json.map((j) => [j.name, j.config]), [["a-broken", "unreadable"], ["b-renamed.newname", "named"], ["b-renamed", "not-named"], ["c-removed", "missing"]]);

    // A recorded process that died is listed as failed; stopped, it is gone.
    process.kill(Number(pids.c), "SIGKILL");
    return eventually(
      () => table(r.bpm("list").stdout).some((row) => row[0] === "c-removed" && row[2] === "failed"),
      () => r.bpm("list").stdout,
    ).then(() => {
      for (const job of ["a-broken", "b-renamed", "c-removed"]) assert.equal(r.bpm("stop", job).status, 0);
      assert.deepEqual(table(r.bpm("list").stdout), [["b-renamed.newname", "-", "stopped"]]);
    });
  });
});

describe("trace and stop after bpm.yml broke", { skip: skipUnlessRoot }, () => {
  const root = useRoot("record-trace");

  it("traces the running process and stops it, with the recorded shutdown signal", async () => {
    const r = root();
    // INT recorded at start: the job says which signal stopped it.
    r.job("tr", `${bashJob("tr", "trap 'echo got-INT; exit 0' INT; while :; do echo tick > /dev/null; sleep 0.1; done")}  shutdown_signal: INT\n`);
    assert.equal(r.bpm("start", "tr").status, 0);
    r.job("tr", BROKEN);
    const out = join(r.path, "tr.trace");
    const t = spawn(BPM, ["trace", "tr", "-o", out], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    t.stderr.on("data", (d) => (err += d));
    const done = new Promise<number | null>((res) => t.on("close", res));
    await eventually(() => existsSync(out) && /wait4\(/.test(readFileSync(out, "utf8")), () => `trace: ${existsSync(out) ? readFileSync(out, "utf8") : "(none)"}\nstderr: ${err}`);
    t.kill("SIGINT");
    assert.equal(await done, 0, err);
    const stop = r.bpm("stop", "tr");
    assert.equal(stop.status, 0, stop.stderr);
    assert.match(r.log("tr"), /got-INT/);
    assert.equal(r.bpm("pid", "tr").status, 1);
  });
});

describe("a record as large as the job's environment can make it", { skip: skipUnlessRoot }, () => {
  const root = useRoot("record-large");

  it("is read by every command: a second start leaves the job alone, stop sends it the shutdown signal", () => {
    const r = root();
    // 1.8 MB of environment, every byte a "%": the record escapes each to three (5.4 MB).
    const env = Array.from({ length: 15 }, (_, i) => `    BIG_${i}: "${"%".repeat(120_000)}"\n`).join("");
    r.job("large", `${bashJob("large", "trap 'echo got-TERM; exit 0' TERM; while :; do sleep 0.1; done")}  env:\n${env}`);
    const started = r.bpm("start", "large");
    assert.equal(started.status, 0, started.stderr);
    const pid = r.bpm("pid", "large").stdout.trim();
    assert.equal(r.bpm("start", "large").status, 0);
    assert.equal(r.bpm("pid", "large").stdout.trim(), pid, "a second start replaced the running process");
    assert.ok(alive(pid));
    const stop = r.bpm("stop", "large");
    assert.equal(stop.status, 0, stop.stderr);
    assert.match(r.log("large"), /got-TERM/);
    assert.ok(!alive(pid), "the init is gone");
  });
});

describe("a process the previous bpm started", { skip: skipUnlessRoot || (!existsSync(PREVIOUS) && `no previous build at ${PREVIOUS}`) }, () => {
  const root = useRoot("record-upgrade");

  it("is listed, entered and stopped by this build", () => {
    const r = root();
    startWithVolume(r, "old", PREVIOUS);
    const state = readFileSync(join(r.path, "sys", "run", "bpm", "old", "old.state"), "utf8");
    assert.match(state, /^bpm-state 2\n/, "the previous build writes the state this build upgrades from");
    const pid = readFileSync(join(r.path, "sys", "run", "bpm", "old", "old.pid"), "utf8");
    assert.deepEqual(table(r.bpm("list").stdout), [["old", pid, "running"]]);
    assert.equal(r.bpm("pid", "old").stdout, `${pid}\n`);
    assertEnteredAsStarted(inShell(r, "old", PROBE));
    const stop = r.bpm("stop", "old");
    assert.equal(stop.status, 0, stop.stderr);
    assert.ok(!alive(pid), "the init is gone");
    assert.deepEqual(table(r.bpm("list").stdout), [["old", "-", "stopped"]]);
    // And started again by this build, it is recorded in full.
    assert.equal(r.bpm("start", "old").status, 0);
    assert.match(readFileSync(join(r.path, "sys", "run", "bpm", "old", "old.state"), "utf8"), /^bpm-state 3\n/);
    assert.equal(r.bpm("stop", "old").status, 0);
  });
});

describe("each verb's failure says its own verb", { skip: skipUnlessRoot }, () => {
  const root = useRoot("record-errors");

  it("bpm run with a volume it cannot have says failed to run, start says failed to start", () => {
    const r = root();
    r.job("errs", bashJob("errs", "exit 0"));
    const run = r.bpm("run", "errs", "-v", "/var/vcap/data/errs-missing:mount_only");
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^Error: failed to run job-process: volume \/var\/vcap\/data\/errs-missing is mount_only but .* does not exist\n$/);
    r.job("errs", `${bashJob("errs", "exit 0")}  additional_volumes:\n  - path: /var/vcap/data/errs-missing\n    mount_only: true\n`);
    const start = r.bpm("start", "errs");
    assert.equal(start.status, 1);
    assert.match(start.stderr, /^Error: failed to start job-process: volume \/var\/vcap\/data\/errs-missing is mount_only/);
  });
});

describe("bpm run is recorded while it runs", { skip: skipUnlessRoot }, () => {
  const root = useRoot("record-run");

  it("is listed, has a pid and can be entered while it runs; leaves no record and no pidfile", async () => {
    const r = root();
    r.job("errand", `${bashJob("errand", "echo errand-running; while [ ! -e /var/vcap/data/errand/tmp/go ]; do sleep 0.05; done; echo errand-done")}  capabilities: [NET_BIND_SERVICE]\n`);
    const running = r.bpmAsync("run", "errand");
    const go = join(r.path, "data", "errand", "tmp", "go");
    try {
      await r.waitForLog("errand", "errand-running");
      await whileRunning(r);
    } finally {
      // The run holds the job's lock: it must end, or nothing can stop it.
      writeFileSync(go, "");
    }
    const done = await running;
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stdout, /errand-done/);
    assert.ok(!existsSync(join(r.path, "sys", "run", "bpm", "errand", "errand.state")), "the record went with the run");
    assert.deepEqual(table(r.bpm("list").stdout), [["errand", "-", "stopped"]]);
  });
});

/** What list, pid and shell say of the errand while it runs. */
async function whileRunning(r: Root) {
  const rows = table(r.bpm("list").stdout);
  assert.equal(rows.length, 1);
  assert.deepEqual([rows[0]![0], rows[0]![2]], ["errand", "running"]);
  assert.equal(r.bpm("pid", "errand").stdout, `${rows[0]![1]}\n`);
  assert.ok(!existsSync(join(r.path, "sys", "run", "bpm", "errand", "errand.pid")), "no pidfile for monit to watch");
  const sh = inShell(r, "errand", `echo "CAP=$(sed -n 's/^CapEff:\\t//p' /proc/self/status)"`);
  assert.match(sh.stdout, new RegExp(`^CAP=${CAPEFF_NET_BIND_SERVICE}\\r?$`, "m"), sh.stdout + sh.stderr);
}
