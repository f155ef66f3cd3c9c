import { writeOut } from "../output.ts";
import { command, CommandError, jobArgs, requireJob } from "../command.ts";
import { boshRoot, jobPaths } from "../../bosh/paths.ts";
import { readState, statusOf } from "../../runtime/state.ts";

export default command({
  meta: { name: "pid", description: "Print the host pid of a running process's container init" },
  args: jobArgs,
  run({ args }) {
    const job = requireJob(args);
    const state = readState(jobPaths(boshRoot(), job, args.process ?? job));
    if (statusOf(state) !== "running") throw new CommandError("process is not running or could not be found");
    writeOut(`${state!.pid}\n`);
  },
});
