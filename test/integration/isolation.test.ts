// What a job can see and do, observed from inside the job itself.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { BPM, bashJob, eventually, makeRoot, skipUnlessRoot, useRoot, type Root } from "./harness.ts";

const probe = String.raw`
echo "ID=$(id -u):$(id -g):$(id -G | tr ' ' ',')"
echo "PIDS=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ',')"
for p in /var/vcap/jobs/other /var/vcap/data/other /root /home; do [ -e $p ] && echo "VISIBLE=$p"; done
for p in /etc /usr /var/vcap/jobs/observer /; do touch $p/.bpm-probe 2>/dev/null && echo "WRITABLE=$p"; done
echo shared > /tmp/probe-file; echo "VARTMP=$(cat /var/tmp/probe-file)"; echo "TMPDIR_SAME=$(cat $TMPDIR/probe-file)"
echo "ENV_TMPDIR=$TMPDIR"; echo "ENV_HOME=$HOME"; echo "ENV_LANG=$LANG"; echo "ENV_PATH=$PATH"; echo "ENV_FOO=$FOO"
echo "NETNS=$(readlink /proc/self/ns/net)"
echo "TIMERLIST=$(cat /proc/timer_list 2>/dev/null | wc -c)"
echo "PROCSYS_WRITABLE=$( (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo yes || echo no)"
grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status | sed 's/:\s*/=/'
echo "NOFILE=$(ulimit -n)"; echo "CORE=$(ulimit -c)"
echo "DEVS=$(ls /dev | tr '\n' ',')"
echo "PWD=$(pwd)"
ls -l /proc/self/fd/ | sed -n 's/.* \([0-9]*\) -> \(.*\)$/FD=\1:\2/p' | grep -v ':/proc/[0-9]*/fd$' 
for d in /tmp /var/tmp "$TMPDIR" /var/vcap/data/observer /var/vcap/store/observer /var/vcap/sys/log/observer /var/vcap/sys/run/observer; do
  cp /bin/true "$d/probe-exe" && { "$d/probe-exe" 2>/dev/null && echo "EXECUTABLE=$d"; rm -f "$d/probe-exe"; }
done
echo DONE
exec sleep 1000`;

describe("isolation seen from inside a job", { skip: skipUnlessRoot }, () => {
  let root: Root;
  let facts: Map<string, string[]>;
  before(async () => {
    root = makeRoot("isolation");
    root.job("observer", bashJob("observer", probe, "  env: {FOO: bar}\n  limits: {open_files: 512, core_file_size: 0}\n  ephemeral_disk: true\n  persistent_disk: true\n"));
    root.job("other", bashJob("other", "exec sleep 1000"));
    mkdirSync(`${root.path}/data/other`, { recursive: true });
    writeFileSync(`${root.path}/jobs/other/secret`, "x");
    // Started the way a careless caller would: with descriptors 7 and 40 left open.
    const stdio = Array<"ignore" | "pipe">(41).fill("ignore");
    stdio[1] = stdio[2] = stdio[7] = stdio[40] = "pipe";
    const started = spawnSync(BPM, ["start", "observer"], { env: { ...process.env, BPM_BOSH_ROOT: root.path }, stdio, encoding: "utf8", timeout: 300_000 });
    assert.equal(started.status, 0, `${started.stderr}${started.error ?? ""}`);
    assert.equal(root.bpm("start", "other").status, 0);
    // Some forty commands in the job: minutes under emulation on a loaded machine.
    const log = await root.waitForLog("observer", "DONE", 300_000);
    facts = new Map();
    for (const line of log.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) facts.set(line.slice(0, i), [...(facts.get(line.slice(0, i)) ?? []), line.slice(i + 1)]);
    }
  });
  after(() => root.cleanup());
  const fact = (k: string) => facts.get(k)?.[0];

  it("runs as vcap with its primary and supplementary groups", () => {
    const uid = execFileSync("id", ["-u", "vcap"], { encoding: "utf8" }).trim();
    const gid = execFileSync("id", ["-g", "vcap"], { encoding: "utf8" }).trim();
    const groups = execFileSync("id", ["-G", "vcap"], { encoding: "utf8" }).trim().split(" ").sort();
    const [u, g, gs] = fact("ID")!.split(":");
    assert.equal(u, uid);
    assert.equal(g, gid);
    assert.deepEqual(gs!.split(",").sort(), groups);
  });
  it("sees only its own processes", () => {
    const pids = fact("PIDS")!.split(",").filter(Boolean).map(Number);
    assert.ok(pids.includes(1), "the init is pid 1");
    assert.ok(pids.length <= 6, `expected a handful of pids, saw ${pids.join(",")}`);
  });
  it("cannot see other jobs, /root or /home", () => {
    assert.deepEqual(facts.get("VISIBLE") ?? [], []);
  });
  it("cannot write /etc, /usr, its job dir or the root", () => {
    assert.deepEqual(facts.get("WRITABLE") ?? [], []);
  });
  it("has /tmp, /var/tmp and TMPDIR as one writable place", () => {
    assert.equal(fact("VARTMP"), "shared");
    assert.equal(fact("TMPDIR_SAME"), "shared");
  });
  it("gets the default environment plus its own", () => {
    assert.equal(fact("ENV_TMPDIR"), "/var/vcap/data/observer/tmp");
    assert.equal(fact("ENV_HOME"), "/var/vcap/data/observer");
    assert.equal(fact("ENV_LANG"), "en_US.UTF-8");
    assert.equal(fact("ENV_PATH"), "/var/vcap/jobs/observer/bin:/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin:.");
    assert.equal(fact("ENV_FOO"), "bar");
    assert.equal(fact("PWD"), "/var/vcap/jobs/observer");
  });
  it("shares the host's network namespace", () => {
    assert.equal(fact("NETNS"), readlinkSync("/proc/self/ns/net"));
  });
  it("cannot read masked /proc paths or write /proc/sys", () => {
    // /proc/kcore and /proc/sched_debug are absent on some kernels; timer_list is the one to see masked here.
    assert.ok(readFileSync("/proc/timer_list").length > 0, "the host can read /proc/timer_list");
    assert.equal(fact("TIMERLIST"), "0");
    assert.equal(fact("PROCSYS_WRITABLE"), "no");
  });
  it("holds no capabilities", () => {
    for (const k of ["CapEff", "CapPrm", "CapBnd", "CapAmb"]) assert.equal(fact(k), "0000000000000000", k);
  });
  it("gets its open-files and core-size limits, which the pidfile's process shows too", () => {
    assert.equal(fact("NOFILE"), "512");
    assert.equal(fact("CORE"), "0");
    // Operators read a job's limits off `bpm pid`'s process, as they did off tini.
    const limits = readFileSync(`/proc/${Number(root.bpm("pid", "observer").stdout)}/limits`, "utf8");
    assert.match(limits, /^Max open files +512 +512 +files/m);
    assert.match(limits, /^Max core file size +0 +0 +bytes/m);
  });
  it("gets no descriptor but 0, 1 and 2, and its init keeps only its exit record and its cgroup's OOM count", () => {
    assert.deepEqual(facts.get("FD")!.map((f) => f.split(":")[0]), ["0", "1", "2"], facts.get("FD")!.join(" "));
    const init = Number(root.bpm("pid", "observer").stdout);
    const held = readdirSync(`/proc/${init}/fd`).map((fd) => `${fd}:${readlinkSync(`/proc/${init}/fd/${fd}`)}`).sort((a, b) => parseInt(a) - parseInt(b));
    assert.deepEqual(held.slice(0, 3).map((h) => h.split(":")[0]), ["0", "1", "2"], held.join(" "));
    assert.equal(held.length, 5, held.join(" "));
    const rest = held.slice(3);
    assert.ok(rest.some((h) => /\/sys\/run\/bpm\/observer\/observer\.exit$/.test(h)), held.join(" "));
    // Read when the job ends, for the exit record (a systemd scope's cgroup is gone once the init is).
    assert.ok(rest.some((h) => /\/(memory\.events|memory\.oom_control)$/.test(h)), held.join(" "));
  });
  it("cannot run a program from anywhere it can write", () => {
    assert.deepEqual(facts.get("EXECUTABLE") ?? [], []);
  });
  it("has a small /dev with the usual nodes", () => {
    const devs = fact("DEVS")!.split(",");
    for (const d of ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue", "fd", "stdin", "stdout", "stderr"]) {
      assert.ok(devs.includes(d), `/dev/${d} missing from ${devs.join(" ")}`);
    }
    assert.ok(!devs.includes("sda") && !devs.includes("vda") && !devs.includes("kmsg"));
  });
});

describe("an init under a low open-files limit", { skip: skipUnlessRoot }, () => {
  const root = useRoot("lowfiles");

  it("carries the job's limit of 4 open files and still reaps the job and records how it ended", async () => {
    const r = root();
    r.job("lowfiles", bashJob("lowfiles", "echo up; while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3", "  limits: {open_files: 4}\n"));
    assert.equal(r.bpm("start", "lowfiles").status, 0);
    await r.waitForLog("lowfiles", "up");
    const init = Number(r.bpm("pid", "lowfiles").stdout);
    assert.match(readFileSync(`/proc/${init}/limits`, "utf8"), /^Max open files +4 +4 +files/m);
    writeFileSync(`${r.path}/data/lowfiles/tmp/go`, "");
    let listed = "";
    await eventually(() => /^lowfiles +- +failed +exit 3 /m.test((listed = r.bpm("list", "--long").stdout)), () => listed);
  });
});
