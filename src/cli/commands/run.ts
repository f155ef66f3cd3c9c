import { command, CommandError, jobArgs, requireJob } from "../command.ts";

export default command({
  meta: { name: "run", description: "Run a job's process in the foreground (errands)" },
  args: {
    ...jobArgs,
    volume: { type: "string", alias: "v", description: "extra volume PATH[:writable,mount_only,allow_executions,shared]; repeatable" },
    env: { type: "string", alias: "e", description: "extra environment KEY=VALUE; repeatable" },
  },
  run({ args }) {
    requireJob(args);
    throw new CommandError("bpm run is not available in this build yet");
  },
});
