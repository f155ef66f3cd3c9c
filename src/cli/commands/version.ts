import { command } from "../command.ts";

declare const BPM_VERSION: string;
export const VERSION = typeof BPM_VERSION === "string" ? BPM_VERSION : "dev";

export default command(
  {
    meta: { name: "version", description: "Print bpm's version" },
    run() {
      process.stdout.write(`${VERSION}\n`);
    },
  },
  { needsRoot: false },
);
