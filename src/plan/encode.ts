// The plan on the wire to the helper: "BPMPLAN1 <length>\n", then records of
// NUL-terminated fields (a tag, then a fixed number of arguments per tag).
import { capabilityNumber } from "../config/capabilities.ts";
import type { LaunchPlan } from "./plan.ts";

export const PLAN_VERSION = "BPMPLAN1";

/** The plan for the helper's launch verb, or for its shell verb (`target`: the init to enter). */
export function encodePlan(plan: LaunchPlan, target?: number): Buffer {
  const fields: string[] = [];
  const rec = (tag: string, ...args: (string | number)[]) => {
    for (const f of [tag, ...args]) {
      const s = String(f);
      if (s.includes("\0")) throw new Error(`plan field for ${tag} contains a NUL byte`);
      fields.push(s);
    }
  };
  rec("mode", plan.mode);
  for (const p of plan.cgroupProcs) rec("cgroup", p);
  for (const ns of plan.namespaces) rec("ns", ns);
  for (const d of plan.preps) rec("prep", d.path, d.mode, d.uid, d.gid, d.kind);
  if (plan.hook) rec("hook", plan.hook);
  if (plan.shareLock) rec("sharelock", plan.shareLock);
  if (plan.rootfs) rec("rootfs", plan.rootfs);
  for (const m of plan.mounts) {
    switch (m.kind) {
      case "bind": rec("bind", m.source, m.target, m.flags.join(",")); break;
      case "fs": rec("fs", m.fstype, m.source, m.target, m.flags.join(","), m.data); break;
      case "mknod": rec("mknod", m.target, m.major, m.minor, m.mode); break;
      // symlinkat() is relative to the new root: no leading slash.
      case "symlink": rec("symlink", m.linkTarget, m.target.replace(/^\/+/, "")); break;
      case "mask": rec("mask", m.target); break;
      case "readonly": rec("readonly", m.target); break;
      case "rootro": rec("rootro"); break;
    }
  }
  rec("user", plan.user.uid, plan.user.gid);
  for (const g of plan.user.groups) rec("group", g);
  let caps = 0n;
  for (const c of plan.capabilities) caps |= 1n << BigInt(capabilityNumber(c)!);
  rec("caps", caps.toString());
  for (const r of plan.rlimits) rec("rlimit", r.name, r.soft, r.hard);
  if (plan.noNewPrivs) rec("nonewprivs");
  if (plan.subreaper) rec("subreaper");
  if (plan.seccomp) rec("seccomp", Buffer.from(plan.seccomp).toString("hex"));
  rec("cwd", plan.cwd);
  rec("exe", plan.executable);
  rec("arg", plan.executable);
  for (const a of plan.args) rec("arg", a);
  for (const [k, v] of Object.entries(plan.env)) rec("env", `${k}=${v}`);
  if (plan.statusFile) rec("status", plan.statusFile);
  if (plan.pause) rec("pause");
  if (target !== undefined) rec("target", target);
  rec("end");
  const body = Buffer.from(fields.join("\0") + "\0");
  return Buffer.concat([Buffer.from(`${PLAN_VERSION} ${body.length}\n`), body]);
}
