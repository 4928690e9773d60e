// A start-up check of the role the gateway logs in to PostgreSQL as. The gateway runs each
// subscriber's queries (RLS checks, private-channel policies) after `SET ROLE <JWT role>`;
// a superuser login role may assume any role and bypasses row-level security itself, so a
// mistake anywhere (a role claim that slipped through, a query run before SET ROLE) would
// act as superuser. A dedicated login role granted only anon, authenticated and
// service_role (as Supabase's `authenticator`) confines it; see the README's deployment section.
import type { Logger } from '../core/log.js';
import type { Database } from './database.js';

export async function warnIfSuperuser(db: Pick<Database, 'query'>, log: Logger): Promise<boolean> {
  const { rows } = await db.query<{ role: string; superuser: boolean }>(`select current_user::text as role, rolsuper as superuser from pg_roles where rolname = current_user`);
  const row = rows[0];
  if (!row?.superuser) return false;
  log.warn(
    { role: row.role },
    `the gateway connects to PostgreSQL as superuser "${row.role}": connect as a dedicated login role that is not a superuser and is granted only the roles tokens may name (anon, authenticated, service_role), as Supabase's "authenticator" is; see "Database roles" in the README`,
  );
  return true;
}
