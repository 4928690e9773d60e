// The exit codes every `fanout` command uses, so a CI job or a process manager can tell
// a failed threshold from a typo from a target that was never reached.
export const EXIT = {
  /** Everything ran and every threshold passed. */
  ok: 0,
  /** The run was valid but a threshold (or a check the command makes) failed. */
  thresholdFailed: 1,
  /** Bad usage: an unknown option, a bad flag or environment value. */
  usage: 2,
  /** The run was invalid (the generator saturated, an agent died): its figures prove nothing. */
  invalidRun: 3,
  /** The target or the set-up failed: unreachable target, refused key, port in use, database down. */
  setupFailed: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
