// The original bpm's way of running a job, for comparison: an OCI bundle
// with the same mounts, namespaces, user, limits and seccomp allow-list as
// ours, run by Debian's runc with tini as the container's init, driven the
// way the original drove it (run --detach; kill; state polled once a second;
// delete --force).
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ALLOWED, ALLOWED_PERSONAS, CLONE_NAMESPACE_FLAGS } from "../src/plan/seccomp.ts";

export function findTools() {
  const runc = ["/usr/sbin/runc", "/usr/bin/runc"].find(existsSync);
  const tini = ["/usr/bin/tini-static", "/usr/bin/tini"].find(existsSync);
  return runc && tini ? { runc, tini } : null;
}

const ro = ["rbind", "ro", "nosuid", "nodev"];

/** config.json for one job, equivalent to what bpm plans for it. */
// What bpm gives a job without open_files: the hard limit it was given itself.
const nofile = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? 1024);

function spec({ job, root, tini, uid, gid, groups, script }) {
  const bind = (destination, source, options) => ({ destination, type: "bind", source, options });
  const sys = ["/bin", "/etc", "/lib", "/lib64", "/sbin", "/usr"].filter(existsSync).map((d) => bind(d, d, [...ro]));
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid, gid, additionalGids: groups },
      args: [tini, "-w", "-s", "--", "/bin/sh", "-c", script],
      env: [`TMPDIR=/var/vcap/data/${job}/tmp`, "LANG=en_US.UTF-8", `HOME=/var/vcap/data/${job}`,
        `PATH=/var/vcap/jobs/${job}/bin:/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin:.`],
      cwd: `/var/vcap/jobs/${job}`,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: nofile, soft: nofile }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    mounts: [
      ...sys,
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      bind("/tmp", join(root, "data", job, "tmp"), ["rbind", "nosuid", "nodev"]),
      bind("/var/tmp", join(root, "data", job, "tmp"), ["rbind", "nosuid", "nodev"]),
      bind(`/var/vcap/data/${job}/tmp`, join(root, "data", job, "tmp"), ["rbind", "nosuid", "nodev"]),
      bind(`/var/vcap/jobs/${job}`, join(root, "jobs", job), [...ro]),
      bind(`/var/vcap/sys/log/${job}`, join(root, "sys", "log", job), ["rbind", "nosuid", "nodev", "noexec"]),
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      cgroupsPath: `/bpm/bench-runc/${job}`,
      resources: { memory: { limit: 1 << 30, swap: 1 << 30 }, pids: { limit: 1000 } },
      maskedPaths: ["/etc/sv", "/proc/kcore", "/proc/latency_stats", "/proc/sched_debug", "/proc/timer_list", "/proc/timer_stats", "/sys/firmware"],
      readonlyPaths: ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
      seccomp: {
        defaultAction: "SCMP_ACT_ERRNO",
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        syscalls: [
          { names: ALLOWED.filter((n) => n !== "clone"), action: "SCMP_ACT_ALLOW" },
          { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
          ...ALLOWED_PERSONAS.map((p) => ({ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: p, op: "SCMP_CMP_EQ" }] })),
        ],
      },
    },
  };
}

export class Runc {
  constructor({ runc, tini, dir, root, user }) {
    Object.assign(this, { runc, tini, dir, root, user, state: join(dir, "runc-state") });
    mkdirSync(this.state, { recursive: true });
  }

  /** Writes the bundle for a job (its dirs under the same BOSH root as ours). */
  bundle(job, script) {
    const bundle = join(this.dir, "bundles", job);
    mkdirSync(join(bundle, "rootfs"), { recursive: true });
    for (const d of [join("data", job, "tmp"), join("sys", "log", job), join("jobs", job)]) mkdirSync(join(this.root, d), { recursive: true });
    spawnSync("chown", [`${this.user.uid}:${this.user.gid}`, join(this.root, "data", job, "tmp"), join(this.root, "sys", "log", job)]);
    writeFileSync(join(bundle, "config.json"), JSON.stringify(spec({ job, root: this.root, tini: this.tini, ...this.user, script })));
    return bundle;
  }

  cmd(...args) {
    return [this.runc, "--root", this.state, ...args];
  }

  /** `runc run --detach`, stdio on the job's log files as the original did. */
  start(job) {
    const log = join(this.root, "sys", "log", job);
    const out = openSync(join(log, `${job}.stdout.log`), "a");
    const err = openSync(join(log, `${job}.stderr.log`), "a");
    return new Promise((resolve, reject) => {
      const [bin, ...args] = this.cmd("run", "--detach", "--bundle", join(this.dir, "bundles", job), `bpm-${job}`);
      const c = spawn(bin, args, { stdio: ["ignore", out, err] });
      c.on("exit", (code) => {
        closeSync(out);
        closeSync(err);
        if (code === 0) return resolve();
        const said = readFileSync(join(log, `${job}.stderr.log`), "utf8").trim().split("\n").slice(-3).join("\n");
        reject(new Error(`runc run ${job}: exit ${code}\n${said}`));
      });
    });
  }

  status(job) {
    const [bin, ...args] = this.cmd("state", `bpm-${job}`);
    const r = spawnSync(bin, args, { encoding: "utf8" });
    return r.status === 0 ? JSON.parse(r.stdout).status : "gone";
  }

  /** kill TERM, `runc state` once a second until stopped, delete --force (the original's stop). */
  async stop(job) {
    const [bin, ...args] = this.cmd("kill", `bpm-${job}`, "TERM");
    spawnSync(bin, args);
    for (let i = 0; i < 20 && this.status(job) === "running"; i++) await new Promise((r) => setTimeout(r, 1000));
    const [b2, ...a2] = this.cmd("delete", "--force", `bpm-${job}`);
    spawnSync(b2, a2);
  }

  list() {
    const [bin, ...args] = this.cmd("list", "--format", "json");
    return spawnSync(bin, args, { encoding: "utf8" });
  }

  initPid(job) {
    const [bin, ...args] = this.cmd("state", `bpm-${job}`);
    return JSON.parse(spawnSync(bin, args, { encoding: "utf8" }).stdout).pid;
  }
}
