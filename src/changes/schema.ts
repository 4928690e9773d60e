// The database side of Fanout, installed by `fanout migrate` (and automatically into the
// embedded PGlite database): Supabase's roles and `realtime` schema (`realtime.messages`,
// `realtime.topic()`, `realtime.send()`), the `supabase_realtime` publication, the seed's
// `project_comments` table, and the change capture the feed reads.
//
// Capture is a trigger-based outbox, so it works the same on PostgreSQL at any wal_level
// and on PGlite: every table in the `supabase_realtime` publication gets an AFTER ROW
// trigger that writes `to_jsonb(NEW)` / `to_jsonb(OLD)` with the writing transaction's id
// (xid8) into `realtime.fanout_changes` and NOTIFYs the gateway. An event trigger keeps the
// triggers in step with `ALTER PUBLICATION`, so a table added while the gateway is down is
// captured from that moment. The consumer reads the outbox in snapshot windows (see
// outbox.ts), which gives every committed change exactly once, in commit-window order,
// whatever the interleaving of concurrent transactions.
//
// Migrations are numbered; each runs once, in a transaction, under an advisory lock so two
// processes migrating the same database at once do not collide. Every statement is also
// idempotent on its own.
//
// It stays one file: nearly all of it is the SQL of the numbered migrations, in the order
// they run, with the few functions that apply them; splitting it would scatter one schema.
import type { Database } from './database.js';
import { BROADCAST_FROM_DATABASE } from './schema-broadcast.js';

export const PUBLICATION = 'supabase_realtime';
export const NOTIFY_CHANNEL = 'realtime_fanout';
export const CONSUMER = 'default';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

const ROLES = `
-- Supabase's API roles. Cluster-wide objects: another database may be creating them at the
-- same moment, so a duplicate is not an error.
do $$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      begin
        execute format('create role %I nologin noinherit%s', r, case when r = 'service_role' then ' bypassrls' else '' end);
      exception when duplicate_object or unique_violation then null;
      end;
    end if;
  end loop;
  -- The gateway switches to these roles to evaluate RLS; a non-superuser needs membership.
  if not (select rolsuper from pg_roles where rolname = current_user) then
    begin
      execute format('grant anon, authenticated, service_role to %I', current_user);
    exception when others then
      raise warning 'fanout: could not grant anon, authenticated, service_role to %: % (RLS checks need it)', current_user, sqlerrm;
    end;
  end if;
end $$;

create schema if not exists realtime;
create schema if not exists auth;
grant usage on schema realtime to anon, authenticated, service_role;
grant usage on schema auth to anon, authenticated, service_role;

-- Supabase's claim helpers for policies, unless the database already has them (a Supabase
-- database does).
do $$
begin
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb language sql stable as $f$
      select coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb
    $f$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text language sql stable as $f$
      select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''), auth.jwt() ->> 'role')
    $f$;
  end if;
  if to_regprocedure('auth.uid()') is null then
    -- Supabase's returns uuid; Fanout's user ids need not be uuids, so a non-uuid sub gives NULL.
    create function auth.uid() returns uuid language sql stable as $f$
      select case when s ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then s::uuid end
      from (select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''), auth.jwt() ->> 'sub') as s) x
    $f$;
  end if;
end $$;
`;

const MESSAGES = `
-- Broadcast-from-database and private-channel authorization, shaped as Supabase's.
create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
);
create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;

create or replace function realtime.topic() returns text language sql stable as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;

-- As in Supabase: runs with the caller's rights (so realtime.messages policies apply), adds
-- the message id to the payload, and never fails the caller's transaction.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true) returns void
language plpgsql as $$
declare
  message_id uuid := gen_random_uuid();
begin
  begin
    perform set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (message_id, case when payload ? 'id' then payload else jsonb_set(payload, '{id}', to_jsonb(message_id)) end, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end $$;
`;

/** PL/pgSQL (needs `rel regclass`): puts the capture trigger on every published table that lacks it (both versions of fanout_sync_triggers). */
const ADD_CAPTURE_TRIGGERS = `  for rel in
    select c.oid::regclass
    from pg_publication_tables p
    join pg_namespace n on n.nspname = p.schemaname
    join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
    where p.pubname = '${PUBLICATION}' and p.schemaname <> 'realtime' and c.relkind in ('r', 'p')
      and not exists (select 1 from pg_trigger t where t.tgrelid = c.oid and t.tgname = 'fanout_capture')
  loop
    execute format('create trigger fanout_capture after insert or update or delete on %s for each row execute function realtime.fanout_capture()', rel);
  end loop;`;

/** PL/pgSQL (needs `rel regclass`): takes the capture trigger off tables that left the publication (or, with `orWhen`, also when that SQL condition holds). */
function removeCaptureTriggers(orWhen: string): string {
  return `  for rel in
    select t.tgrelid::regclass
    from pg_trigger t
    join pg_class c on c.oid = t.tgrelid
    join pg_namespace n on n.oid = c.relnamespace
    where t.tgname = 'fanout_capture'
      and (${orWhen}not exists (select 1 from pg_publication_tables p where p.pubname = '${PUBLICATION}' and p.schemaname = n.nspname and p.tablename = c.relname))
  loop
    execute format('drop trigger fanout_capture on %s', rel);
  end loop;`;
}

const OUTBOX = `
create table if not exists realtime.fanout_changes (
  id bigint generated always as identity primary key,
  txid xid8 not null default pg_current_xact_id(),
  kind text not null,
  schema_name text not null,
  table_name text not null,
  action "char" not null,
  record jsonb,
  old_record jsonb,
  captured_at timestamptz not null default clock_timestamp()
);
create index if not exists fanout_changes_txid_id_idx on realtime.fanout_changes (txid, id);
revoke all on realtime.fanout_changes from public;

-- Where the consumer is: the snapshot whose visible changes have all been dispatched.
-- Initialized here, so changes made between migrate and the first start are delivered.
create table if not exists realtime.fanout_cursor (
  consumer text primary key,
  snapshot pg_snapshot not null,
  updated_at timestamptz not null default now()
);
revoke all on realtime.fanout_cursor from public;
insert into realtime.fanout_cursor (consumer, snapshot) values ('${CONSUMER}', pg_current_snapshot()) on conflict do nothing;

-- Runs as its owner so any writer can capture, with the time zone pinned so timestamptz
-- values read the same whoever wrote them.
create or replace function realtime.fanout_capture() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp set timezone to 'UTC' as $$
begin
  insert into realtime.fanout_changes (kind, schema_name, table_name, action, record, old_record)
  values (coalesce(tg_argv[0], 'change'), tg_table_schema, tg_table_name, left(tg_op, 1)::"char",
          case when tg_op <> 'DELETE' then to_jsonb(new) end,
          case when tg_op <> 'INSERT' then to_jsonb(old) end);
  perform pg_notify('${NOTIFY_CHANNEL}', '');
  return null;
end $$;
revoke all on function realtime.fanout_capture() from public;

drop trigger if exists fanout_broadcast on realtime.messages;
create trigger fanout_broadcast after insert on realtime.messages for each row
  when (new.extension = 'broadcast' and new.event is not null and new.payload is not null)
  execute function realtime.fanout_capture('broadcast');

-- Puts the capture trigger on every table of the publication and takes it off tables that
-- left it.
create or replace function realtime.fanout_sync_triggers() returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  rel regclass;
begin
${ADD_CAPTURE_TRIGGERS}
${removeCaptureTriggers('')}
end $$;
revoke all on function realtime.fanout_sync_triggers() from public;

-- Runs as its owner: whoever issued the DDL, the triggers it implies get made.
create or replace function realtime.fanout_sync_on_ddl() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  perform realtime.fanout_sync_triggers();
exception when others then
  -- Never fail the user's DDL; the gateway re-syncs when it starts.
  raise warning 'fanout: could not sync capture triggers: %', sqlerrm;
end $$;

do $$
begin
  -- Event triggers need a superuser; without one the gateway syncs at start-up instead.
  if (select rolsuper from pg_roles where rolname = current_user)
     and not exists (select 1 from pg_event_trigger where evtname = 'fanout_sync_triggers') then
    create event trigger fanout_sync_triggers on ddl_command_end
      when tag in ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
      execute function realtime.fanout_sync_on_ddl();
  end if;
end $$;

do $$
begin
  if not exists (select 1 from pg_publication where pubname = '${PUBLICATION}') then
    create publication ${PUBLICATION};
  end if;
end $$;
`;

const FEED_FUNCTIONS = `
-- The type to cast a filter value to. A column's regtype prints without its length, and
-- 'character' alone means character(1) (bit alone, bit(1)): casting 'ab' to it would keep 'a'.
create or replace function realtime.fanout_cast_type(t regtype) returns text
language sql immutable set search_path = pg_catalog as $$
  select case t when 'bpchar'::regtype then 'bpchar' when 'bit'::regtype then 'varbit' else t::text end
$$;

-- One filter condition evaluated by PostgreSQL itself (regular expressions, enum order,
-- jsonb, text under a linguistic collation, ...): the value cast to the column type,
-- compared with the filter value cast the same way. NULL when it cannot be evaluated.
create or replace function realtime.fanout_check_filter(op text, type_ regtype, val_1 text, val_2 text, negate boolean) returns boolean
language plpgsql stable set search_path = pg_catalog as $$
declare
  res boolean;
  t text := realtime.fanout_cast_type(type_);
begin
  if op = 'isdistinct' then
    execute format('select %L::%s is distinct from %L::%s', val_1, t, val_2, t) into res;
  elsif op = 'is' then
    if val_2 not in ('null', 'true', 'false', 'unknown') then
      raise exception 'invalid value for is filter: must be null, true, false, or unknown';
    end if;
    execute format('select %L::%s is %s', val_1, t, val_2) into res;
  else
    execute format('select %L::%s %s (%L::%s)', val_1, t,
      case op when 'eq' then '=' when 'neq' then '<>' when 'lt' then '<' when 'lte' then '<=' when 'gt' then '>' when 'gte' then '>='
              when 'in' then '= any' when 'like' then 'like' when 'ilike' then 'ilike' when 'match' then '~' when 'imatch' then '~*' end,
      val_2, case when op = 'in' then t || '[]' else t end) into res;
  end if;
  return case when negate then not res else res end;
exception when others then
  raise warning 'fanout: filter % % on % could not be evaluated: %', op, val_2, t, sqlerrm;
  return null;
end $$;

-- Validates a binding's filters and select list against a table as a role sees it, and
-- normalizes each filter value to its to_jsonb form. Raises with Supabase's messages.
create or replace function realtime.fanout_prepare_filters(entity regclass, role_ text, columns text[], ops text[], vals text[], selected text[])
returns jsonb language plpgsql stable set search_path = pg_catalog as $$
declare
  readable text[];
  out jsonb := '[]';
  i int;
  col_type regtype;
  base_name text;
  base_kind text;
  base_category text;
  norm jsonb;
  c text;
  cast_type text;
begin
  select coalesce(array_agg(a.attname::text), '{}') into readable
  from pg_attribute a
  where a.attrelid = entity and a.attnum > 0 and not a.attisdropped and has_column_privilege(role_, entity, a.attnum, 'SELECT');
  for i in 1 .. coalesce(array_length(columns, 1), 0) loop
    if not columns[i] = any(readable) then
      raise exception 'invalid column for filter %', columns[i];
    end if;
    select a.atttypid::regtype into col_type from pg_attribute a where a.attrelid = entity and a.attname = columns[i];
    cast_type := realtime.fanout_cast_type(col_type);
    select b.typname::text, b.typtype::text, b.typcategory::text into base_name, base_kind, base_category
    from pg_type t join pg_type b on b.oid = coalesce(nullif(t.typbasetype, 0), t.oid) where t.oid = col_type;
    if ops[i] = 'in' then
      execute format('select to_jsonb(%L::%s)', vals[i], cast_type || '[]') into norm;
      if coalesce(jsonb_array_length(norm), 0) > 100 then
        raise exception 'too many values for \`in\` filter. Maximum 100';
      end if;
    elsif ops[i] = 'is' then
      if vals[i] not in ('null', 'true', 'false', 'unknown') then
        raise exception 'invalid value for is filter: must be null, true, false, or unknown';
      end if;
      if vals[i] <> 'null' and col_type <> 'boolean'::regtype then
        raise exception 'is % filter requires a boolean column, got %', vals[i], col_type::text;
      end if;
      norm := to_jsonb(vals[i]);
    elsif ops[i] in ('like', 'ilike') then
      if base_category <> 'S' and not exists (select 1 from pg_operator where oprname = '~~' and oprleft = col_type) then
        raise exception 'operator % requires a text-compatible column type, got %', ops[i], col_type::text;
      end if;
      norm := to_jsonb(vals[i]);
    elsif ops[i] in ('match', 'imatch') then
      if base_category <> 'S' and not exists (
        select 1 from pg_operator
        where oprname = case when ops[i] = 'imatch' then '~*' else '~' end and oprleft = col_type and oprright = col_type and oprresult = 'boolean'::regtype
      ) then
        raise exception 'operator % requires a text-compatible column type, got %', ops[i], col_type::text;
      end if;
      begin
        perform '' ~ vals[i];
      exception when others then
        raise exception 'invalid regular expression for % filter: %', ops[i], sqlerrm;
      end;
      norm := to_jsonb(vals[i]);
    else
      execute format('select to_jsonb(%L::%s)', vals[i], cast_type) into norm;
    end if;
    out := out || jsonb_build_array(jsonb_build_object('sqlType', cast_type, 'typname', base_name, 'typtype', base_kind, 'value', norm));
  end loop;
  if selected is not null then
    foreach c in array selected loop
      if not c = any(readable) then
        raise exception 'invalid column for select %', c;
      end if;
    end loop;
  end if;
  return out;
end $$;

-- Row-level security for a batch of changes: for each distinct set of claims, switch to its
-- role with its claims and return which of the given primary keys the role may SELECT now
-- (the same check Supabase's apply_rls makes, for many rows and subscribers in one call).
create or replace function realtime.fanout_visible_keys(entity regclass, key_columns text[], checks jsonb)
returns table (check_index int, key_index int)
language plpgsql volatile set search_path = pg_catalog as $$
declare
  probe text;
  chk jsonb;
  n int := 0;
begin
  select format('select $2, (k.i - 1)::int from jsonb_array_elements($1) with ordinality as k(v, i) where exists (select 1 from %s t where %s)',
                entity, string_agg(format('t.%I = (k.v ->> %s)::%s', x.c, x.o - 1, realtime.fanout_cast_type(a.atttypid::regtype)), ' and ' order by x.o))
    into probe
  from unnest(key_columns) with ordinality as x(c, o)
  join pg_attribute a on a.attrelid = entity and a.attname = x.c;
  for chk in select value from jsonb_array_elements(checks) loop
    begin
      perform set_config('role', chk ->> 'role', true),
              set_config('request.jwt.claims', (chk -> 'claims')::text, true),
              set_config('request.jwt.claim.sub', coalesce(chk -> 'claims' ->> 'sub', ''), true),
              set_config('request.jwt.claim.role', chk ->> 'role', true);
      return query execute probe using chk -> 'keys', n;
    exception when others then
      raise warning 'fanout: RLS check on % as % failed: %', entity, chk ->> 'role', sqlerrm;
    end;
    n := n + 1;
  end loop;
  perform set_config('role', 'none', true);
end $$;

-- Private-channel authorization as Supabase evaluates it: with the user's role and claims
-- and realtime.topic() set, 'read' inserts one realtime.messages row per extension as the
-- gateway and selects them back as the user; 'write' inserts them as the user. Either way
-- the rows are rolled back. Returns the extensions allowed.
create or replace function realtime.fanout_channel_access(topic_ text, role_ text, claims jsonb, extensions text[], mode text) returns text[]
language plpgsql volatile set search_path = pg_catalog as $$
declare
  granted text[] := '{}';
  ids uuid[];
  ext text;
begin
  begin
    perform set_config('realtime.topic', topic_, true),
            set_config('request.jwt.claims', claims::text, true),
            set_config('request.jwt.claim.sub', coalesce(claims ->> 'sub', ''), true),
            set_config('request.jwt.claim.role', role_, true),
            set_config('request.headers', '{}', true);
    if mode = 'read' then
      with ins as (
        insert into realtime.messages (topic, extension) select topic_, e from unnest(extensions) e returning id
      ) select array_agg(id) into ids from ins;
      perform set_config('role', role_, true);
      select coalesce(array_agg(distinct m.extension), '{}') into granted from realtime.messages m where m.topic = topic_ and m.id = any(ids);
    else
      perform set_config('role', role_, true);
      foreach ext in array extensions loop
        begin
          insert into realtime.messages (topic, extension) values (topic_, ext);
          granted := granted || ext;
        exception when insufficient_privilege then null;
        end;
      end loop;
    end if;
    raise exception using errcode = 'FNRB0', message = 'roll back the probe rows';
  exception
    when sqlstate 'FNRB0' then null;
    when insufficient_privilege or invalid_parameter_value then granted := '{}';
  end;
  return granted;
end $$;
`;

// These switch roles on behalf of the caller they are given, so only the gateway (the
// role that ran the migration, which owns them) may call them.
const LOCK_DOWN = `
revoke all on function realtime.fanout_check_filter(text, regtype, text, text, boolean) from public;
revoke all on function realtime.fanout_prepare_filters(regclass, text, text[], text[], text[], text[]) from public;
revoke all on function realtime.fanout_visible_keys(regclass, text[], jsonb) from public;
revoke all on function realtime.fanout_channel_access(text, text, jsonb, text[], text) from public;
revoke all on function realtime.fanout_comment(text, jsonb, text, bigint, text, text, int) from public;
`;

const COMMENTS = `
-- The seed's comments (spike-003: comment updates through postgres_changes).
create table if not exists public.project_comments (
  id bigint generated by default as identity primary key,
  project_id text not null check (length(project_id) between 1 and 200),
  user_id text not null check (length(user_id) between 1 and 200),
  body text not null check (length(body) between 1 and 10000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists project_comments_project_id_created_at_idx on public.project_comments (project_id, created_at);
-- Full old rows, so a DELETE still carries project_id and reaches the project's filtered
-- subscribers (RLS then trims the delivered old record to the primary key, as Supabase does).
alter table public.project_comments replica identity full;
alter table public.project_comments enable row level security;
grant select on public.project_comments to anon, authenticated;
grant insert, update, delete on public.project_comments to authenticated;
grant all on public.project_comments to service_role;
grant usage, select on sequence public.project_comments_id_seq to authenticated, service_role;

do $$
begin
  if not exists (select 1 from pg_policies where schemaname = 'public' and tablename = 'project_comments' and policyname = 'comments are readable by everyone') then
    create policy "comments are readable by everyone" on public.project_comments for select to anon, authenticated using (true);
  end if;
  if not exists (select 1 from pg_policies where schemaname = 'public' and tablename = 'project_comments' and policyname = 'users add their own comments') then
    create policy "users add their own comments" on public.project_comments for insert to authenticated
      with check (user_id = (select auth.jwt() ->> 'sub'));
  end if;
  if not exists (select 1 from pg_policies where schemaname = 'public' and tablename = 'project_comments' and policyname = 'users edit their own comments') then
    create policy "users edit their own comments" on public.project_comments for update to authenticated
      using (user_id = (select auth.jwt() ->> 'sub')) with check (user_id = (select auth.jwt() ->> 'sub'));
  end if;
  if not exists (select 1 from pg_policies where schemaname = 'public' and tablename = 'project_comments' and policyname = 'users delete their own comments') then
    create policy "users delete their own comments" on public.project_comments for delete to authenticated
      using (user_id = (select auth.jwt() ->> 'sub'));
  end if;
end $$;

-- The comments API in one statement per request: the caller's claims and role are set
-- first, so every statement after them is checked by grants and RLS as that caller.
create or replace function realtime.fanout_comment(op text, claims jsonb, p_project text, p_id bigint, p_user text, p_body text, p_limit int)
returns jsonb language plpgsql volatile set search_path = pg_catalog as $$
declare
  result jsonb;
begin
  perform set_config('request.jwt.claims', claims::text, true),
          set_config('request.jwt.claim.sub', coalesce(claims ->> 'sub', ''), true),
          set_config('request.jwt.claim.role', claims ->> 'role', true),
          set_config('role', claims ->> 'role', true);
  if op = 'insert' then
    insert into public.project_comments as c (project_id, user_id, body) values (p_project, p_user, p_body) returning to_jsonb(c.*) into result;
  elsif op = 'update' then
    update public.project_comments as c set body = p_body where c.id = p_id and c.project_id = p_project returning to_jsonb(c.*) into result;
  elsif op = 'delete' then
    delete from public.project_comments as c where c.id = p_id and c.project_id = p_project returning jsonb_build_object('id', c.id) into result;
  elsif op = 'list' then
    select coalesce(jsonb_agg(x.row order by x.created_at desc, x.id desc), '[]') into result
    from (select to_jsonb(c.*) as row, c.created_at, c.id from public.project_comments c
          where c.project_id = p_project order by c.created_at desc, c.id desc limit p_limit) x;
  else
    raise exception 'unknown comment operation %', op;
  end if;
  return result;
end $$;

create or replace function public.project_comments_touch() returns trigger language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end $$;
drop trigger if exists project_comments_touch on public.project_comments;
create trigger project_comments_touch before update on public.project_comments for each row execute function public.project_comments_touch();

do $$
begin
  if not exists (select 1 from pg_publication_tables where pubname = '${PUBLICATION}' and schemaname = 'public' and tablename = 'project_comments')
     and not (select puballtables from pg_publication where pubname = '${PUBLICATION}') then
    alter publication ${PUBLICATION} add table public.project_comments;
  end if;
end $$;
`;

// Capture from the write-ahead log (src/changes/wal/): each consumer's cursor says how it
// captures. Capture triggers exist only while some consumer reads the outbox, so a database
// served from the WAL alone has no trigger and no extra write on its tables. A WAL consumer
// that took over from the outbox remembers the snapshot the slot started at (outbox_until):
// outbox rows up to it are still to be delivered until `snapshot` reaches it. A consumer
// going back to the outbox remembers the WAL position up to which the slot must still be
// read (wal_until), for transactions visible in its first outbox snapshot. Tables in
// `fanout_messages` carry realtime.send() rows through the same slot.
export const MESSAGES_PUBLICATION = 'fanout_messages';

const WAL_CAPTURE = `
alter table realtime.fanout_cursor add column if not exists capture text not null default 'outbox';
alter table realtime.fanout_cursor add column if not exists outbox_until pg_snapshot;
alter table realtime.fanout_cursor add column if not exists wal_until pg_lsn;
do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'fanout_cursor_capture_check') then
    alter table realtime.fanout_cursor add constraint fanout_cursor_capture_check check (capture in ('outbox', 'wal'));
  end if;
end $$;

create or replace function realtime.fanout_sync_triggers() returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  rel regclass;
  needed boolean := exists (select 1 from realtime.fanout_cursor where capture = 'outbox');
begin
  if needed then
${ADD_CAPTURE_TRIGGERS}
  end if;
${removeCaptureTriggers('not needed or ')}
  -- realtime.send() rows reach WAL consumers through the fanout_messages publication.
  if (select t.tgenabled <> 'D' from pg_trigger t where t.tgname = 'fanout_broadcast' and t.tgrelid = 'realtime.messages'::regclass) <> needed then
    execute format('alter table realtime.messages %s trigger fanout_broadcast', case when needed then 'enable' else 'disable' end);
  end if;
end $$;
revoke all on function realtime.fanout_sync_triggers() from public;

do $$
begin
  if not exists (select 1 from pg_publication where pubname = '${MESSAGES_PUBLICATION}') then
    create publication ${MESSAGES_PUBLICATION} for table realtime.messages with (publish = 'insert');
  end if;
end $$;
`;

export const MIGRATIONS: Migration[] = [
  { version: 1, name: 'realtime schema, change capture, project_comments', sql: ROLES + MESSAGES + OUTBOX + FEED_FUNCTIONS + COMMENTS + LOCK_DOWN },
  { version: 2, name: 'broadcast_changes, send_binary and binary_payload', sql: BROADCAST_FROM_DATABASE },
  { version: 3, name: 'capture from the write-ahead log', sql: WAL_CAPTURE },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export interface MigrationResult {
  applied: { version: number; name: string }[];
  version: number;
}

const LOCK_KEY = 7_453_031_001; // arbitrary, Fanout's own

/** Applies every migration the database does not have yet. Safe to run again and concurrently. */
export async function migrate(db: Database): Promise<MigrationResult> {
  const applied: { version: number; name: string }[] = [];
  for (const m of MIGRATIONS) {
    const done = await db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock($1)', [LOCK_KEY]);
      await tx.query(`create schema if not exists realtime`);
      await tx.query(`create table if not exists realtime.fanout_migrations (version int primary key, name text not null, applied_at timestamptz not null default now())`);
      const { rows } = await tx.query<{ n: number }>('select count(*)::int as n from realtime.fanout_migrations where version = $1', [m.version]);
      if (rows[0]!.n > 0) return false;
      await runScript(tx, m.sql);
      await tx.query('insert into realtime.fanout_migrations (version, name) values ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (done) applied.push({ version: m.version, name: m.name });
  }
  await syncCaptureTriggers(db);
  return { applied, version: LATEST_VERSION };
}

/**
 * A migration script as separate statements, so one transaction can carry it on both
 * drivers. Splits on semicolons at the end of a line outside dollar-quoted bodies.
 */
async function runScript(tx: { query(sql: string): Promise<unknown> }, sql: string): Promise<void> {
  for (const statement of splitStatements(sql)) await tx.query(statement);
}

export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current = '';
  let dollar: string | null = null;
  for (const line of sql.split('\n')) {
    const trimmed = line.trim();
    if (!dollar && (trimmed === '' || trimmed.startsWith('--'))) continue;
    current += line + '\n';
    for (const m of line.matchAll(/\$[A-Za-z_]*\$/g)) {
      if (dollar === null) dollar = m[0];
      else if (dollar === m[0]) dollar = null;
    }
    if (dollar === null && /;\s*$/.test(line)) {
      out.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** The migration version the database is at (0 without Fanout's schema). */
export async function schemaVersion(db: Database): Promise<number> {
  const { rows: exists } = await db.query<{ ok: boolean }>(`select to_regclass('realtime.fanout_migrations') is not null as ok`);
  if (!exists[0]?.ok) return 0;
  const { rows } = await db.query<{ v: number }>('select coalesce(max(version), 0)::int as v from realtime.fanout_migrations');
  return rows[0]?.v ?? 0;
}

/** Re-applies capture triggers to the publication's tables (for databases without the event trigger). */
export async function syncCaptureTriggers(db: Database): Promise<void> {
  await db.query('select realtime.fanout_sync_triggers()');
}
