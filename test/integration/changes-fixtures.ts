// Tables, policies, rows and filter cases shared by the change-feed suites (direct and
// end to end): each operator case pairs a filter as the client sends it with the same
// condition in SQL, whose result on ITEMS is the truth the delivered rows must equal.
export const SETUP = `
create type public.mood as enum ('sad', 'ok', 'happy');
create table public.items (
  id bigint primary key,
  name text,
  qty int,
  price numeric,
  flag boolean,
  created timestamptz,
  code char(4),
  mood public.mood,
  doc jsonb,
  project_id text
);
alter table public.items replica identity full;
grant select on public.items to anon, authenticated;

create table public.notes (id bigint primary key, owner text not null, body text);
alter table public.notes enable row level security;
create policy own_notes on public.notes for select to authenticated using (owner = auth.jwt() ->> 'sub');
grant select on public.notes to authenticated, service_role;

create table public.plain (id bigint primary key, a text, b text, secret text);
grant select (id, a, b) on public.plain to anon;

create table public.nokey (a int, b text);
alter table public.nokey replica identity full;
grant select on public.nokey to anon;

create table public.unpublished (id int primary key);

alter publication supabase_realtime add table public.items, public.notes, public.plain, public.nokey;

create policy "members read their room" on realtime.messages for select to authenticated
  using (realtime.topic() = 'room:' || (auth.jwt() ->> 'sub'));
create policy "members write their room" on realtime.messages for insert to authenticated
  with check (realtime.topic() = 'room:' || (auth.jwt() ->> 'sub') and extension = 'broadcast');
`;

export const ITEMS = `insert into public.items (id, name, qty, price, flag, created, code, mood, doc) values
  (1, 'apple', 5, 1.50, true, '2024-01-01T00:00:00Z', 'ab', 'happy', '{"a":1}'),
  (2, 'Banana', 10, 10, false, '2024-06-01T12:00:00.5Z', 'abcd', 'sad', '{"a":2}'),
  (3, 'cherry, ripe', null, 100.25, null, null, null, null, null),
  (4, 'apple pie', 9, 9.99, true, '2023-12-31T23:59:59Z', 'zz', 'ok', '{"a":1}'),
  (5, 'Äpfel', 100, -1, false, '2025-01-01T00:00:00Z', 'ab  ', 'happy', '{"b":[1,2]}'),
  (6, null, 0, 0, true, '2024-01-01T00:00:00Z', 'x', 'sad', null)`;

/** filter as the client sends it → the same condition in SQL, whose result is the truth. */
export const OPERATOR_CASES: [string, string][] = [
  ['qty=eq.10', 'qty = 10'],
  ['qty=neq.10', 'qty <> 10'],
  ['qty=lt.10', 'qty < 10'],
  ['qty=lte.9', 'qty <= 9'],
  ['qty=gt.9', 'qty > 9'],
  ['qty=gte.10', 'qty >= 10'],
  ['price=gt.9.990', 'price > 9.990'],
  ['price=in.(1.5,10)', 'price in (1.5, 10)'],
  ['id=in.(1,3,5)', 'id in (1, 3, 5)'],
  ['id=not.in.(1,2)', 'not (id in (1, 2))'],
  ['name=like.apple%', "name like 'apple%'"],
  ['name=ilike.APPLE%', "name ilike 'APPLE%'"],
  ['name=like.%a_a%', "name like '%a_a%'"],
  ['name=is.null', 'name is null'],
  ['name=not.is.null', 'name is not null'],
  ['flag=is.true', 'flag is true'],
  ['flag=is.false', 'flag is false'],
  ['flag=not.is.true', 'flag is not true'],
  ['name=match.^[a-c]', "name ~ '^[a-c]'"],
  ['name=imatch.^b', "name ~* '^b'"],
  ['name=not.match.e$', "not (name ~ 'e$')"],
  ['qty=isdistinct.10', 'qty is distinct from 10'],
  ['qty=not.isdistinct.10', 'qty is not distinct from 10'],
  ['qty=not.eq.10', 'not (qty = 10)'],
  ['qty=gt.0,qty=lt.50', 'qty > 0 and qty < 50'],
  ['name=eq."cherry, ripe"', "name = 'cherry, ripe'"],
  ['name=in.("cherry, ripe",apple)', "name in ('cherry, ripe', 'apple')"],
  ['name=gt.b', "name > 'b'"],
  ['name=neq.apple', "name <> 'apple'"],
  ['created=gt.2024-01-01T00:00:00Z', "created > '2024-01-01T00:00:00Z'"],
  ['created=lte.2024-06-01 12:00:00.5+00', "created <= '2024-06-01 12:00:00.5+00'"],
  ['code=eq.ab', "code = 'ab'"],
  ['mood=gt.sad', "mood > 'sad'"],
  ['mood=eq.happy', "mood = 'happy'"],
  ['doc=eq.{"a":1}', `doc = '{"a":1}'`],
  ['id=gte.2,name=ilike.%e%,flag=not.is.null', "id >= 2 and name ilike '%e%' and flag is not null"],
];
