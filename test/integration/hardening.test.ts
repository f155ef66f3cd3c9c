// The security surface seen from inside jobs: the seccomp filter (against
// the same calls made on the host as a control), real servers under it,
// exact capability sets, and shared volumes between jobs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { processConfig } from "../../src/lifecycle/config.ts";
import { jobContext } from "../../src/lifecycle/job.ts";
import { start } from "../../src/lifecycle/start.ts";
import { stop } from "../../src/lifecycle/stop.ts";
import { hostArch } from "../../src/plan/seccomp.ts";
import { setHelperBytes } from "../../src/runtime/helper.ts";
import { syscallTable } from "../../src/plan/syscalls.ts";
import { bashJob, skipUnlessRoot, sleep, useRoot } from "./harness.ts";

// Each call made with ctypes; prints NAME=0 on success, NAME=<errno name> on failure.
const PROBE = `
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
nr = json.loads(os.environ["SYSCALLS"])
def call(name, *args):
    n = nr[name] if isinstance(name, str) else name
    r = libc.syscall(ctypes.c_long(n), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    if r == 0 and name == "clone":
        os._exit(0)  # a child made by a clone that should not have worked
    e = ctypes.get_errno()
    if r > 0 and name == "clone":
        os.waitpid(r, 0)
    label = name if isinstance(name, str) else "x32_getpid"
    print("%s=%s" % (label, "0" if r >= 0 else errno.errorcode.get(e, e)), flush=True)
call("unshare", 0x20000)                       # CLONE_NEWNS
call("mount", b"none", b"/tmp", b"tmpfs", 0, None)
call("keyctl", 0, -3, 1)                       # KEYCTL_GET_KEYRING_ID of the session keyring
call("bpf", 0, None, 0)
call("kexec_load", 0, 0, None, 0)
call("init_module", None, 0, b"")
call("swapon", b"/nonexistent", 0)
call("reboot", 0, 0, 0, None)                  # wrong magic: can never reboot
call("clone", 0x10000000 | 17, 0, None, None, 0)  # CLONE_NEWUSER | SIGCHLD
call("clone3", None, 0)
call("personality", 0x0040000)                 # ADDR_NO_RANDOMIZE
if "arch_prctl" in nr:
    call(0x40000000 | nr["getpid"])            # the x32 ABI
# Last: once traced, any signal would stop us until our parent (not a tracer) let go.
call("ptrace", 0, 0, 0, 0)                     # PTRACE_TRACEME: allowed to anyone without a filter
print("DONE=1", flush=True)
`;

const parse = (out: string) => Object.fromEntries(out.split("\n").filter((l) => l.includes("=")).map((l) => l.split("=") as [string, string]));

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

// Until the server answers: a Node.js server starting under emulation, on a loaded machine, can take a minute.
async function fetchText(url: string, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await (await fetch(url)).text();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

describe("seccomp seen from inside a job", { skip: skipUnlessRoot }, () => {
  const root = useRoot("seccomp");
  const syscalls = JSON.stringify(syscallTable(hostArch()));

  it("refuses namespaces, mounts, tracing, keys, BPF, kexec, modules, swap, reboot and namespace clones", async () => {
    const r = root();
    r.job("probe", `processes:\n- name: probe\n  executable: /usr/bin/python3\n  args: [/var/vcap/jobs/probe/probe.py]\n  env: {SYSCALLS: '${syscalls}'}\n`);
    writeFileSync(join(r.path, "jobs/probe/probe.py"), PROBE);
    const inside = r.bpm("run", "probe");
    assert.equal(inside.status, 0, inside.stderr);
    const got = parse(inside.stdout);
    for (const name of ["unshare", "mount", "ptrace", "keyctl", "bpf", "kexec_load", "init_module", "swapon", "reboot", "clone", "personality"]) {
      assert.equal(got[name], "EPERM", `${name} inside: ${inside.stdout}`);
    }
    assert.equal(got.clone3, "ENOSYS", "clone3 answers ENOSYS so libcs fall back to clone");
    if (hostArch() === "x86_64") assert.equal(got.x32_getpid, "EPERM");

    // Control: the same calls on the host as vcap with no_new_privs but no filter.
    const host = spawnSync("setpriv", ["--reuid=vcap", "--regid=vcap", "--clear-groups", "--no-new-privs", "/usr/bin/python3", join(r.path, "jobs/probe/probe.py")],
      { env: { SYSCALLS: syscalls, PATH: "/usr/bin:/bin" }, encoding: "utf8" });
    const control = parse(host.stdout);
    assert.equal(control.DONE, "1", host.stderr);
    assert.equal(control.ptrace, "0", `without the filter PTRACE_TRACEME works: ${host.stdout}${host.stderr}`);
    assert.equal(control.keyctl, "0", "without the filter a keyring id is returned");
    assert.equal(control.personality, "0", "without the filter any persona may be set");
    assert.notEqual(control.clone3, "ENOSYS");
    if (Number(readFileSync("/proc/sys/user/max_user_namespaces", "utf8")) > 0) {
      assert.equal(control.clone, "0", "without the filter an unprivileged user namespace can be cloned");
    }
  });

  it("runs bash, coreutils, python3 and a Node.js HTTP server the host can reach", async () => {
    const r = root();
    const nodePort = await freePort();
    const pyPort = await freePort();
    assert.ok(existsSync("/usr/bin/node"), "the host's Node.js (for the job) is at /usr/bin/node");
    r.job("servers", [
      "processes:",
      "- name: node",
      "  executable: /usr/bin/node",
      `  args: [-e, "require('http').createServer((q, s) => s.end('node says ' + process.getuid())).listen(${nodePort}, '127.0.0.1')"]`,
      "- name: python",
      "  executable: /usr/bin/python3",
      `  args: [-m, http.server, "${pyPort}", --bind, 127.0.0.1, --directory, /var/vcap/jobs/servers/www]`,
      "- name: shell",
      "  executable: /bin/bash",
      "  args: [-c, 'ls /var/vcap/jobs | sort | tr a-z A-Z; seq 3 | paste -sd+; expr 1 + 2; date +%Y >/dev/null && echo date-ok']",
      "",
    ].join("\n"));
    spawnSync("mkdir", ["-p", join(r.path, "jobs/servers/www")]);
    writeFileSync(join(r.path, "jobs/servers/www/index.html"), "python serves files\n");
    assert.equal(r.bpm("start", "servers", "-p", "node").status, 0);
    assert.equal(r.bpm("start", "servers", "-p", "python").status, 0);
    const vcap = spawnSync("id", ["-u", "vcap"], { encoding: "utf8" }).stdout.trim();
    assert.equal(await fetchText(`http://127.0.0.1:${nodePort}/`), `node says ${vcap}`);
    assert.equal(await fetchText(`http://127.0.0.1:${pyPort}/`), "python serves files\n");
    const sh = r.bpm("run", "servers", "-p", "shell");
    assert.equal(sh.status, 0, sh.stderr);
    assert.equal(sh.stdout, "SERVERS\n1+2+3\n3\ndate-ok\n");
    assert.equal(r.bpm("stop", "servers", "-p", "node").status, 0);
    assert.equal(r.bpm("stop", "servers", "-p", "python").status, 0);
  });
});

describe("capabilities seen from inside a job", { skip: skipUnlessRoot }, () => {
  const root = useRoot("caps");
  const bind80 = "import socket, errno\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ntry:\n    s.bind(('127.0.0.1', 80)); print('BIND=ok')\nexcept OSError as e:\n    print('BIND=' + errno.errorcode[e.errno])\n";

  it("gives exactly the listed set in every set, kept across exec as vcap, and NET_BIND_SERVICE binds port 80", () => {
    const start = Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8"));
    assert.ok(start > 80, `this host lets anyone bind port 80 (ip_unprivileged_port_start=${start}): the check would prove nothing`);
    const r = root();
    writeFileSync(join(r.path, "bind80.py"), bind80);
    const script = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | tr -d '\\t' | tr : =; echo UID=$(id -u); exec /usr/bin/python3 /var/vcap/jobs/JOB/bind80.py";
    r.job("withcap", bashJob("withcap", script.replace("JOB", "withcap"), "  capabilities: [NET_BIND_SERVICE]\n"));
    r.job("without", bashJob("without", script.replace("JOB", "without")));
    writeFileSync(join(r.path, "jobs/withcap/bind80.py"), bind80);
    writeFileSync(join(r.path, "jobs/without/bind80.py"), bind80);

    const w = parse(r.bpm("run", "withcap").stdout);
    const mask = (1n << 10n).toString(16).padStart(16, "0"); // CAP_NET_BIND_SERVICE = 10
    for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.equal(w[set], mask, `${set} with NET_BIND_SERVICE`);
    assert.notEqual(w.UID, "0");
    assert.equal(w.BIND, "ok");

    const n = parse(r.bpm("run", "without").stdout);
    for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.equal(n[set], "0".repeat(16), `${set} without`);
    assert.equal(n.BIND, "EACCES");
  });

  it("gives a privileged job the original's set, capabilities 0-37, as far as the host allows, and no nosuid mount, its root included", async () => {
    const r = root();
    r.job("privcaps", bashJob("privcaps", [
      "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status | tr -d '\\t' | tr : =",
      // The root's options, then every mount that is nosuid, by its path.
      "echo ROOT=$(awk '$5 == \"/\" {print $6}' /proc/self/mountinfo)",
      "awk '$6 ~ /nosuid/ {print \"NOSUID=\" $5}' /proc/self/mountinfo",
      "echo MOUNTS=$(wc -l < /proc/self/mountinfo)",
      // pid 1 is the container's init, root too, as the original's own suite reads it:
      // once the start is done (the init drops what the job may not have right after forking it).
      "while [ ! -e /tmp/started ]; do sleep 0.05; done",
      "echo INIT$(grep -E '^CapEff' /proc/1/status | tr -d '\\t' | tr : =)",
      "echo DONE; exec sleep 1000",
    ].join("; "), "  unsafe: {privileged: true}\n"));
    assert.equal(r.bpm("start", "privcaps").status, 0);
    writeFileSync(join(r.path, "data/privcaps/tmp/started"), "");
    const log = await r.waitForLog("privcaps", "DONE");
    const seen = parse(log);
    const hostBnd = BigInt("0x" + /^CapBnd:\s+(\S+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]);
    // On a BOSH VM (every capability up to 37 allowed): 0000003fffffffff, as the original's.
    const expected = (((1n << 38n) - 1n) & hostBnd).toString(16).padStart(16, "0");
    for (const set of ["CapPrm", "CapEff", "CapBnd"]) assert.equal(seen[set], expected, `${set}; the host's bounding set is ${hostBnd.toString(16)}`);
    assert.equal(seen.INITCapEff, expected, "the init's, seen inside as pid 1");
    const init = readFileSync(`/proc/${Number(r.bpm("pid", "privcaps").stdout)}/status`, "utf8");
    for (const set of ["CapPrm", "CapEff", "CapBnd"]) assert.equal(new RegExp(`^${set}:\\s+(\\S+)`, "m").exec(init)![1], expected, `the init's ${set}, from the host`);
    assert.match(seen.ROOT!, /^ro,/);
    assert.ok(Number(seen.MOUNTS) > 10, log);
    assert.doesNotMatch(log, /^NOSUID=/m, "mounts a privileged job sees as nosuid");
    assert.equal(r.bpm("stop", "privcaps").status, 0);
  });

  it("refuses an unknown capability name before starting", () => {
    const r = root();
    r.job("badcap", bashJob("badcap", "true", "  capabilities: [NET_BIND_SERVICE, FLY]\n"));
    const res = r.bpm("start", "badcap");
    assert.equal(res.status, 1);
    assert.match(res.stderr, /processes\[0\]\.capabilities\[1\]: unknown capability "FLY"/);
  });
});

describe("shared volumes", { skip: skipUnlessRoot }, () => {
  const root = useRoot("shared");

  it("shows a mount made under a shared volume in one job to another job that shares it", async (t) => {
    const r = root();
    const vol = "/var/vcap/data/shared-vol";
    const host = join(r.path, "data/shared-vol");
    t.after(() => spawnSync("umount", ["-R", host]));
    r.job("maker", bashJob("maker", `mkdir -p ${vol}/sub && mount -t tmpfs -o size=1m made-by-maker ${vol}/sub && echo hello > ${vol}/sub/note && echo MOUNTED; exec sleep 1000`,
      `  unsafe: {privileged: true}\n  additional_volumes: [{path: ${vol}, writable: true, shared: true}]\n`));
    // Both watchers run before the mount exists: only the one that shares the
    // volume sees it appear. They look until it does, or until the test says
    // stop (a file in the volume itself, which both see): no clock to outrun.
    const watch = (what: string) => `echo READY; until [ -f ${vol}/sub/note ] || [ -f ${vol}/stop-looking ]; do sleep 0.05; done; cat ${vol}/sub/note 2>/dev/null || echo NOT-SEEN; grep -c made-by-maker /proc/self/mountinfo; exec sleep 1000`;
    r.job("seer", bashJob("seer", watch("seer"), `  additional_volumes: [{path: ${vol}, shared: true}]\n`));
    r.job("private", bashJob("private", watch("private"), `  additional_volumes: [{path: ${vol}}]\n`));
    for (const j of ["seer", "private"]) {
      assert.equal(r.bpm("start", j).status, 0);
      await r.waitForLog(j, "READY");
    }
    assert.equal(r.bpm("start", "maker").status, 0);
    await r.waitForLog("maker", "MOUNTED");
    assert.equal(await r.waitForLog("seer", /READY\n.*\n\d+\n/, 120_000), "READY\nhello\n1\n");
    // The seer has seen it: had it reached the private one, it would have by now.
    writeFileSync(join(host, "stop-looking"), "");
    assert.equal(await r.waitForLog("private", /READY\n.*\n\d+\n/, 120_000), "READY\nNOT-SEEN\n0\n");
    for (const j of ["seer", "private"]) assert.equal(r.bpm("stop", j).status, 0);
    assert.equal(r.bpm("stop", "maker").status, 0);
  });
});

describe("host mounts over many restarts", { skip: skipUnlessRoot }, () => {
  const root = useRoot("restarts");

  // 1000 by default; the VM suite (ten times slower under emulation) asks for fewer.
  const cycles = Number(process.env.BPM_RESTART_CYCLES || 1000);
  it(`leaves the host mount table as after the first start, after ${cycles} starts and stops with a shared volume`, async (t) => {
    const r = root();
    const host = join(r.path, "data/restart-vol");
    t.after(() => spawnSync("umount", ["-R", host]));
    // In-process, through the same start and stop the CLI runs: 1000 Node boots would dwarf what is tested.
    process.env.BPM_BOSH_ROOT = r.path;
    setHelperBytes(readFileSync(join(import.meta.dirname, "../../dist/helper/bpm-helper")));
    const ours = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.split(" ")[4]?.startsWith(r.path));
    const jobs = ["ra", "rb", "rc", "rd"];
    for (const j of jobs) r.job(j, bashJob(j, "exec sleep 1000", "  additional_volumes: [{path: /var/vcap/data/restart-vol, writable: true, shared: true}]\n"));
    const cycle = async (job: string) => {
      const ctx = jobContext(job, undefined);
      assert.equal(await start(ctx, (await processConfig(ctx, "start")).proc, "wait"), 0);
      assert.equal(await stop(ctx, "wait"), 0);
    };
    // The first starts race for the fresh volume (separate bpm processes): the lock lets one bind it.
    const first = await Promise.all(jobs.map((j) => r.bpmAsync("start", j)));
    for (const f of first) assert.equal(f.status, 0, f.stderr);
    for (const j of jobs) assert.equal(r.bpm("stop", j).status, 0);
    const afterFirst = ours();
    assert.equal(afterFirst.length, 1, `one host mount, the shared volume's: ${afterFirst.join("\n")}`);
    // The rest, four jobs at a time (all sharing the volume).
    await Promise.all(jobs.map(async (j) => {
      for (let i = 1; i < cycles / jobs.length; i++) await cycle(j);
    }));
    assert.deepEqual(ours(), afterFirst);
    for (const j of jobs) assert.ok(!existsSync(join(r.path, "sys/run/bpm", j, `${j}.pid`)));
  });
});
