// What a job can do to bpm itself: paths it can write that bpm then uses as
// root (a volume under another job's data, its log directory), played as an
// attacker from inside a job against the built executable.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { containerId } from "../../src/bosh/paths.ts";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../../src/runtime/cgroups.ts";
import { BPM, bashJob, eventually, skipUnlessRoot, useRoot } from "./harness.ts";

/** Job x swaps a real directory `a` (holding `a/b`) with a symlink `s` to a
 * host directory, as fast as it can, with renameat2(RENAME_EXCHANGE); while a
 * file `pause` exists it holds still with `a` the directory. */
const SWAPPER = (hostDir: string) => `
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
base = "/var/vcap/data/x/race"
os.makedirs(base + "/a/b", exist_ok=True)
if not os.path.lexists(base + "/s"):
    os.symlink(${JSON.stringify(hostDir)}, base + "/s")
print("SWAPPING", flush=True)
a, s = (base + "/a").encode(), (base + "/s").encode()
pauses = 0
while True:
    for _ in range(64):
        libc.renameat2(-100, a, -100, s, 2)
    if os.path.exists(base + "/pause"):
        if os.path.islink(base + "/a"):
            libc.renameat2(-100, a, -100, s, 2)
        pauses += 1
        print("PAUSED %d" % pauses, flush=True)
        while os.path.exists(base + "/pause"):
            time.sleep(0.01)
        print("SWAPPING AGAIN %d" % pauses, flush=True)
`;

const ROUNDS = Number(process.env.BPM_RACE_ROUNDS || 50);

describe("a job racing bpm for a path it uses as root", { skip: skipUnlessRoot }, () => {
  const root = useRoot("race");

  it("cannot make a start chown or mount a host directory by swapping a volume's parent for a symlink", async (t) => {
    const r = root();
    const hostDir = `/srv/bpm-race-${process.pid}`;
    t.after(() => rmSync(hostDir, { recursive: true, force: true }));
    mkdirSync(`${hostDir}/b`, { recursive: true });
    chmodSync(`${hostDir}/b`, 0o755);
    writeFileSync(`${hostDir}/b/host-marker`, "host\n");
    r.job("x", `processes:\n- name: x\n  executable: /usr/bin/python3\n  args: [-c, ${JSON.stringify(SWAPPER(hostDir))}]\n  ephemeral_disk: true\n`);
    r.job("y", bashJob("y", "[ -e /var/vcap/data/x/race/a/b/host-marker ] && echo SAW-HOST-DIR; echo UP; exec sleep 1000",
      "  additional_volumes: [{path: /var/vcap/data/x/race/a/b, writable: true}]\n"));
    assert.equal(r.bpm("start", "x").status, 0);
    await r.waitForLog("x", "SWAPPING");

    // Every fourth start runs while x holds still: the volume itself works,
    // so the refusals in the other rounds are the race being caught.
    const pause = `${r.path}/data/x/race/pause`;
    let calm = 0;
    const refusals = new Set<string>();
    for (let i = 0; i < ROUNDS; i++) {
      const still = i % 4 === 3;
      if (still) {
        writeFileSync(pause, "");
        await r.waitForLog("x", `PAUSED ${++calm}\n`);
      }
      const s = r.bpm("start", "y");
      if (s.status === 0) {
        await r.waitForLog("y", "UP");
      } else {
        assert.ok(!still, `round ${i}: a start while nothing raced it failed (exit ${s.status}, signal ${s.signal}${s.error ? `, ${s.error.message}` : ""}): ${s.stderr}\nbpm.log:\n${readFileSync(`${r.path}/sys/log/y/bpm.log`, "utf8").split("\n").slice(-6).join("\n")}`);
        refusals.add(s.stderr.replace(/\/var\/tmp\/bpm-tests\/[^/]+/g, "ROOT"));
      }
      if (still) {
        rmSync(pause);
        await r.waitForLog("x", `SWAPPING AGAIN ${calm}\n`);
      }
      const st = statSync(`${hostDir}/b`);
      assert.equal(st.uid, 0, `round ${i}: the host directory was chowned to the job`);
      assert.equal(st.mode & 0o7777, 0o755, `round ${i}: the host directory's mode was changed`);
      assert.ok(!r.log("y").includes("SAW-HOST-DIR"), `round ${i}: y was given the host directory as its volume`);
      assert.equal(r.bpm("stop", "y").status, 0);
    }
    // Every refusal names the symlink it met; and the race was really run.
    for (const why of refusals) assert.match(why, /^Error: failed to start job-process: .*is a symlink/, why);
    assert.ok(calm > 0 && refusals.size > 0, `${calm} calm rounds of ${ROUNDS}; refused: ${[...refusals].join(" | ")}`);
    assert.equal(r.bpm("stop", "x").status, 0);
  });
});

describe("bpm logs reading what a job left in its log directory", { skip: skipUnlessRoot }, () => {
  const root = useRoot("logread");
  const logDir = (job: string) => join(root().path, "sys", "log", job);

  it("refuses a symlink at the log path instead of printing its target", () => {
    mkdirSync(logDir("planter"), { recursive: true });
    symlinkSync("/etc/shadow", join(logDir("planter"), "planter.stderr.log"));
    writeFileSync(join(logDir("planter"), "planter.stdout.log"), "fine\n");
    const r = root().bpm("logs", "planter", "-e");
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `Error: refusing to open symlink at ${join(logDir("planter"), "planter.stderr.log")}\n`);
    const all = root().bpm("logs", "planter", "-a");
    assert.equal(all.status, 1);
    assert.doesNotMatch(all.stdout, /root:/);
  });

  it("refuses a FIFO at the log path at once instead of blocking on it", () => {
    mkdirSync(logDir("piper"), { recursive: true });
    spawnSync("mkfifo", [join(logDir("piper"), "piper.stdout.log")]);
    const r = root().bpm("logs", "piper");
    assert.notEqual(r.signal, "SIGTERM", "bpm logs blocked on the FIFO");
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `Error: refusing to read ${join(logDir("piper"), "piper.stdout.log")}: not a regular file\n`);
  });

  // 1 GiB; the VM suite, ten times slower under emulation, asks for less.
  const hugeMb = Number(process.env.BPM_HUGE_LOG_MB || 1024);
  it(`tails a ${hugeMb} MiB log with no newline in bounded time, cut to its end`, async () => {
    mkdirSync(logDir("huge"), { recursive: true });
    const file = join(logDir("huge"), "huge.stdout.log");
    const fd = openSync(file, "w");
    ftruncateSync(fd, hugeMb * 1024 * 1024); // sparse: no disk used
    closeSync(fd);
    writeFileSync(file, "the end", { flag: "a" });
    const child = spawn(BPM, ["logs", "huge", "-n", "3"], { env: { ...process.env, BPM_BOSH_ROOT: root().path }, stdio: ["ignore", "pipe", "inherit"] });
    let bytes = 0;
    let tail = Buffer.alloc(0);
    child.stdout.on("data", (d: Buffer) => {
      bytes += d.length;
      tail = Buffer.concat([tail, d]).subarray(-7);
    });
    // The quadratic scan this replaced took minutes at 64 MiB; a pipe in the VM suite is slow.
    const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((res) => child.on("close", (c, s) => res([c, s])));
    clearTimeout(killer);
    assert.equal(signal, null, "bpm logs did not finish within 120 s");
    assert.equal(code, 0);
    // Too long a line to print whole: its end after the cut mark (test/integration/logs-bounds.test.ts).
    assert.equal(bytes, "[line cut] the end".length);
    assert.equal(tail.toString(), "the end");
  });

  it("refuses a symlink that replaces a followed log on rotation", async () => {
    mkdirSync(logDir("rotor"), { recursive: true });
    const file = join(logDir("rotor"), "rotor.stdout.log");
    writeFileSync(file, "one\n");
    const f = spawn(BPM, ["logs", "rotor", "-f"], { env: { ...process.env, BPM_BOSH_ROOT: root().path } });
    let out = "";
    let err = "";
    f.stdout.on("data", (d) => (out += d));
    f.stderr.on("data", (d) => (err += d));
    await eventually(() => out.includes("one"), () => out);
    unlinkSync(file);
    symlinkSync("/etc/shadow", file);
    const code = await new Promise((res) => f.on("close", res));
    assert.equal(code, 1);
    assert.equal(err, `Error: refusing to open symlink at ${file}\n`);
    assert.doesNotMatch(out, /root:/);
  });
});

describe("a symlink planted at bpm.log", { skip: skipUnlessRoot }, () => {
  const root = useRoot("bpmlog");

  it("fails start and run loudly, lets stop go ahead, and writes nothing through it", () => {
    const r = root();
    r.job("loud", bashJob("loud", "exec sleep 1000"));
    const victim = join(r.path, "victim");
    writeFileSync(victim, "untouched\n");
    chmodSync(victim, 0o640);
    mkdirSync(join(r.path, "sys", "log", "loud"), { recursive: true });
    const link = join(r.path, "sys", "log", "loud", "bpm.log");
    symlinkSync(victim, link);
    for (const cmd of ["start", "run"]) {
      const res = r.bpm(cmd, "loud");
      assert.equal(res.status, 1, cmd);
      assert.equal(res.stderr, `Error: refusing to open symlink at ${link}\n`, cmd);
    }
    // A stop must stop whatever the job did to its log dir (stop-always.test.ts): it says so and skips bpm.log.
    const stop = r.bpm("stop", "loud");
    assert.equal(stop.status, 0);
    assert.equal(stop.stderr, `bpm.log not written: refusing to open symlink at ${link}\n`);
    assert.equal(readFileSync(victim, "utf8"), "untouched\n");
    const st = statSync(victim);
    assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o640]);
    assert.match(r.bpm("list").stdout, /loud +- +stopped/);
    assert.ok(!existsSync(join(r.path, "sys", "run", "bpm", "loud", "loud.pid")));
  });
});

describe("a symlink a job plants at its bpm.log while it runs in the foreground", { skip: skipUnlessRoot }, () => {
  const root = useRoot("bpmlogrun");

  it("leaves run with the job's own status, says once that bpm.log was not written, and writes nothing through it", () => {
    const r = root();
    const victim = join(r.path, "victim");
    writeFileSync(victim, "untouched\n");
    // The job's log dir is its own: it swaps bpm.log for a symlink to a host file, then exits 3.
    r.job("planter", bashJob("planter", `rm -f /var/vcap/sys/log/planter/bpm.log; ln -s ${victim} /var/vcap/sys/log/planter/bpm.log; exit 3`));
    const res = r.bpm("run", "planter");
    assert.equal(res.status, 3, res.stderr);
    const link = join(r.path, "sys", "log", "planter", "bpm.log");
    assert.match(res.stderr, new RegExp(`^bpm\\.log not written: refusing to open symlink at ${link}$`, "m"));
    assert.equal(res.stderr.match(/bpm\.log not written/g)?.length, 1, res.stderr);
    assert.equal(readFileSync(victim, "utf8"), "untouched\n");
  });
});

describe("a job that fills the disk it shares with bpm", { skip: skipUnlessRoot }, () => {
  const root = useRoot("fulldisk");

  it("makes the next start fail cleanly: a clear error, no process, no state", async (t) => {
    const r = root();
    // The whole BOSH root on an 8 MB tmpfs: on a BOSH VM, sys/run and the jobs' data share the ephemeral disk.
    spawnSync("mount", ["-t", "tmpfs", "-o", "size=8m", "bpm-test-full", r.path]);
    // Its jobs' state lives on the tmpfs: stop them before it goes, whatever the test saw.
    t.after(() => {
      for (const j of ["victim", "filler"]) r.bpm("stop", j);
      spawnSync("umount", ["-l", r.path]);
    });
    for (const d of ["packages", "store"]) mkdirSync(join(r.path, d), { recursive: true });
    // The filler fills the disk once its own start is recorded (the test says go), not while it is.
    r.job("filler", bashJob("filler", "until [ -e /var/vcap/data/filler/go ]; do sleep 0.05; done; dd if=/dev/zero of=/var/vcap/data/filler/fill bs=64k 2>/dev/null; exec sleep 1000", "  ephemeral_disk: true\n"));
    r.job("victim", bashJob("victim", "echo VICTIM-RAN; exec sleep 1000"));
    const filler = r.bpm("start", "filler");
    assert.equal(filler.status, 0, filler.stderr);
    writeFileSync(join(r.path, "data", "filler", "go"), "");
    // Its own log is on the full disk too: watch the disk instead.
    await eventually(() => statfsSync(r.path).bavail === 0, () => `${statfsSync(r.path).bavail} blocks free`);

    const res = r.bpm("start", "victim");
    assert.equal(res.status, 1);
    assert.match(res.stderr, /^Error: failed to start job-process: .*no space left on device\n$/i);
    assert.match(r.bpm("list").stdout, /victim +- +stopped/);
    const runDir = join(r.path, "sys", "run", "bpm", "victim");
    const left = existsSync(runDir) ? readdirSync(runDir).filter((f) => !/\.(exit|root)$/.test(f)) : [];
    assert.deepEqual(left, [], "no pidfile, state or temporary file left");
    // Where this host puts the job's cgroup (bpm/ by hand, or a systemd scope): none of it is left.
    assert.deepEqual(cgroupDirs(jobCgroup(cgroupFsRoot(), r.path, containerId("victim"))).filter(existsSync), [], "no cgroup left");

    // Room again: the same start works.
    rmSync(join(r.path, "data", "filler", "fill"));
    assert.equal(r.bpm("start", "victim").status, 0, r.bpm("logs", "victim", "-e").stdout);
    assert.equal(r.bpm("stop", "victim").status, 0);
    assert.equal(r.bpm("stop", "filler").status, 0);
  });
});
