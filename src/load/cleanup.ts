// Things a command started outside its own process (an embedded gateway, a dedicated
// PostgreSQL) must be stopped even when the user presses Ctrl-C or the command is sent
// SIGTERM: the first signal runs every registered cleanup, then exits with 130/143.
// Worker processes need nothing here: they exit when their IPC channel closes.

type Cleanup = () => Promise<void> | void;

const cleanups = new Set<Cleanup>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals): void => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (cleanups.size === 0) process.exit(code);
    process.stderr.write(`\nfanout: ${signal}: stopping what this command started…\n`);
    const all = [...cleanups].map(async (fn) => {
      try {
        await fn();
      } catch {
        // best effort: keep stopping the others
      }
    });
    const deadline = setTimeout(() => process.exit(code), 20_000);
    deadline.unref();
    void Promise.all(all).then(() => process.exit(code));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/** Registers `fn` to run on SIGINT/SIGTERM; returns a function that unregisters it. */
export function onInterrupt(fn: Cleanup): () => void {
  install();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}
