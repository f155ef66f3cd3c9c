// monit as a systemd service drives bpm, as on a stemcell, and systemd
// restarts and stops that service while monit is running `bpm start`: on
// stop and restart systemd sends TERM to every process in the service's
// cgroup, the `bpm start` included. Whatever that start had begun must not
// break the next `bpm list` or start, and one copy of the job must run,
// with its limits. Runs where systemd is pid 1: the VM suite's systemd mode
// (npm run test:vm); skipped elsewhere.
//
// To catch `bpm start` in the middle every time, a gate (fanotify, a
// permission event on executing bpm's helper) holds that start's exec of
// the helper, after bpm has decided and written what it hands over, until
// systemd has killed it.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BPM, bashJob, eventually, makeRoot, skipUnlessSystemd, type Root } from "./harness.ts";

const skip = skipUnlessSystemd() || (spawnSync("monit", ["-V"]).error ? "needs monit: run `bash .ci/setup`" : false);

/** Holds the next exec of one file once armed, until released (or until the holder dies); lets every other exec through.
 * Lines in: "arm", "release"; lines out: "ready", "armed", "held PID", "released". */
const GATE = String.raw`
import ctypes, os, select, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
FAN_CLOEXEC, FAN_CLASS_CONTENT, FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, FAN_ALLOW = 0x1, 0x4, 0x1, 0x40000, 0x1
fan = libc.fanotify_init(FAN_CLOEXEC | FAN_CLASS_CONTENT, os.O_RDONLY | os.O_LARGEFILE)
if fan < 0 or libc.fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, -100, sys.argv[1].encode()) < 0:
    sys.exit("gate: fanotify: " + os.strerror(ctypes.get_errno()))
def allow(fd):
    try:
        os.write(fan, struct.pack("iI", fd, FAN_ALLOW))  # ENOENT once its holder is dead
    except OSError:
        pass
    os.close(fd)
def say(*words):
    print(*words, flush=True)
say("ready")
armed, held = False, None
while True:
    ready = select.select([fan, 0], [], [])[0]
    if fan in ready:
        buf = os.read(fan, 4096)
        while buf:
            length, _, _, _, _, fd, pid = struct.unpack("IBBHQii", buf[:24])
            buf = buf[length:]
            if armed and held is None:
                armed, held = False, fd
                say("held", pid)
            else:
                allow(fd)
    if 0 in ready:
        line = sys.stdin.readline().strip()
        if not line:
            break
        if line == "arm":
            armed = True
            say("armed")
        elif line == "release":
            if held is not None:
                allow(held)
            held = None
            say("released")
`;

class Gate {
  private child: ChildProcessWithoutNullStreams;
  private out = "";
  private ended = false;
  constructor(file: string) {
    this.child = spawn("/usr/bin/python3", ["-c", GATE, file]);
    this.child.stdout.on("data", (d) => (this.out += d));
    this.child.stderr.on("data", (d) => (this.out += d));
    this.child.on("exit", () => (this.ended = true));
  }
  private async said(re: RegExp): Promise<RegExpExecArray> {
    let m: RegExpExecArray | null = null;
    const what = () => `the gate said:\n${this.out}`;
    await eventually(() => (m = re.exec(this.out)) !== null || (this.ended && assert.fail(`the gate ended; ${what()}`)), what, 120_000);
    return m!;
  }
  ready = () => this.said(/^ready$/m);
  async arm() {
    this.child.stdin.write("arm\n");
    await this.said(/^armed$/m);
  }
  /** The pid whose exec is held. */
  async held(): Promise<number> {
    return Number((await this.said(/^held (\d+)$/m))[1]);
  }
  async release() {
    this.out = this.out.replace(/^(armed|held \d+|released)$/gm, "-");
    this.child.stdin.write("release\n");
    await this.said(/^released$/m);
  }
  close() {
    this.child.stdin.end();
  }
}

describe("monit in a systemd service driving bpm, the service restarted and stopped mid-start", { skip }, () => {
  const tag = `sdmonit-${process.pid}`;
  const unit = `bpm-test-monit-${process.pid}.service`;
  const unitFile = `/run/systemd/system/${unit}`;
  const job = "guarded";
  let root: Root;
  let rc: string;
  let gate: Gate | undefined;

  const systemctl = (...args: string[]) => spawnSync("systemctl", ["--no-pager", ...args], { encoding: "utf8", timeout: 180_000 });
  const serviceCgroup = () => systemctl("show", "-p", "ControlGroup", "--value", unit).stdout.trim();
  const lines = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n").map((l) => l.split(":"));
  /** The unified (0::) line: the unit a process is in, on v2 and on the hybrid layout alike. */
  const cgroupOf = (pid: number) => lines(pid).find((f) => f[0] === "0")!.slice(2).join(":");
  const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
  /** The directory of a process's cgroup that holds a controller's files (v1: that controller's hierarchy). */
  const dirOf = (pid: number, controller: string) =>
    v2 ? `/sys/fs/cgroup${cgroupOf(pid)}` : `/sys/fs/cgroup/${controller}${lines(pid).find((f) => f[1]!.split(",").includes(controller))!.slice(2).join(":")}`;
  const copies = () =>
    readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0] === tag;
      } catch {
        return false;
      }
    });
  const pidfile = () => join(root.path, "sys/run/bpm", job, `${job}.pid`);
  const pidOf = () => (existsSync(pidfile()) ? Number(readFileSync(pidfile(), "utf8")) : null);
  const alive = (pid: number | null) => pid !== null && existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  const list = () => root.bpm("list");
  /** What monit and the process table agree on: one copy, its init in the pidfile, monit's status OK. */
  const settled = () =>
    copies().length === 1 && alive(pidOf()) &&
    new RegExp(`^ ${job} +OK +Process`, "m").test(spawnSync("monit", ["-c", rc, "summary"], { encoding: "utf8" }).stdout);
  /** bpm agrees: list works, and shows the one copy running. */
  const assertListed = () => {
    const l = list();
    assert.equal(l.status, 0, l.stderr);
    assert.equal(l.stderr, "");
    assert.match(l.stdout, new RegExp(`^${job} +${pidOf()} +running$`, "m"));
  };
  const state = () => {
    const l = list();
    const monitLog = join(root.path, "monit/monit.log");
    return `pidfile: ${pidOf()}; copies: ${copies().join(",")}\nbpm list (exit ${l.status}):\n${l.stdout}${l.stderr}\n` +
      `systemctl: ${systemctl("is-active", unit).stdout.trim()}\n` +
      (existsSync(monitLog) ? readFileSync(monitLog, "utf8").split("\n").slice(-12).join("\n") : "");
  };
  /** The job's own cgroup, with the limits bpm.yml gave it, outside monit's service. */
  const assertLimits = () => {
    const pid = pidOf()!;
    const cg = cgroupOf(pid);
    assert.ok(!cg.startsWith(serviceCgroup()), `the job runs in ${cg}, inside monit's service`);
    assert.equal(readFileSync(`${dirOf(pid, "memory")}/${v2 ? "memory.max" : "memory.limit_in_bytes"}`, "utf8").trim(), String(64 * 1024 * 1024));
    assert.equal(readFileSync(`${dirOf(pid, "pids")}/pids.max`, "utf8").trim(), "20");
  };

  before(() => {
    root = makeRoot("sdmonit");
    const dir = join(root.path, "monit");
    mkdirSync(dir);
    // What the bpm job's bin/bpm wrapper does on a BOSH VM, plus this test's root.
    const wrapper = join(root.path, "bin-bpm");
    writeFileSync(wrapper, `#!/bin/sh\nBPM_BOSH_ROOT=${root.path} exec ${BPM} "$@"\n`, { mode: 0o755 });
    root.job(job, bashJob(job, `exec -a ${tag} sleep 1000`, "  limits: {memory: 64M, processes: 20}\n"));
    rc = join(dir, "monitrc");
    writeFileSync(rc, [
      "set daemon 1",
      `set pidfile ${dir}/monit.pid`, `set idfile ${dir}/monit.id`, `set statefile ${dir}/monit.state`, `set logfile ${dir}/monit.log`,
      `set httpd unixsocket ${dir}/monit.sock`, "  allow bpmtest:monitpw",
      `check process ${job} with pidfile ${pidfile()}`,
      `  start program "${wrapper} start ${job}"`,
      `  stop program "${wrapper} stop ${job}"`,
      "  group vcap",
    ].join("\n") + "\n");
    chmodSync(rc, 0o600); // monit refuses a control file others can read
    // As a stemcell's monit.service runs it: in the foreground, systemd's defaults for the rest.
    writeFileSync(unitFile, `[Unit]\nDescription=monit for ${root.path}\n[Service]\nExecStart=/usr/bin/monit -c ${rc} -I\n`);
    assert.equal(systemctl("daemon-reload").status, 0);
    const started = systemctl("start", unit);
    assert.equal(started.status, 0, started.stderr);
  });

  after(async () => {
    gate?.close();
    if (!root) return;
    systemctl("stop", unit);
    rmSync(unitFile, { force: true });
    systemctl("daemon-reload");
    await root.cleanup();
  });

  it("starts the job through bpm in a cgroup of bpm's own, with its limits", async () => {
    await eventually(settled, state, 120_000);
    assertListed();
    assertLimits();
    // From now on every start of this test's is held at the helper's exec when the gate is armed.
    const helper = readdirSync(join(root.path, "data/bpm")).find((f) => /^helper-[0-9a-f]{64}$/.test(f));
    assert.ok(helper, "bpm extracted its helper");
    gate = new Gate(join(root.path, "data/bpm", helper));
    await gate.ready();
  });

  /** Kills the job's init and waits until monit's `bpm start` of it is held: a start from inside monit's service. */
  const startHeld = async () => {
    await gate!.arm();
    process.kill(pidOf()!, "SIGKILL");
    const held = await gate!.held();
    assert.equal(cgroupOf(held), serviceCgroup(), "the held start is monit's, in monit's service");
    assert.match(readFileSync(`/proc/${held}/cmdline`, "utf8"), new RegExp(`start\0${job}\0`));
    return held;
  };

  it("`systemctl restart` of monit's service while monit runs `bpm start`: bpm list works, one copy runs with its limits", async () => {
    const held = await startHeld();
    const restarted = systemctl("restart", unit);
    assert.equal(restarted.status, 0, restarted.stderr);
    assert.ok(!alive(held), "systemd's TERM ended the start it interrupted");
    await gate!.release();
    await eventually(settled, state, 120_000);
    assertListed();
    assertLimits();
  });

  it("`systemctl stop` of monit's service while monit runs `bpm start`: bpm list works; started again, one copy runs with its limits", async () => {
    const held = await startHeld();
    const stopped = systemctl("stop", unit);
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.ok(!alive(held));
    await gate!.release();
    const l = list();
    assert.equal(l.status, 0, l.stderr);
    assert.equal(l.stderr, "");
    assert.match(l.stdout, new RegExp(`^${job} +- +(failed|stopped)$`, "m"));
    assert.deepEqual(copies(), []);
    const started = systemctl("start", unit);
    assert.equal(started.status, 0, started.stderr);
    await eventually(settled, state, 120_000);
    assertListed();
    assertLimits();
  });
});
