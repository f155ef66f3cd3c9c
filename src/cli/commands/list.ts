import { writeOut } from "../output.ts";
import { command } from "../command.ts";
import { describeConfig, describeExit, formatTable, listProcesses } from "../../lifecycle/list.ts";

export default command({
  meta: { name: "list", description: "List every process of every job with its pid and status" },
  args: {
    json: { type: "boolean", description: "machine-readable output, with how each process last ended and its cgroup usage (memory, pids, CPU time)" },
    long: { type: "boolean", alias: "l", description: "add columns saying how each process last ended and whether bpm.yml still names it" },
  },
  async run({ args }) {
    const { rows, warnings } = await listProcesses({ exit: Boolean(args.long || args.json), usage: Boolean(args.json) });
    for (const w of warnings) process.stderr.write(`${w}\n`);
    if (args.json) {
      writeOut(JSON.stringify(rows, null, 2) + "\n");
      return;
    }
    const cells = rows.map((r) => [r.name, r.pid === null ? "-" : String(r.pid), r.status, ...(args.long ? [describeExit(r.lastExit), describeConfig(r.config)] : [])]);
    writeOut(formatTable(["Name", "Pid", "Status", ...(args.long ? ["Last exit", "Config"] : [])], cells));
  },
});
