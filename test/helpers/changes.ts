// Runs a gateway on a real database for the change-feed tests — PostgreSQL (a database of
// the test's own, migrated as `fanout migrate` would) or the embedded PGlite (migrated by
// the gateway itself) — and gives the test a way to write to that database: through a
// separate connection on PostgreSQL (so capture, NOTIFY and the consumer see an outside
// writer), through the gateway's own handle on PGlite (its only possible writer while the
// gateway runs), or by opening PGlite directly while the gateway is stopped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Claims } from '../../src/core/auth.js';
import { createLogger } from '../../src/core/log.js';
import { openDatabase, type Database } from '../../src/changes/database.js';
import type { RuntimeParts } from '../../src/changes/runtime.js';
import type { ChangeData, PostgresChangesParams } from '../../src/changes/types.js';
import type { GatewayConfig } from '../../src/core/config.js';
import { startGateway, type TestGateway } from './gateway.js';
import { createMigratedDatabase, type TestDatabase } from './database.js';

export type DatabaseKind = 'postgres' | 'pglite';

export interface Delivery {
  ids: number[];
  data: ChangeData;
  commitTs: number;
}

export interface HarnessOptions {
  /** Create the database on this server (a WAL test server) instead of the machine's shared one. */
  adminUrl?: string;
  /** Settings every start of the gateway uses (e.g. changesCapture). */
  gateway?: Partial<GatewayConfig>;
}

export class ChangesHarness {
  gw: TestGateway | undefined;
  private pgdb: TestDatabase | undefined;
  private writer: pg.Client | undefined;
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'fanout-changes-'));
  port = 0;

  private constructor(
    readonly kind: DatabaseKind,
    private readonly defaults: Partial<GatewayConfig>,
  ) {}

  /**
   * `options.adminUrl`: create the database on that server (a WAL test server) instead of
   * the machine's shared one; `options.gateway`: settings every start uses (e.g. changesCapture).
   */
  static async create(kind: DatabaseKind, options: HarnessOptions = {}): Promise<ChangesHarness> {
    const h = new ChangesHarness(kind, options.gateway ?? {});
    if (kind === 'postgres') {
      h.pgdb = await createMigratedDatabase('fanout_changes', options.adminUrl);
      h.writer = new pg.Client({ connectionString: h.pgdb.url });
      await h.writer.connect();
    }
    return h;
  }

  get databaseUrl(): string | undefined {
    return this.pgdb?.url;
  }

  get embeddedDir(): string {
    return this.dataDir;
  }

  /** Starts (or restarts, on the same port and database) the gateway with an eager database. */
  async start(overrides: Partial<GatewayConfig> = {}): Promise<TestGateway> {
    this.gw = await startGateway({
      dbStart: 'eager',
      changesReplayMs: 0,
      databaseUrl: this.pgdb?.url,
      dataDir: this.dataDir,
      port: this.port,
      ...this.defaults,
      ...overrides,
    });
    this.port = Number(new URL(this.gw.url).port);
    await this.parts();
    return this.gw;
  }

  async stop(): Promise<void> {
    const gw = this.gw;
    this.gw = undefined;
    await gw?.stop();
  }

  async parts(): Promise<RuntimeParts> {
    return this.gw!.gateway.service('databaseRuntime').parts();
  }

  /** Runs SQL as the superuser, from outside the gateway where the database allows it. */
  async sql<R = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<R[]> {
    if (this.writer) return (await this.writer.query(query, params)).rows as R[];
    if (this.gw) return (await (await this.parts()).db.query<R>(query, params)).rows;
    const db = await this.openEmbedded();
    try {
      return (await db.query<R>(query, params)).rows;
    } finally {
      await db.close();
    }
  }

  /** Several statements in one go (DDL), without parameters. */
  async exec(script: string): Promise<void> {
    if (this.writer) {
      await this.writer.query(script);
      return;
    }
    if (this.gw) return (await this.parts()).db.exec(script);
    const db = await this.openEmbedded();
    try {
      await db.exec(script);
    } finally {
      await db.close();
    }
  }

  /** Resolves once the gateway has dispatched everything committed so far. */
  async settle(): Promise<void> {
    await (await this.parts()).consumer.settle();
  }

  async claims(token: string): Promise<Claims> {
    return this.gw!.gateway.auth.verify(token);
  }

  /** Subscribes through the gateway's ChangeFeed, collecting deliveries. */
  async subscribe(bindings: PostgresChangesParams[], claims: Claims, channel = 'test') {
    const got: Delivery[] = [];
    const result = await this.gw!.gateway.service('database').changeFeed.subscribe({
      channel,
      claims,
      bindings: bindings.map((params, i) => ({ id: 100 + i, params })),
      deliver: (ids, data, commitTs) => got.push({ ids, data, commitTs }),
    });
    return { result, got, subscription: result.ok ? result.subscription : undefined };
  }

  async close(): Promise<void> {
    await this.stop();
    await this.writer?.end();
    await this.pgdb?.drop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private openEmbedded(): Promise<Database> {
    return openDatabase({ databaseUrl: undefined, dataDir: this.dataDir, log: createLogger({ level: 'silent' }) });
  }
}

/** Polls until `check` passes (or fails the test after `timeoutMs`); `check` may be async. */
export async function eventually(check: () => void | Promise<void>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
