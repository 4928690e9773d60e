// Who the client of a request really is: the socket's peer address, or, when that peer is
// one of the configured proxies (`--trusted-proxies`), the address the proxies recorded in
// `X-Forwarded-For` (the right-most one no trusted proxy added). An X-Forwarded-For from
// anyone else is ignored, so a client cannot pick its own address and dodge a per-address
// limit. proxy-addr (Express's) does the parsing and CIDR matching.
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';

export type TrustProxy = (addr: string, hop: number) => boolean;

const TRUST_NONE: TrustProxy = () => false;

/** Parses `--trusted-proxies`: comma-separated addresses, CIDRs or proxy-addr's names; '' trusts none. Throws naming a bad entry. */
export function parseTrustedProxies(value: string): TrustProxy {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) return TRUST_NONE;
  for (const entry of entries) {
    try {
      proxyAddr.compile(entry);
    } catch (err) {
      throw new Error(`"${entry}" is not an address, a CIDR, or one of loopback, linklocal, uniquelocal (${(err as Error).message})`, { cause: err });
    }
  }
  return proxyAddr.compile(entries);
}

/** IPv4 addresses in their dotted form, whether the socket reported them plain or IPv4-mapped. */
function normalize(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** The client address of a request (see the header comment); 'unknown' when the socket is already gone. */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  if (!req.socket?.remoteAddress) return 'unknown';
  return normalize(trust === TRUST_NONE ? req.socket.remoteAddress : proxyAddr(req, trust));
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopbackAddress(addr: string): boolean {
  const a = normalize(addr);
  return a === '::1' || a.startsWith('127.');
}
