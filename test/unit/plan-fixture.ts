// A launch plan for tests, built as bpm builds one, on a made-up host: a
// BOSH VM's layout (merged /usr, /var/vcap/sys a symlink to data/sys).
import { ext, jobPaths } from "../../src/bosh/paths.ts";
import { parseJobConfig } from "../../src/config/load.ts";
import { jobBook } from "../../src/plan/book.ts";
import { cgroupLayout, jobCgroupAt } from "../../src/plan/cgroup.ts";
import { hostPathsFor, type HostFs } from "../../src/plan/mounts.ts";
import { buildPlan, type PlanInput } from "../../src/plan/plan.ts";

export const root = ext("/var/vcap");
/** A host with merged /usr, /var/vcap/sys a symlink to data/sys (as on a BOSH VM),
 * no /run/systemd/resolve, and every other path present where it is written. */
function fakeHost(proc: PlanInput["proc"]): HostFs {
  const wanted = hostPathsFor(root, jobPaths(root, "web"), proc);
  const fs: HostFs = { paths: {}, links: { "/bin": "usr/bin", "/lib": "usr/lib", "/sbin": "usr/sbin" }, globs: {}, skipped: [] };
  for (const p of wanted.paths) {
    if (fs.links[p]) continue;
    fs.paths[p] = { real: p.replace(/^\/var\/vcap\/sys\//, "/var/vcap/data/sys/"), exists: p !== "/run/systemd/resolve" };
  }
  for (const g of wanted.patterns) fs.globs[g] = [];
  return fs;
}
export function plan(yaml: string, mode: PlanInput["mode"] = "detach", command: "start" | "run" = "start", pause = false) {
  const proc = parseJobConfig(yaml, "bpm.yml", { root, job: "web" }).config.processes[0]!;
  const user = { name: "vcap", uid: 1000, gid: 1000, groups: [1000, 4] };
  const input: PlanInput = {
    root, paths: jobPaths(root, "web"), proc, mode, job: jobBook(jobPaths(root, "web"), user, command), pause,
    cgroup: cgroupLayout("/sys/fs/cgroup", jobCgroupAt(2, "/sys/fs/cgroup", root, "bpm-web"), { memoryBytes: 1 << 30, pids: 100 }),
    user,
    host: { nofileHard: 4096, boundingCaps: ["CHOWN", "KILL", "PERFMON"], fs: fakeHost(proc) },
    shareLock: "/var/vcap/data/bpm/locks/shared-volumes.lock",
  };
  return buildPlan(input);
}
