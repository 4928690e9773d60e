// Stopping a long-running command however it was started. SIGTERM and SIGINT run the
// command's graceful stop. Started through npm (`npx fanout serve`, `npm start`), the
// process is the child of `sh -c`, itself npm's child: a SIGTERM sent to npm (by a process
// manager that knows only npm's pid) ends npm and the shell but never reaches this process,
// which would keep the port. So under npm the parent is also watched, and losing it counts
// as a SIGTERM. Outside npm the parent is left alone: `(fanout serve &)` or `nohup` are
// meant to outlive the shell that started them.

export type StopReason = 'SIGTERM' | 'SIGINT' | 'parent exited';

/** How often the parent is checked under npm; the check is one getppid() call. */
const PARENT_CHECK_MS = 1000;

/** True when npm (exec, run-script, start) started this process. */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.npm_command !== undefined || env.npm_lifecycle_event !== undefined;
}

/**
 * Calls `stop` once, on the first SIGTERM or SIGINT (or, under npm, when the parent
 * process exits). A second signal while stopping is ignored: the stop has its own deadline.
 */
export function onStopRequest(stop: (reason: StopReason) => void, env: NodeJS.ProcessEnv = process.env): void {
  let requested = false;
  const request = (reason: StopReason): void => {
    if (requested) return;
    requested = true;
    stop(reason);
  };
  process.on('SIGTERM', () => request('SIGTERM'));
  process.on('SIGINT', () => request('SIGINT'));
  if (startedByNpm(env)) {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      request('parent exited');
    }, PARENT_CHECK_MS);
    watch.unref();
  }
}
