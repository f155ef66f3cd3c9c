import { command, CommandError, jobArgs, requireJob } from "../command.ts";
import { boshRoot, jobPaths } from "../../bosh/paths.ts";
import { readState, statusOf } from "../../runtime/state.ts";

export default command({
  meta: { name: "pid", description: "Print the host pid of a running process's container init" },
  args: jobArgs,
  run({ args }) {
    const state = readState(jobPaths(boshRoot(), requireJob(args), args.process ?? requireJob(args)));
    if (statusOf(state) !== "running") throw new CommandError("process is not running or could not be found");
    process.stdout.write(`${state!.pid}\n`);
  },
});
