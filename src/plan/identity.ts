// Who a job runs as: the plan takes it as data, looked up on the host by
// the runtime (lookupUser).
export interface Identity {
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups: the primary group plus every group listing the user. */
  groups: number[];
}
