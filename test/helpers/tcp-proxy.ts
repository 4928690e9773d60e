// A TCP proxy in front of a gateway for network-fault tests: `cut()` drops every open
// connection (a dropped network), `block(true)` refuses new ones (the network stays
// down), `retarget(url)` sends new connections to another gateway (a deploy: the old
// instance drains, the new one answers), `freeze()` stalls the open connections without
// closing them (TCP still thinks they are fine; only silence tells).
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  url: string;
  /** Drops every open connection. */
  cut(): void;
  /** While blocked, new connections are closed at once. */
  block(on: boolean): void;
  /** Sends new connections to another upstream. */
  retarget(url: string): void;
  /** Stops passing bytes on the open connections without closing them (a stalled network path). */
  freeze(): void;
  /** Connections currently passing through. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Joins two sockets both ways and tracks them in `open` until either side closes; then
 * both are destroyed (a half-dead pair would hide a fault from the test).
 */
export function splice(a: Socket, b: Socket, open: Set<Socket>): void {
  open.add(a).add(b);
  const forget = (): void => {
    open.delete(a);
    open.delete(b);
    a.destroy();
    b.destroy();
  };
  a.on('close', forget).on('error', forget);
  b.on('close', forget).on('error', forget);
  a.pipe(b);
  b.pipe(a);
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  let target = new URL(targetUrl);
  let blocked = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    splice(client, connect(Number(target.port), target.hostname), sockets);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    block: (on) => void (blocked = on),
    retarget: (url) => void (target = new URL(url)),
    freeze: () => {
      for (const s of sockets) s.unpipe();
    },
    connections: () => sockets.size / 2,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
