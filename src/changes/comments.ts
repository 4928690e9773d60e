// The seed's comments without PostgREST: list, add, edit and delete `project_comments`
// rows over HTTP with the caller's JWT. Every statement runs as the caller — their role,
// their claims in `request.jwt.claims` — so the table's RLS policies decide, exactly as
// they would behind Supabase's REST API, and each write reaches `postgres_changes`
// subscribers through the change feed like any other.
//
//   GET    /api/projects/:projectId/comments?limit=50   → 200 [comment, ...] (newest first)
//   POST   /api/projects/:projectId/comments            {"body": "...", "user_id"?: "..."} → 201 comment
//   PATCH  /api/projects/:projectId/comments/:id        {"body": "..."} → 200 comment
//   DELETE /api/projects/:projectId/comments/:id        → 204
import type { Gateway } from '../server/gateway.js';
import { AuthError, tokenFromRequest, type Claims } from '../core/auth.js';
import { HttpError, sendJson } from '../server/http-errors.js';
import { readJson } from '../server/body.js';
import type { RequestContext } from '../server/router.js';
import { sqlState, type Database, type Queryable } from './database.js';
import type { DatabaseRuntime } from './runtime.js';

const MAX_BODY_CHARS = 10_000;
const MAX_ID_CHARS = 200;

export function registerCommentRoutes(gateway: Gateway, runtime: DatabaseRuntime): void {
  const base = '/api/projects/:projectId/comments';

  const caller = async (ctx: RequestContext): Promise<{ claims: Claims; db: Database; projectId: string }> => {
    const projectId = ctx.params.projectId ?? '';
    if (projectId.length < 1 || projectId.length > MAX_ID_CHARS) throw new HttpError(400, 'invalid_project_id', `projectId must be 1 to ${MAX_ID_CHARS} characters`);
    let claims: Claims;
    try {
      claims = await gateway.auth.verify(tokenFromRequest(ctx.req.headers, ctx.query));
    } catch (err) {
      if (err instanceof AuthError) throw new HttpError(401, 'unauthorized', err.message);
      throw err;
    }
    let db: Database;
    try {
      ({ db } = await runtime.parts());
    } catch (err) {
      throw new HttpError(503, 'database_unavailable', `the database is unavailable: ${(err as Error).message}`, { 'retry-after': '5' });
    }
    return { claims, db, projectId };
  };

  gateway.router.on('GET', base, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const limitText = ctx.query.get('limit') ?? '50';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 500) throw new HttpError(400, 'invalid_limit', `limit must be an integer from 1 to 500, got ${JSON.stringify(limitText)}`);
    const rows = await asCaller(db, claims, (tx) =>
      tx.query<{ row: unknown }>(
        'select to_jsonb(c.*) as row from public.project_comments c where c.project_id = $1 order by c.created_at desc, c.id desc limit $2',
        [projectId, limit],
      ),
    );
    sendJson(ctx.res, 200, rows.rows.map((r) => r.row));
  });

  gateway.router.on('POST', base, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const input = await readInput(ctx, gateway.config.maxBodyBytes, ['body', 'user_id']);
    const body = requireBody(input);
    let userId = input.user_id ?? claims.sub;
    if (userId === undefined) throw new HttpError(400, 'invalid_body', 'user_id is required when the token has no sub claim');
    if (typeof userId !== 'string' || userId.length < 1 || userId.length > MAX_ID_CHARS) throw new HttpError(400, 'invalid_body', `user_id must be a string of 1 to ${MAX_ID_CHARS} characters`);
    userId = String(userId);
    const { rows } = await asCaller(db, claims, (tx) =>
      tx.query<{ row: unknown }>('insert into public.project_comments as c (project_id, user_id, body) values ($1, $2, $3) returning to_jsonb(c.*) as row', [
        projectId,
        userId,
        body,
      ]),
    );
    sendJson(ctx.res, 201, rows[0]!.row);
  });

  gateway.router.on('PATCH', `${base}/:id`, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const id = commentId(ctx);
    const body = requireBody(await readInput(ctx, gateway.config.maxBodyBytes, ['body']));
    const { rows } = await asCaller(db, claims, (tx) =>
      tx.query<{ row: unknown }>('update public.project_comments as c set body = $3 where c.id = $2 and c.project_id = $1 returning to_jsonb(c.*) as row', [projectId, id, body]),
    );
    if (!rows[0]) throw notFound(projectId, id);
    sendJson(ctx.res, 200, rows[0].row);
  });

  gateway.router.on('DELETE', `${base}/:id`, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const id = commentId(ctx);
    const { rowCount } = await asCaller(db, claims, (tx) => tx.query('delete from public.project_comments where id = $2 and project_id = $1', [projectId, id]));
    if (rowCount === 0) throw notFound(projectId, id);
    ctx.res.writeHead(204, { 'cache-control': 'no-store' });
    ctx.res.end();
  });
}

/**
 * Runs `fn` in a transaction as the caller: their role (so grants and RLS apply) and their
 * claims where policies read them (`auth.jwt()`, `request.jwt.claim.sub`). Database
 * refusals become the HTTP errors a REST client expects.
 */
export async function asCaller<T>(db: Database, claims: Claims, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  try {
    return await db.transaction(async (tx) => {
      await tx.query(
        `select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                set_config('request.jwt.claim.sub', $3, true), set_config('request.jwt.claim.role', $1, true)`,
        [String(claims.role), JSON.stringify(claims), typeof claims.sub === 'string' ? claims.sub : ''],
      );
      return fn(tx);
    });
  } catch (err) {
    const code = sqlState(err);
    const message = (err as Error).message;
    if (code === '42501' || code === '22023' || code === '42P01') throw new HttpError(403, 'forbidden', message);
    if (code?.startsWith('23') || code?.startsWith('22')) throw new HttpError(400, 'invalid_body', message);
    throw err;
  }
}

async function readInput(ctx: RequestContext, limit: number, allowed: string[]): Promise<Record<string, unknown>> {
  const input = await readJson(ctx.req, limit);
  if (input === undefined) throw new HttpError(400, 'invalid_body', 'expected a JSON object body');
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new HttpError(400, 'invalid_body', 'expected a JSON object body');
  const unknown = Object.keys(input).filter((k) => !allowed.includes(k));
  if (unknown.length) throw new HttpError(400, 'invalid_body', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (allowed: ${allowed.join(', ')})`);
  return input as Record<string, unknown>;
}

function requireBody(input: Record<string, unknown>): string {
  const body = input.body;
  if (typeof body !== 'string') throw new HttpError(400, 'invalid_body', '"body" must be a string');
  if (body.trim().length === 0) throw new HttpError(400, 'invalid_body', '"body" must not be empty');
  if (body.length > MAX_BODY_CHARS) throw new HttpError(400, 'invalid_body', `"body" must be at most ${MAX_BODY_CHARS} characters (got ${body.length})`);
  return body;
}

function commentId(ctx: RequestContext): string {
  const id = ctx.params.id ?? '';
  if (!/^[1-9]\d{0,17}$/.test(id)) throw new HttpError(400, 'invalid_id', `comment id must be a positive integer, got ${JSON.stringify(id.slice(0, 40))}`);
  return id;
}

function notFound(projectId: string, id: string): HttpError {
  return new HttpError(404, 'not_found', `comment ${id} was not found in project ${projectId}, or you may not change it`);
}
