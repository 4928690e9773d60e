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
import type { Services } from '../server/services.js';
import type { Claims } from '../core/auth.js';
import { authenticate } from '../server/http-auth.js';
import { HttpError, sendJson, writeHead } from '../server/http-errors.js';
import { readJson } from '../server/body.js';
import type { RequestContext } from '../server/router.js';
import { isConnectionFailure, sqlState, type Database } from './database.js';
import type { DatabaseRuntime } from './runtime.js';

const MAX_BODY_CHARS = 10_000;
const MAX_ID_CHARS = 200;

export function registerCommentRoutes(deps: Pick<Services, 'router' | 'auth' | 'config'>, runtime: DatabaseRuntime): void {
  const base = '/api/projects/:projectId/comments';

  const caller = async (ctx: RequestContext): Promise<{ claims: Claims; db: Database; projectId: string }> => {
    const projectId = ctx.params.projectId ?? '';
    if (projectId.length < 1 || projectId.length > MAX_ID_CHARS) throw new HttpError(400, 'invalid_project_id', `projectId must be 1 to ${MAX_ID_CHARS} characters`);
    const claims = await authenticate(deps.auth, ctx.req, ctx.query);
    let db: Database;
    try {
      ({ db } = await runtime.parts());
    } catch (err) {
      throw new HttpError(503, 'database_unavailable', `the database is unavailable: ${(err as Error).message}`, { 'retry-after': '5' });
    }
    return { claims, db, projectId };
  };

  deps.router.on('GET', base, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const limitText = ctx.query.get('limit') ?? '50';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 500) throw new HttpError(400, 'invalid_limit', `limit must be an integer from 1 to 500, got ${JSON.stringify(limitText)}`);
    sendJson(ctx.res, 200, await asCaller(db, claims, { op: 'list', projectId, limit }));
  });

  deps.router.on('POST', base, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const input = await readInput(ctx, deps.config.maxBodyBytes, ['body', 'user_id']);
    const body = requireBody(input);
    const userId: unknown = input.user_id ?? claims.sub;
    if (userId === undefined) throw new HttpError(400, 'invalid_body', 'user_id is required when the token has no sub claim');
    if (typeof userId !== 'string' || userId.length < 1 || userId.length > MAX_ID_CHARS) throw new HttpError(400, 'invalid_body', `user_id must be a string of 1 to ${MAX_ID_CHARS} characters`);
    sendJson(ctx.res, 201, await asCaller(db, claims, { op: 'insert', projectId, userId, body }));
  });

  deps.router.on('PATCH', `${base}/:id`, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const id = commentId(ctx);
    const body = requireBody(await readInput(ctx, deps.config.maxBodyBytes, ['body']));
    const row = await asCaller(db, claims, { op: 'update', projectId, id, body });
    if (!row) throw notFound(projectId, id);
    sendJson(ctx.res, 200, row);
  });

  deps.router.on('DELETE', `${base}/:id`, async (ctx) => {
    const { claims, db, projectId } = await caller(ctx);
    const id = commentId(ctx);
    if (!(await asCaller(db, claims, { op: 'delete', projectId, id }))) throw notFound(projectId, id);
    writeHead(ctx.res, 204, { 'cache-control': 'no-store' });
    ctx.res.end();
  });
}

interface CommentOperation {
  op: 'list' | 'insert' | 'update' | 'delete';
  projectId: string;
  id?: string;
  userId?: string;
  body?: string;
  limit?: number;
}

/**
 * Runs one comment operation as the caller — their role (so grants and RLS apply) and
 * their claims where policies read them (`auth.jwt()`, `request.jwt.claim.sub`) — in a
 * single statement (`realtime.fanout_comment`). Database refusals become the HTTP errors a
 * REST client expects. Returns the row (or list), or null when nothing matched.
 */
async function asCaller(db: Database, claims: Claims, o: CommentOperation): Promise<unknown> {
  try {
    const { rows } = await db.query<{ r: unknown }>('select realtime.fanout_comment($1, $2::jsonb, $3, $4::bigint, $5, $6, $7) as r', [
      o.op,
      JSON.stringify(claims),
      o.projectId,
      o.id ?? null,
      o.userId ?? null,
      o.body ?? null,
      o.limit ?? null,
    ]);
    return rows[0]?.r ?? null;
  } catch (err) {
    const code = sqlState(err);
    const message = (err as Error).message;
    if (code === '42501' || code === '22023' || code === '42P01') throw new HttpError(403, 'forbidden', message);
    if (code?.startsWith('23') || code?.startsWith('22')) throw new HttpError(400, 'invalid_body', message);
    if (isConnectionFailure(err)) throw new HttpError(503, 'database_unavailable', `the database is unavailable: ${message}`, { 'retry-after': '5' });
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
