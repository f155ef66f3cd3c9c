// Real monit (Debian's package) drives the built bpm the way a BOSH VM does:
// a control file shaped like the ones BOSH renders for bpm jobs, monit as a
// daemon of this test's own, its CLI talking to it over a unix socket.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { alive, bashJob, BPM, eventually, makeRoot, skipUnlessRoot, sleep, type Root } from "./harness.ts";

const JOBS = ["alpha", "beta", "gamma"];

describe("monit driving bpm", { skip: skipUnlessRoot }, () => {
  let root: Root;
  let monit: ChildProcess;
  let rc: string;
  const tag = `monit-test-${process.pid}`;

  /** Host pids whose argv[0] marks them as this test's copy of job. */
  const copies = (job: string) =>
    readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0] === `${tag}-${job}`;
      } catch {
        return false;
      }
    });
  const pidfile = (job: string) => join(root.path, "sys/run/bpm", job, `${job}.pid`);
  const pidOf = (job: string) => (existsSync(pidfile(job)) ? Number(readFileSync(pidfile(job), "utf8")) : null);
  const ctl = (...args: string[]) => spawnSync("monit", ["-c", rc, ...args], { encoding: "utf8", timeout: 30_000 });
  const summary = () => ctl("summary").stdout;
  /** Running as monit and bpm both see it: one copy, its init in the pidfile, monit's status OK. */
  const settled = (job: string) =>
    copies(job).length === 1 && alive(pidOf(job)) && new RegExp(`^ ${job} +OK +Process`, "m").test(summary());
  const state = () => JOBS.map((j) => `${j}: pid ${pidOf(j)} copies ${copies(j).join(",")}`).join("\n") + "\n" + summary() +
    "\n" + readFileSync(join(root.path, "monit/monit.log"), "utf8").split("\n").slice(-15).join("\n");

  before(async () => {
    if (spawnSync("monit", ["-V"]).error) assert.fail("monit is not installed: run `bash .ci/setup`");
    root = makeRoot("monit");
    const dir = join(root.path, "monit");
    mkdirSync(dir);
    // What the bpm job's bin/bpm wrapper does on a BOSH VM, plus this test's root.
    const wrapper = join(root.path, "bin-bpm");
    writeFileSync(wrapper, `#!/bin/sh\nBPM_BOSH_ROOT=${root.path} exec ${BPM} "$@"\n`, { mode: 0o755 });
    for (const job of JOBS) root.job(job, bashJob(job, `exec -a ${tag}-${job} sleep 1000`));
    rc = join(dir, "monitrc");
    writeFileSync(rc, [
      "set daemon 1",
      `set pidfile ${dir}/monit.pid`, `set idfile ${dir}/monit.id`, `set statefile ${dir}/monit.state`, `set logfile ${dir}/monit.log`,
      `set httpd unixsocket ${dir}/monit.sock`, "  allow bpmtest:monitpw",
      ...JOBS.flatMap((job) => [
        `check process ${job} with pidfile ${root.path}/sys/run/bpm/${job}/${job}.pid`,
        `  start program "${wrapper} start ${job}"`,
        `  stop program "${wrapper} stop ${job}"`,
        "  group vcap",
      ]),
    ].join("\n") + "\n");
    chmodSync(rc, 0o600); // monit refuses a control file others can read
    monit = spawn("monit", ["-c", rc, "-I"], { stdio: "ignore" });
  });

  after(async () => {
    if (!root) return;
    ctl("quit");
    await eventually(() => monit.exitCode !== null || monit.signalCode !== null, () => "monit did not quit", 10_000).catch(() => monit.kill("SIGKILL"));
    await root.cleanup();
  });

  it("starts every job through bpm", async () => {
    await eventually(() => JOBS.every(settled), state, 30_000);
  });

  it("starts a new copy after the job's init is killed", async () => {
    const old = pidOf("alpha")!;
    process.kill(old, "SIGKILL");
    await eventually(() => pidOf("alpha") !== old && settled("alpha"), state, 30_000);
    assert.ok(!alive(old));
  });

  it("gives one fresh copy on `monit restart`, the old one gone", async () => {
    const old = pidOf("beta")!;
    const oldCopy = copies("beta");
    assert.equal(ctl("restart", "beta").status, 0);
    await eventually(() => pidOf("beta") !== old && settled("beta"), state, 30_000);
    assert.ok(!alive(old));
    assert.deepEqual(copies("beta").filter((p) => oldCopy.includes(p)), []);
  });

  it("leaves exactly one copy of each job after `monit restart all` twice", async () => {
    const old = JOBS.map(pidOf);
    assert.equal(ctl("restart", "all").status, 0);
    assert.equal(ctl("restart", "all").status, 0);
    await eventually(() => JOBS.every((j, i) => pidOf(j) !== old[i] && settled(j)), state, 60_000);
    // And it stays that way once monit is done with its queue.
    await sleep(3000);
    for (const job of JOBS) {
      assert.equal(copies(job).length, 1, state());
      assert.ok(alive(pidOf(job)), state());
    }
  });

  it("removes process and pidfile on `monit stop`, and monit leaves it stopped", async () => {
    assert.equal(ctl("stop", "gamma").status, 0);
    await eventually(() => copies("gamma").length === 0 && !existsSync(pidfile("gamma")), state, 30_000);
    await sleep(4000); // four of monit's cycles
    assert.equal(copies("gamma").length, 0, state());
    assert.ok(!existsSync(pidfile("gamma")));
    assert.match(spawnSync(BPM, ["list"], { env: { ...process.env, BPM_BOSH_ROOT: root.path }, encoding: "utf8" }).stdout, /gamma +- +stopped/);
    assert.ok(JOBS.filter((j) => j !== "gamma").every(settled), state());
  });
});
