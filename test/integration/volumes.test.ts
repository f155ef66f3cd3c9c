// Disks, volumes, working directory and the unsafe options, observed from
// inside jobs and checked on the host.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { bashJob, eventually, makeRoot, skipUnlessRoot, sleep, useRoot } from "./harness.ts";

const facts = (log: string) => new Set(log.split("\n").filter(Boolean));

describe("disks and volumes", { skip: skipUnlessRoot }, () => {
  const root = useRoot("volumes");

  it("mounts data, store and volumes with their options, and the configured workdir", async (t) => {
    const r = root();
    mkdirSync(`${r.path}/data/premade`, { recursive: true });
    chmodSync(`${r.path}/data/premade`, 0o777);
    // Unrestricted volumes under a path bpm mounts (this root is under /var/tmp) are dropped: use /srv.
    const extra = `/srv/bpm-test-${process.pid}`;
    t.after(() => rmSync(extra, { recursive: true, force: true }));
    mkdirSync(extra, { recursive: true });
    writeFileSync(`${extra}/a.txt`, "from-a");
    writeFileSync(`${extra}/b.txt`, "from-b");
    const script = String.raw`
w() { echo x > "$1/f" 2>/dev/null && echo "$2=yes" || echo "$2=no"; }
w /var/vcap/data/vol DATA_RW; w /var/vcap/store/vol STORE_RW
w /var/vcap/data/rw VOL_RW; w /var/vcap/data/ro VOL_RO; w /var/vcap/data/premade PREMADE
cp /bin/true /var/vcap/data/rw/t && { /var/vcap/data/rw/t 2>/dev/null && echo NOEXEC_RAN=yes || echo NOEXEC_RAN=no; }
cp /bin/true /var/vcap/data/exec/t && { /var/vcap/data/exec/t && echo EXEC_RAN=yes || echo EXEC_RAN=no; }
echo "GLOB=$(cat ${extra}/a.txt ${extra}/b.txt)"
echo "GLOB_RO=$( (echo x > ${extra}/a.txt) 2>/dev/null && echo no || echo yes)"
echo "PWD=$(pwd)"
echo DONE; exec sleep 1000`;
    r.job("vol", bashJob("vol", script, `  ephemeral_disk: true
  persistent_disk: true
  workdir: /var/vcap/data/vol
  additional_volumes:
  - {path: /var/vcap/data/rw, writable: true}
  - {path: /var/vcap/data/ro}
  - {path: /var/vcap/data/exec, writable: true, allow_executions: true}
  - {path: /var/vcap/data/premade, writable: true, mount_only: true}
  unsafe:
    unrestricted_volumes:
    - {path: ${extra}/*.txt}
`));
    assert.equal(r.bpm("start", "vol").status, 0, r.log("vol", "vol", "stderr"));
    const seen = facts(await r.waitForLog("vol", "DONE"));
    for (const f of ["DATA_RW=yes", "STORE_RW=yes", "VOL_RW=yes", "VOL_RO=no", "PREMADE=yes", "NOEXEC_RAN=no", "EXEC_RAN=yes", "GLOB=from-afrom-b", "GLOB_RO=yes", "PWD=/var/vcap/data/vol"]) {
      assert.ok(seen.has(f), `expected ${f}; saw ${[...seen].join(" | ")}`);
    }
    assert.equal(readFileSync(`${r.path}/store/vol/f`, "utf8"), "x\n");
    const uid = Number(execFileSync("id", ["-u", "vcap"], { encoding: "utf8" }));
    const made = statSync(`${r.path}/data/rw`);
    assert.equal(made.uid, uid);
    assert.equal(made.mode & 0o777, 0o700);
    assert.equal(statSync(`${r.path}/data/premade`).uid, 0, "mount_only leaves the host directory alone");
    assert.equal(statSync(`${r.path}/data/premade`).mode & 0o777, 0o777);
    assert.equal(r.bpm("stop", "vol").status, 0);
  });

  it("binds a single file as a volume: read-only unless writable, a socket too", async () => {
    const r = root();
    const dir = `${r.path}/data/files`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/config.txt`, "host-config\n");
    writeFileSync(`${dir}/out.txt`, "");
    execFileSync("python3", ["-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(`${dir}/sock`)})`]);
    const script = String.raw`
echo "READ=$(cat /var/vcap/data/files/config.txt)"
(echo x > /var/vcap/data/files/config.txt) 2>/dev/null && echo RO=no || echo RO=yes
echo written > /var/vcap/data/files/out.txt && echo RW=yes
[ -S /var/vcap/data/files/sock ] && echo SOCKET=yes
echo "OTHERS=$(ls /var/vcap/data/files | tr '
' ' ')"
echo DONE; exec sleep 1000`;
    r.job("filevol", bashJob("filevol", script, `  additional_volumes:
  - {path: /var/vcap/data/files/config.txt}
  - {path: /var/vcap/data/files/out.txt, writable: true}
  - {path: /var/vcap/data/files/sock, writable: true}
`));
    assert.equal(r.bpm("start", "filevol").status, 0, r.log("filevol", "filevol", "stderr"));
    const seen = facts(await r.waitForLog("filevol", "DONE"));
    for (const f of ["READ=host-config", "RO=yes", "RW=yes", "SOCKET=yes", "OTHERS=config.txt out.txt sock "]) assert.ok(seen.has(f), `expected ${f}; saw ${[...seen].join(" | ")}`);
    assert.equal(readFileSync(`${dir}/out.txt`, "utf8"), "written\n");
    assert.equal(r.bpm("stop", "filevol").status, 0);
  });

  it("refuses a mount_only volume that does not exist, and a persistent disk without ROOT/store", () => {
    const r = root();
    r.job("nodir", bashJob("nodir", "exec sleep 1000", "  additional_volumes:\n  - {path: /var/vcap/data/absent, mount_only: true}\n"));
    const a = r.bpm("start", "nodir");
    assert.equal(a.status, 1);
    assert.equal(a.stderr, `Error: failed to start job-process: volume /var/vcap/data/absent is mount_only but ${r.path}/data/absent does not exist\n`);
    const bare = makeRoot("nostore");
    try {
      rmSync(`${bare.path}/store`, { recursive: true });
      bare.job("disk", bashJob("disk", "exec sleep 1000", "  persistent_disk: true\n"));
      const b = bare.bpm("start", "disk");
      assert.equal(b.status, 1);
      assert.equal(b.stderr, `Error: failed to start job-process: persistent_disk is requested but ${bare.path}/store does not exist (is a persistent disk attached?)\n`);
      assert.ok(!existsSync(`${bare.path}/store`));
      assert.match(bare.bpm("list").stdout, /disk +- +stopped/);
    } finally {
      bare.cleanup();
    }
  });

  it("does nothing to a running process even when its volumes could no longer be prepared", () => {
    const r = root();
    mkdirSync(`${r.path}/data/gone`, { recursive: true });
    r.job("keep", bashJob("keep", "exec sleep 1000", "  additional_volumes:\n  - {path: /var/vcap/data/gone, mount_only: true}\n"));
    assert.equal(r.bpm("start", "keep").status, 0, r.log("keep", "keep", "stderr"));
    const pid = r.bpm("pid", "keep").stdout;
    // Logs and directories are prepared before the lock: a start that cannot
    // prepare them must still find the running process and leave it be.
    rmSync(`${r.path}/data/gone`, { recursive: true });
    for (const cmd of ["start", "run"]) {
      const again = r.bpm(cmd, "keep");
      assert.equal(again.status, 0, `${cmd}: ${again.stderr}`);
      assert.equal(r.bpm("pid", "keep").stdout, pid);
    }
    assert.equal(r.bpm("stop", "keep").status, 0);
    assert.equal(r.bpm("start", "keep").status, 1, "stopped, the missing volume is refused");
  });
});

describe("unsafe options", { skip: skipUnlessRoot }, () => {
  const root = useRoot("unsafe");

  it("runs a privileged job as root with the original's capabilities (as far as the host allows) and no masks", async () => {
    const r = root();
    r.job("priv", bashJob("priv", [
      "echo ID=$(id -u); grep -E '^(CapEff|NoNewPrivs|Seccomp)' /proc/self/status | sed 's/:\\s*/=/'",
      "echo TIMERLIST=$(cat /proc/timer_list | wc -c)",
      "echo NOSUID=$(grep ' /var/vcap/jobs/priv ' /proc/self/mountinfo | grep -c nosuid)",
      "echo PROCSYS=$(grep -c ' /proc/sys ' /proc/self/mountinfo)",
      "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo MOUNT=ok",
      "echo DONE; exec sleep 1000",
    ].join("; "), "  unsafe: {privileged: true}\n"));
    assert.equal(r.bpm("start", "priv").status, 0);
    const seen = facts(await r.waitForLog("priv", "DONE"));
    const hostBnd = BigInt("0x" + /^CapBnd:\s+(\S+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]);
    const capEff = (((1n << 38n) - 1n) & hostBnd).toString(16).padStart(16, "0"); // capabilities 0-37
    // Root with the original's capabilities, no filter, no masks, no nosuid, may mount.
    for (const f of ["ID=0", `CapEff=${capEff}`, "NoNewPrivs=0", "Seccomp=0", "NOSUID=0", "PROCSYS=0", "MOUNT=ok"]) assert.ok(seen.has(f), `expected ${f}; saw ${[...seen].join(" | ")}`);
    assert.ok([...seen].some((f) => /^TIMERLIST=[1-9]/.test(f)), "no masked /proc paths");
    assert.equal(r.bpm("stop", "priv").status, 0);
  });

  it("lets a host_pid_namespace job see host processes, and stop still ends all of its processes", async () => {
    const r = root();
    r.job("hostpid", bashJob("hostpid", `trap 'echo got USR1' USR1; sleep 1000 & echo BG=$!; (sleep 0.1 &); echo SEES_HOST=$([ -d /proc/${process.pid} ] && echo yes || echo no); echo DONE; while :; do sleep 0.05; done`, "  unsafe: {host_pid_namespace: true}\n"));
    assert.equal(r.bpm("start", "hostpid").status, 0);
    const log = await r.waitForLog("hostpid", "DONE");
    assert.match(log, /SEES_HOST=yes/);
    // Without a pid namespace the init is a subreaper: the orphaned sleep is reaped, signals still forwarded.
    const init = Number(r.bpm("pid", "hostpid").stdout);
    await sleep(500);
    const zombies = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return state === "Z" && Number(ppid) === init;
      } catch {
        return false;
      }
    });
    assert.deepEqual(zombies, [], "no zombie left under the init");
    process.kill(init, "SIGUSR1");
    await r.waitForLog("hostpid", "got USR1");
    const bg = Number(/BG=(\d+)/.exec(log)![1]);
    assert.ok(existsSync(`/proc/${bg}`), "the background child runs, with its host pid");
    assert.equal(r.bpm("stop", "hostpid").status, 0);
    const gone = () => {
      try {
        return /^State:\s+Z/m.test(readFileSync(`/proc/${bg}/status`, "utf8"));
      } catch {
        return true;
      }
    };
    await eventually(gone, () => `the job's background child ${bg} still runs after stop`, 2_000);
  });
});
