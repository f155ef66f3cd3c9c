// What a job's limits must not do to bpm itself (issues 25 and 26): a CPU
// ceiling must not keep `bpm stop` from ending the job; a memory limit too
// small to start says so in the user's terms; a privileged job on a host
// that cannot give it every capability says which ones it lacks. Through the
// built executable, as root, on this kernel (cgroup v1 here, v2 in the VM
// suite).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { containerId } from "../../src/bosh/paths.ts";
import { CAPABILITIES } from "../../src/config/capabilities.ts";
import { cgroupDirs, cgroupFsRoot, cgroupVersion, jobCgroup } from "../../src/runtime/cgroups.ts";
import { alive, BPM, type Root, skipUnlessRoot, useRoot, eventually } from "./harness.ts";

const fsRoot = cgroupFsRoot();
const v2 = cgroupVersion(fsRoot) === 2;
const dirsOf = (r: Root, job: string) => cgroupDirs(jobCgroup(fsRoot, r.path, containerId(job)));
const procsIn = (dir: string): number[] => {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const tryWrite = (file: string, value: string) => {
  try {
    writeFileSync(file, value);
  } catch {
    // not this kernel's file, or gone
  }
};

/** What a failed stop left (on an older build): lifted, killed and removed by the test itself. */
async function reap(dirs: string[]) {
  for (const d of dirs) {
    tryWrite(join(d, v2 ? "cpu.max" : "cpu.cfs_quota_us"), v2 ? "max" : "-1");
    if (v2) tryWrite(join(d, "cgroup.kill"), "1");
  }
  await eventually(() => {
    for (const d of dirs) for (const pid of procsIn(d)) tryKill(pid);
    return dirs.every((d) => procsIn(d).length === 0);
  }, () => dirs.map((d) => `${d}: ${procsIn(d).length}`).join("\n"));
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // gone already
    }
  }
}
const tryKill = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // exited
  }
};

// The job: it ignores TERM, QUIT and INT and forks idle children
// (300 in the issue), under a 2 % CPU ceiling; every one of them must run in
// the throttled cgroup to exit once killed.
const hog = (children: number) => [
  "$SIG{TERM} = $SIG{QUIT} = $SIG{INT} = 'IGNORE';",
  "$| = 1;",
  `for my $i (1 .. ${children}) { my $p = fork; die "fork: $!" unless defined $p; if ($p == 0) { sleep 1000 while 1; } }`,
  `print "forked ${children}\\n";`,
  "sleep 1000 while 1;",
].join(" ");
const hogJob = (name: string, children: number) => [
  "processes:",
  `- name: ${name}`,
  "  executable: /usr/bin/perl",
  "  args: [-e, " + JSON.stringify(hog(children)) + "]",
  "  shutdown_timeout: 1s",
  "  limits:",
  "    cpu: 0.02",
  "    processes: 1000",
  "",
].join("\n");

describe(`a job's limits do not hold bpm back (cgroup v${v2 ? 2 : 1})`, { skip: skipUnlessRoot }, () => {
  const root = useRoot("stopceiling");
  const leftBehind: string[][] = [];
  const madeFreezers: string[] = [];
  after(async () => {
    for (const dirs of leftBehind) await reap(dirs);
    for (const d of madeFreezers) await reap([d]);
  });

  // 300 children, the job: an older build's fixed 5 s after KILL is far too short in
  // the emulated VM (v2), but on this machine (v1) it stopped them in about 5 s, just inside;
  // 900, as many as the job's `processes: 1000` allows, are outside it here too (v1 only:
  // the VM needs no more, and its minutes are CI's).
  for (const children of v2 ? [300] : [300, 900]) {
    it(`stops a job that ignores TERM, QUIT and INT with ${children} children under a 2% CPU ceiling: exit 0, every process gone`, async () => {
      const r = root();
      const job = `hog${children}`;
      r.job(job, hogJob(job, children));
      const dirs = dirsOf(r, job);
      leftBehind.push(dirs);
      const started = r.bpm("start", job);
      assert.equal(started.status, 0, started.stderr);
      // The ceiling as bpm wrote it; lifted while the job forks (at 2 % of an emulated CPU
      // that alone took up to 8 minutes), then put back as it was for the stop.
      const ceiling = join(jobCgroup(fsRoot, r.path, containerId(job)).cpu, v2 ? "cpu.max" : "cpu.cfs_quota_us");
      const written = readFileSync(ceiling, "utf8").trim();
      assert.equal(written, v2 ? "2000 100000" : "2000");
      writeFileSync(ceiling, v2 ? "max" : "-1");
      await r.waitForLog(job, `forked ${children}`);
      writeFileSync(ceiling, written);
      assert.equal(readFileSync(ceiling, "utf8").trim(), written);
      const pids = [...new Set(dirs.flatMap(procsIn))];
      assert.ok(pids.length >= children + 1, `the job's cgroup holds its perl and ${children} children: ${pids.length}`);

      const stopped = await r.bpmAsync("stop", job);
      assert.equal(stopped.status, 0, `bpm stop: ${stopped.stderr}`);
      assert.deepEqual(pids.filter(alive), [], "every process of the job is gone when stop returns");
      for (const d of dirs) assert.ok(!existsSync(d), `${d} is removed`);
      assert.match(r.bpm("list").stdout, new RegExp(`^${job} +- +stopped$`, "m"));
      const events = readFileSync(join(r.path, `sys/log/${job}/bpm.log`), "utf8");
      assert.match(events, /"message":"bpm\.stop\.forceful-shutdown".*"how":"killed"/);
      assert.match(events, /"message":"bpm\.stop\.complete"/);
    });
  }

  // A v1 freezer holds a killed process until it is thawed: how a process the
  // kernel holds (state D) looks to a stop. The freezer cgroup is the test's own.
  const freezerRoot = join(fsRoot, "freezer");
  const noFreezer = v2 || !existsSync(join(freezerRoot, "cgroup.procs")) ? "needs a cgroup v1 freezer hierarchy (this machine's, not the VM's)" : false;
  it("waits for killed processes the kernel holds as long as it takes, saying every 10 s on stderr what is left, then exits 0", { skip: noFreezer }, async (t) => {
    const r = root();
    r.job("held", "processes:\n- name: held\n  executable: /bin/bash\n  args: [-c, 'trap \"\" TERM QUIT INT; sleep 1000 & echo up; wait; wait']\n  shutdown_timeout: 1s\n");
    const dirs = dirsOf(r, "held");
    leftBehind.push(dirs);
    const frozen = join(freezerRoot, `bpm-test-${process.pid}-held`);
    mkdirSync(frozen);
    // Thawed at the end of the test whatever happened; removed once reap() has emptied it.
    t.after(() => tryWrite(join(frozen, "freezer.state"), "THAWED"));
    madeFreezers.push(frozen);
    assert.equal(r.bpm("start", "held").status, 0);
    await r.waitForLog("held", "up");
    const pids = [...new Set(dirs.flatMap(procsIn))];
    assert.ok(pids.length >= 3, `init, bash and sleep: ${pids}`);
    for (const pid of pids) writeFileSync(join(frozen, "cgroup.procs"), String(pid));
    writeFileSync(join(frozen, "freezer.state"), "FROZEN");
    await eventually(() => readFileSync(join(frozen, "freezer.state"), "utf8").trim() === "FROZEN", () => readFileSync(join(frozen, "freezer.state"), "utf8"));

    const stop = spawn(BPM, ["stop", "held"], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    stop.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((res) => stop.on("close", (code) => res(code)));
    let ended: number | null | undefined;
    void exited.then((code) => (ended = code));
    await eventually(() => /after SIGKILL/.test(stderr) || ended !== undefined, () => stderr);
    assert.equal(ended, undefined, `stop ended while the job's processes were held: ${stderr}`);
    const said = stderr.trim().split("\n");
    assert.equal(said.length, 1, stderr);
    assert.match(said[0]!, new RegExp(`^bpm: 10 s after SIGKILL, ${pids.length} processes of the job still in ${dirs[0]} \\(pid state: .*\\bD\\b.*\\); waiting for them to exit$`));
    assert.ok(pids.every(alive), "held, they are still there");

    writeFileSync(join(frozen, "freezer.state"), "THAWED");
    assert.equal(await exited, 0, stderr);
    assert.deepEqual(pids.filter(alive), []);
    for (const d of dirs) assert.ok(!existsSync(d), `${d} is removed`);
  });

  it("says a start failed because the memory limit (memory: 1B) is too small for the OOM killer to spare the init", () => {
    const r = root();
    r.job("tiny", "processes:\n- name: tiny\n  executable: /bin/true\n  limits:\n    memory: 1B\n");
    leftBehind.push(dirsOf(r, "tiny"));
    const res = r.bpm("start", "tiny");
    assert.equal(res.status, 1, res.stderr);
    const line = res.stderr.trim();
    assert.match(line, /limits\.memory/, line);
    assert.match(line, /\b1B\b/, line);
    assert.match(line, /OOM/, line);
    assert.doesNotMatch(line, /exited before starting the job$/, line);
    assert.match(r.bpm("list").stdout, /^tiny +- +stopped$/m);
    for (const d of dirsOf(r, "tiny")) assert.ok(!existsSync(d), `${d} is removed`);
  });

  it("starts a privileged job with what the host's bounding set allows, and names what it lacks once, in bpm.log and on stderr", async () => {
    const r = root();
    r.job("privlack", "processes:\n- name: privlack\n  executable: /bin/bash\n  args: [-c, 'echo up; exec sleep 1000']\n  unsafe: {privileged: true}\n");
    const bounding = BigInt("0x" + /^CapBnd:\s+(\S+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]);
    const lacking = Object.entries(CAPABILITIES).filter(([, n]) => n <= CAPABILITIES.AUDIT_READ! && !(bounding & (1n << BigInt(n)))).map(([name]) => name);
    const res = r.bpm("start", "privlack");
    assert.equal(res.status, 0, res.stderr);
    await r.waitForLog("privlack", "up");
    const log = readFileSync(join(r.path, "sys/log/privlack/bpm.log"), "utf8");
    const events = log.split("\n").filter((l) => l.includes("capabilities-unavailable"));
    const lines = res.stderr.split("\n").filter(Boolean);
    if (lacking.length === 0) {
      // A host that has them all (the VM): nothing to say.
      assert.deepEqual(events, []);
      assert.deepEqual(lines, []);
    } else {
      assert.equal(events.length, 1, log);
      const event = JSON.parse(events[0]!) as { message: string; level: string; data: { capabilities: string[] } };
      assert.equal(event.message, "bpm.start.capabilities-unavailable");
      assert.deepEqual(event.data.capabilities, lacking);
      assert.equal(lines.length, 1, res.stderr);
      for (const name of lacking) assert.match(lines[0]!, new RegExp(`\\b${name}\\b`));
      assert.match(lines[0]!, /privileged/);
    }
    // Starting a running job again says nothing more.
    const again = r.bpm("start", "privlack");
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stderr, "");
    assert.equal(readFileSync(join(r.path, "sys/log/privlack/bpm.log"), "utf8").split("\n").filter((l) => l.includes("capabilities-unavailable")).length, events.length);
    assert.equal(r.bpm("stop", "privlack").status, 0);
  });
});

