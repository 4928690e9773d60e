// Migration 2: broadcast from the database as a current Supabase project has it.
//
//  - `realtime.messages.binary_payload` (bytea) beside `payload` (jsonb), at most one of
//    them set (Supabase's `messages_payload_exclusive` check, NOT VALID as theirs is);
//  - `realtime.send_binary(payload bytea, event, topic, private)`: Supabase's definition;
//  - `realtime.broadcast_changes(topic_name, event_name, operation, table_name,
//    table_schema, new, old, level)`: Supabase's definition, so the trigger functions their
//    docs show work as written (it calls `realtime.send`, which stores the row in
//    `realtime.messages` with the caller's rights and adds the message id to the payload);
//  - the capture trigger on `realtime.messages` now takes a row with either payload, and
//    never one with neither (see message-broadcast.ts: one rule for live and replay).
//
// Sources: supabase/realtime lib/realtime/tenants/repo/migrations/
// 20240919163303_add_payload_to_messages.ex (broadcast_changes),
// 20260514120000_add_binary_payload_to_messages.ex, 20260603120000_add_send_binary_function.ex
// and 20260605120000_rename_broadcast_send_warning.ex (send_binary, the check constraint).
export const BROADCAST_FROM_DATABASE = `
alter table realtime.messages add column if not exists binary_payload bytea;

do $$
begin
  if not exists (select 1 from pg_constraint where conrelid = 'realtime.messages'::regclass and conname = 'messages_payload_exclusive') then
    alter table realtime.messages add constraint messages_payload_exclusive check (payload is null or binary_payload is null) not valid;
  end if;
end $$;

-- As in Supabase: runs with the caller's rights (so realtime.messages policies apply),
-- sets realtime.topic() for them, and never fails the caller's transaction.
create or replace function realtime.send_binary(payload bytea, event text, topic text, private boolean default true) returns void
language plpgsql as $$
declare
  generated_id uuid := gen_random_uuid();
begin
  begin
    perform set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, binary_payload, event, topic, private, extension)
    values (generated_id, payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end $$;

-- Supabase's helper for row triggers: the row change as {schema, table, operation, record,
-- old_record} sent to a private channel through realtime.send (which adds the message id).
create or replace function realtime.broadcast_changes(topic_name text, event_name text, operation text, table_name text, table_schema text, new record, old record, level text default 'ROW') returns void
language plpgsql as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation = 'INSERT' or operation = 'UPDATE' or operation = 'DELETE' then
    row_data := jsonb_build_object('old_record', old, 'record', new, 'operation', operation, 'table', table_name, 'schema', table_schema);
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
exception
  when others then
    raise exception 'Failed to process the row: %', sqlerrm;
end $$;

-- to_jsonb(bytea) follows bytea_output: pin the hex form the gateway decodes, whatever the
-- writer's session says.
alter function realtime.fanout_capture() set bytea_output to 'hex';

drop trigger if exists fanout_broadcast on realtime.messages;
create trigger fanout_broadcast after insert on realtime.messages for each row
  when (new.extension = 'broadcast' and new.event is not null and (new.payload is not null or new.binary_payload is not null))
  execute function realtime.fanout_capture('broadcast');
`;
