// Stop always stops: nothing a job does to the places it can write (its
// bpm.log, a shared tmpfs it fills), and no bpm killed in the middle of a
// hand-over, keeps a process running or breaks `bpm list`. Also what a job
// must not be able to steer: a job named like bpm's own directories, the
// pre_start hook's environment, the operator's `bpm shell`.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { alive, bashJob, BPM, makeRoot, type Root, skipUnlessRoot, useRoot } from "./harness.ts";

const pidOf = (r: Root, job: string) => Number(r.bpm("pid", job).stdout);
const mkfifoSync = (p: string) => assert.equal(spawnSync("mkfifo", [p]).status, 0);
const PTY_DRIVER = resolve(import.meta.dirname, "pty-driver.py");

/** Starts job and waits for it to say it is up. */
async function started(r: Root, job: string, script = "echo up; exec sleep 1000"): Promise<number> {
  r.job(job, bashJob(job, script));
  const res = r.bpm("start", job);
  assert.equal(res.status, 0, res.stderr);
  await r.waitForLog(job, "up");
  return pidOf(r, job);
}

describe("stop always stops: what a job plants at its bpm.log", { skip: skipUnlessRoot }, () => {
  const root = useRoot("stopalways");

  // Each plants something at bpm.log, as the job itself could (its log dir is its own).
  const plants: Array<[string, (log: string, r: Root) => void, RegExp]> = [
    ["a symlink to a host file", (log, r) => symlinkSync(`${r.path}/victim`, log), /refusing to open symlink at .*bpm\.log/],
    ["a FIFO nobody reads", (log) => mkfifoSync(log), /bpm\.log: No such device or address|bpm\.log: no such device or address/i],
    ["a directory", (log) => mkdirSync(log), /bpm\.log: (Is a directory|illegal operation on a directory)/i],
    ["a second hard link", (log, r) => linkSync(log, `${r.path}/sys/log/${log.split("/").at(-2)}/elsewhere`), /it has 2 hard links/],
  ];
  for (const [what, plant, said] of plants) {
    it(`stops a job whose bpm.log is ${what}: exit 0, said once on stderr, nothing written through`, async () => {
      const r = root();
      const job = `planted${plants.findIndex((p) => p[0] === what)}`;
      writeFileSync(`${r.path}/victim`, "host file\n");
      const pid = await started(r, job);
      const log = `${r.path}/sys/log/${job}/bpm.log`;
      if (!what.includes("hard link")) rmSync(log);
      plant(log, r);
      const res = r.bpm("stop", job);
      assert.equal(res.status, 0, res.stderr);
      const lines = res.stderr.split("\n").filter(Boolean);
      assert.equal(lines.length, 1, res.stderr);
      assert.match(lines[0]!, said);
      assert.match(lines[0]!, /^bpm\.log not written: /);
      assert.ok(!alive(pid), "the process is gone");
      assert.match(r.bpm("list").stdout, new RegExp(`^${job} +- +stopped$`, "m"));
      assert.equal(readFileSync(`${r.path}/victim`, "utf8"), "host file\n", "nothing written through the symlink");
      // A start still refuses what it may not use, and changes nothing.
      if (what.includes("symlink")) {
        const again = r.bpm("start", job);
        assert.equal(again.status, 1);
        assert.match(again.stderr, /refusing to open symlink at/);
        assert.match(r.bpm("list").stdout, new RegExp(`^${job} +- +stopped$`, "m"));
      }
    });
  }

  it("stops a job whose bpm.log is a directory when nobody reads bpm's stderr any more (no death by SIGPIPE)", async () => {
    const r = root();
    const job = "deafstop";
    const pid = await started(r, job);
    const log = `${r.path}/sys/log/${job}/bpm.log`;
    rmSync(log);
    mkdirSync(log);
    const stop = spawn(BPM, ["stop", job], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, stdio: ["ignore", "ignore", "pipe"] });
    // The reading end goes before bpm has booted: its "bpm.log not written" meets a pipe nobody reads.
    stop.stderr!.destroy();
    const [code, signal] = await new Promise<[number | null, string | null]>((res) => stop.on("exit", (c, s) => res([c, s])));
    assert.deepEqual([code, signal], [0, null]);
    assert.ok(!alive(pid), "the process is gone");
    assert.match(r.bpm("list").stdout, new RegExp(`^${job} +- +stopped$`, "m"));
  });

  it("stops a job whose bpm.log is a FIFO the job made and holds open for reading", async () => {
    const r = root();
    const job = "fiforeader";
    const log = "/var/vcap/sys/log/fiforeader/bpm.log";
    const pid = await started(r, job, `rm ${log}; mkfifo ${log}; exec 3<>${log}; echo up; exec sleep 1000`);
    const res = r.bpm("stop", job);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /^bpm\.log not written: refusing to open .*bpm\.log: not a regular file\n$/);
    assert.ok(!alive(pid));
  });
});

describe("stop always stops: a full shared tmpfs under sys/run", { skip: skipUnlessRoot }, () => {
  const root = useRoot("fulltmpfs");

  it("stops every job with sys/run full; a start then fails clearly and leaves nothing; it works again once there is room", async () => {
    const r = root();
    // As on a BOSH VM: sys/run is one small tmpfs shared by every job and by bpm's state.
    mkdirSync(`${r.path}/sys/run`, { recursive: true });
    assert.equal(spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", `${r.path}/sys/run`]).status, 0);
    try {
      const other = await started(r, "other");
      // The filler fills its own writable socket dir (sys/run/JOB) until the tmpfs is full,
      // once its own start is recorded (the test says go).
      await started(r, "filler", "echo up; until [ -e /var/vcap/sys/run/filler/go ]; do sleep 0.05; done; dd if=/dev/zero of=/var/vcap/sys/run/filler/fill bs=64k 2>/dev/null; echo full; exec sleep 1000");
      writeFileSync(`${r.path}/sys/run/filler/go`, "");
      await r.waitForLog("filler", "full");
      const df = spawnSync("df", ["--output=avail", `${r.path}/sys/run`], { encoding: "utf8" }).stdout;
      assert.match(df, /\n\s*0\n/, df);
      const stop = r.bpm("stop", "other");
      assert.equal(stop.status, 0, stop.stderr);
      assert.equal(stop.stderr, "");
      assert.ok(!alive(other), "other stopped");
      // The pages the stop gave back (pidfile, state) are taken again.
      spawnSync("dd", ["if=/dev/zero", `of=${r.path}/sys/run/filler/more`, "bs=4k"]);

      const start = r.bpm("start", "other");
      assert.equal(start.status, 1, start.stderr);
      assert.match(start.stderr, /^Error: failed to start job-process: .*sys\/run\/bpm\/other\/\S+: No space left on device\n$/);
      assert.match(r.bpm("list").stdout, /^other +- +stopped$/m);
      assert.ok(!existsSync(`${r.path}/sys/run/bpm/other/other.pid`) && !existsSync(`${r.path}/sys/run/bpm/other/other.state`));
      const cg = readdirSync(`${r.path}/sys/run/bpm/other`).filter((f) => !/^(config\.cache|other\.root|other\.exit)$/.test(f));
      assert.deepEqual(cg, [], "no state left");

      rmSync(`${r.path}/sys/run/filler/fill`);
      rmSync(`${r.path}/sys/run/filler/more`);
      const again = r.bpm("start", "other");
      assert.equal(again.status, 0, again.stderr);
      assert.match(r.bpm("list").stdout, /^other +\d+ +running$/m);
      assert.equal(r.bpm("stop", "other").status, 0);
      assert.equal(r.bpm("stop", "filler").status, 0);
    } finally {
      spawnSync("umount", ["-l", `${r.path}/sys/run`]);
    }
  });
});

describe("list tells the truth whatever sits beside the state", { skip: skipUnlessRoot }, () => {
  const root = useRoot("listtruth");

  it("ignores a stray plan file or other junk in bpm's run directory", async () => {
    const r = root();
    const pid = await started(r, "steady");
    // What an older bpm killed mid-hand-over left behind, and other junk.
    writeFileSync(`${r.path}/sys/run/bpm/plan-2373-0`, "BPMPLAN1 3\n");
    writeFileSync(`${r.path}/sys/run/bpm/steady/notes.state`, "not a state");
    symlinkSync("/nonexistent", `${r.path}/sys/run/bpm/dangling`);
    for (const args of [["list"], ["list", "--json"], ["list", "--long"]]) {
      const res = r.bpm(...args);
      assert.equal(res.status, 0, `${args.join(" ")}: ${res.stderr}`);
      assert.equal(res.stderr, "");
    }
    assert.match(r.bpm("list").stdout, new RegExp(`^steady +${pid} +running$`, "m"));
    assert.equal(r.bpm("stop", "steady").status, 0);
  });

  it("never fails while other jobs start and stop", async () => {
    const r = root();
    await started(r, "watched");
    r.job("churn", bashJob("churn", "exec sleep 1000"));
    let stopChurn = false;
    const churn = (async () => {
      let rounds = 0;
      while (!stopChurn) {
        await r.bpmAsync("start", "churn");
        await r.bpmAsync("stop", "churn");
        rounds++;
      }
      return rounds;
    })();
    const failures: string[] = [];
    let lists = 0;
    try {
      for (; lists < 60; lists++) {
        const res = await r.bpmAsync("list");
        if (res.status !== 0 || res.stderr !== "" || !/^watched +\d+ +running$/m.test(res.stdout)) failures.push(`${res.status} ${res.stderr}${res.stdout}`);
      }
    } finally {
      stopChurn = true;
    }
    assert.ok((await churn) > 0);
    assert.deepEqual(failures, [], `${failures.length} of ${lists} lists failed`);
    assert.equal(r.bpm("stop", "watched").status, 0);
  });

  it("leaves nothing behind when a start or stop is killed mid-hand-over, and list still works", async (t) => {
    const r = makeRoot("handover");
    t.after(() => r.cleanup());
    r.job("killed", bashJob("killed", "exec sleep 1000"));
    const env = { ...process.env, BPM_BOSH_ROOT: r.path };
    // TERM at every moment of a start, as systemd sends it to every process in monit's service.
    // From before the hand-over to well after it (a start takes about 120 ms here, more under load).
    for (let delay = 0; delay <= 400; delay += 20) {
      for (const verb of ["start", "stop"]) {
        const c = spawn(BPM, [verb, "killed"], { env, stdio: "ignore" });
        const closed = new Promise((res) => c.on("close", res));
        await new Promise((res) => setTimeout(res, delay));
        c.kill("SIGTERM");
        await closed;
        const list = r.bpm("list");
        assert.equal(list.status, 0, `after a ${verb} killed at ${delay} ms: ${list.stderr}`);
        assert.match(list.stdout, /^killed +(\d+ +running|- +(stopped|failed))$/m);
      }
    }
    const bpmRun = existsSync(`${r.path}/sys/run/bpm`) ? readdirSync(`${r.path}/sys/run/bpm`) : [];
    assert.deepEqual(bpmRun.filter((f) => f !== "killed"), [], "only the job's state directory");
    assert.deepEqual(readdirSync(`${r.path}/sys/run`).filter((d) => d !== "bpm" && d !== "killed"), [], "bpm's state and the job's own run dir only");
    assert.equal(r.bpm("stop", "killed").status, 0);
    assert.match(r.bpm("list").stdout, /^killed +- +stopped$/m);
  });

  it("hands a plan too large for the environment over on a pipe", async () => {
    const r = root();
    // 200 kB of environment: more than the kernel promises for arguments and environment.
    const env = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`BIG${i}`, "x".repeat(4000)]));
    r.job("large", bashJob("large", 'echo "up ${#BIG49}"; exec sleep 1000', `  env: ${JSON.stringify(env)}\n`));
    const res = r.bpm("start", "large");
    assert.equal(res.status, 0, res.stderr);
    await r.waitForLog("large", "up 4000");
    assert.equal(r.bpm("start", "large").status, 0, "already running: nothing done");
    assert.equal(r.bpm("stop", "large").status, 0);
    assert.match(r.bpm("list").stdout, /^large +- +stopped$/m);
  });
});

describe("what a job must not steer", { skip: skipUnlessRoot }, () => {
  const root = useRoot("nosteer");

  it("refuses a job named bpm (or like a BOSH directory) in start, run and validate; list says why", () => {
    const r = root();
    r.job("bpm", bashJob("bpm", "exec sleep 1000"));
    for (const verb of ["start", "run"]) {
      const res = r.bpm(verb, "bpm");
      assert.equal(res.status, 1, verb);
      assert.match(res.stderr, /^Error: job name "bpm" is reserved: ROOT\/data\/bpm and ROOT\/sys\/run\/bpm are bpm's own directories\n$/);
    }
    const v = r.bpm("validate", "bpm");
    assert.equal(v.status, 1);
    assert.match(v.stdout, /bpm\.yml: job name "bpm" is reserved/);
    const list = r.bpm("list");
    assert.equal(list.status, 0);
    assert.match(list.stderr, /^invalid config for bpm: job name "bpm" is reserved/m);
    // Nothing of bpm's own became the job's.
    assert.ok(!existsSync(`${r.path}/data/bpm/tmp`), "no job temp dir inside bpm's own");
    const owner = spawnSync("stat", ["-c", "%u", `${r.path}/sys/run/bpm`], { encoding: "utf8" }).stdout.trim();
    assert.ok(owner === "" || owner === "0", `sys/run/bpm owned by ${owner}`);
    for (const name of ["sys", "jobs", "packages"]) {
      r.job(name, bashJob(name, "exec sleep 1000"));
      assert.match(r.bpm("start", name).stderr, new RegExp(`^Error: job name "${name}" is reserved: ROOT/data/${name} `));
    }
  });

  it("runs the pre_start hook with root's HOME, the system temp dir and a PATH the job cannot write to", async () => {
    const r = root();
    const hook = `${r.path}/jobs/hooked/bin/pre-start`;
    mkdirSync(`${r.path}/jobs/hooked/bin`, { recursive: true });
    writeFileSync(hook, '#!/bin/bash\necho "HOOK HOME=$HOME TMPDIR=$TMPDIR PATH=$PATH KEEP=$KEEP PWD=$PWD"; grep SigIgn /proc/self/status\n', { mode: 0o755 });
    const path = "/var/vcap/data/hooked/bin:/tmp:.:bin:/var/vcap/jobs/hooked/../../data/hooked:/run/lock:/usr/bin:/bin";
    r.job("hooked", bashJob("hooked", "grep SigIgn /proc/self/status; echo up; exec sleep 1000", `  env: {KEEP: kept, PATH: "${path}"}\n  hooks: {pre_start: ${hook}}\n`));
    assert.equal(r.bpm("start", "hooked").status, 0);
    const out = await r.waitForLog("hooked", "up");
    assert.match(out, /^HOOK HOME=\/root TMPDIR=\/tmp PATH=\/usr\/bin:\/bin KEEP=kept PWD=\/$/m);
    // Node ignores SIGPIPE and SIGXFSZ: neither the hook nor the job inherits that.
    assert.deepEqual(out.match(/^SigIgn:.*$/gm), ["SigIgn:\t0000000000000000", "SigIgn:\t0000000000000000"], out);
    assert.equal(r.bpm("stop", "hooked").status, 0);
  });

  it("starts the operator's shell without the job's rc files", () => {
    const r = root();
    r.job("rc", bashJob("rc", "echo up; exec sleep 1000"));
    assert.equal(r.bpm("start", "rc").status, 0);
    // The job plants rc files in its HOME (its data dir, which it can write).
    const home = `${r.path}/data/rc`;
    for (const f of [".bashrc", ".bash_profile", ".profile"]) writeFileSync(`${home}/${f}`, "echo PLANTED-BY-JOB\n");
    writeFileSync(`${home}/.inputrc`, '"\\C-m": "echo PLANTED-KEY\\n"\n');
    const res = spawnSync("python3", [PTY_DRIVER, JSON.stringify([["send", "echo SHELL-UP $HOME\n"], ["expect", "SHELL-UP /"], ["send", "exit 3\n"]]), "--", BPM, "shell", "rc"], {
      env: { ...process.env, BPM_BOSH_ROOT: r.path, TERM: "xterm" }, encoding: "utf8", timeout: 60_000,
    });
    const out = res.stdout.replace(/\r/g, "");
    assert.equal(res.status, 3, out + res.stderr);
    assert.doesNotMatch(out, /PLANTED/);
    assert.match(out, /vcap@[^:]+:\/var\/vcap\/jobs\/rc\$ /, "a plain prompt");
    assert.equal(r.bpm("stop", "rc").status, 0);
  });
});
