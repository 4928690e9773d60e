// Checks before a run that the generator can hold what it is asked to: open files per
// process (every socket is one) and ephemeral ports per source address (about 28,000 on
// a default Linux). Too many sockets per process raises the worker count; too many per
// source address without loopback aliases is reported, since it would fail as EADDRNOTAVAIL.
import { readFileSync } from 'node:fs';

export interface PreflightResult {
  workers: number;
  notes: string[];
}

/** Soft limit on open files of this process (inherited by the workers), from /proc/self/limits. */
export function openFileLimit(): number | undefined {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return undefined;
    return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Size of the ephemeral port range, from /proc/sys/net/ipv4/ip_local_port_range. */
export function ephemeralPorts(): number | undefined {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return lo && hi ? hi - lo + 1 : undefined;
  } catch {
    return undefined;
  }
}

/** Headroom per process for the runtime's own files, pipes and the IPC channel. */
const FILE_HEADROOM = 200;

/**
 * @param sourceAddresses 'spread' when sockets are spread over loopback source addresses
 *   (at most SOCKETS_PER_SOURCE_ADDRESS each), null when they all leave from one address.
 */
export function preflight(sockets: number, workers: number, sourceAddresses: 'spread' | null, limits = { files: openFileLimit(), ports: ephemeralPorts() }): PreflightResult {
  const notes: string[] = [];
  let w = Math.max(1, workers);
  if (limits.files !== undefined) {
    const perProcess = Math.max(1, limits.files - FILE_HEADROOM);
    const needed = Math.ceil(sockets / perProcess);
    if (needed > w) {
      notes.push(`${sockets} sockets need ${needed} generator processes at ${limits.files} open files each; using ${needed} instead of ${w}`);
      w = needed;
    }
  }
  if (limits.ports !== undefined && sourceAddresses === null && sockets > limits.ports * 0.9) {
    notes.push(`${sockets} sockets from one source address exceed 90% of the ${limits.ports} ephemeral ports: expect EADDRNOTAVAIL (spread the generator over several machines or addresses)`);
  }
  return { workers: w, notes };
}
