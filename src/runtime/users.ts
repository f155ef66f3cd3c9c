// The job's identity, looked up on the host the way BOSH stemcells define it.
import { readFileSync } from "node:fs";
import type { Identity } from "../plan/identity.ts";

export function lookupUser(name: string, etc = "/etc"): Identity {
  const passwd = readFileSync(`${etc}/passwd`, "utf8");
  const entry = passwd.split("\n").map((l) => l.split(":")).find((f) => f[0] === name);
  if (!entry || entry.length < 4) throw new Error(`user "${name}" not found in ${etc}/passwd`);
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  const groups = new Set<number>([gid]);
  for (const line of readFileSync(`${etc}/group`, "utf8").split("\n")) {
    const f = line.split(":");
    if (f.length >= 4 && f[3]!.split(",").includes(name)) groups.add(Number(f[2]));
  }
  return { name, uid, gid, groups: [...groups] };
}
