// Facts about host processes from /proc, used to tell a live process from a
// recycled pid: a pid only counts as ours if its start time matches.
import { readFileSync } from "node:fs";

/** Start time (clock ticks since boot, field 22 of /proc/PID/stat), or null if gone or a zombie. */
export function startTime(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return null;
  return Number(fields[19]);
}
