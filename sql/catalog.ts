import type { StoreConnection } from '../engine/store.ts';
import { Stream, type StreamColumn } from '../engine/stream.ts';
import type { ViewPlan } from '../engine/view-plan.ts';
import { reaggregateFunctionsSql } from '../engine/reaggregate.ts';
import { storeAggregatesSql } from '../engine/aggregates.ts';
import { sketchFunctionsSql } from '../engine/sketch-functions.ts';
import { catalogGuardSql } from './catalog-guard.ts';
import { statsCatalogSql } from './stats-views.ts';

/**
 * The catalog lives in the serving store, so a restart recovers everything.
 * Streams are foreign tables of the `pipelinedb` server (so `\d`,
 * information_schema and every BI tool see them with their columns);
 * continuous views are rows of `sluice.views` beside their `_mrel` tables.
 */

export const streamServer = 'pipelinedb';
/** Streams declared on this server are Kafka topics (`OPTIONS (brokers …, topic …, format …)`). */
export const kafkaServer = 'kafka';

const bootstrapSql = `
CREATE SCHEMA IF NOT EXISTS sluice;
CREATE TABLE IF NOT EXISTS sluice.views (
  schema text NOT NULL,
  name text NOT NULL,
  stream_schema text NOT NULL,
  stream text NOT NULL,
  definition text NOT NULL,
  plan jsonb NOT NULL,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema, name)
);
ALTER TABLE sluice.views ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_foreign_data_wrapper WHERE fdwname = 'sluice_stream') THEN
    CREATE FOREIGN DATA WRAPPER sluice_stream;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = '${streamServer}') THEN
    CREATE SERVER ${streamServer} FOREIGN DATA WRAPPER sluice_stream;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = '${kafkaServer}') THEN
    CREATE SERVER ${kafkaServer} FOREIGN DATA WRAPPER sluice_stream;
  END IF;
END $$;
CREATE SCHEMA IF NOT EXISTS pipelinedb;
-- "Now" for reading sliding windows: the session may pin it (SET sluice.now = '…') to look at a window at a chosen instant.
CREATE OR REPLACE FUNCTION sluice.now() RETURNS timestamptz LANGUAGE sql STABLE AS
  $$ SELECT coalesce(nullif(current_setting('sluice.now', true), '')::timestamptz, clock_timestamp()) $$;
CREATE OR REPLACE FUNCTION pipelinedb.version() RETURNS text LANGUAGE sql AS $$ SELECT 'Sluice 0.1.0 (PipelineDB 1.0 compatible)'::text $$;
CREATE OR REPLACE FUNCTION pipelinedb.flush() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
-- pipelinedb.insert_into_stream('s1'[, 's2' …]) as the function of a trigger on a table: each row goes into the
-- streams, its columns by name (those the stream lacks are left out, those the row lacks are NULL).
CREATE OR REPLACE FUNCTION pipelinedb.insert_into_stream() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  target text;
BEGIN
  IF TG_LEVEL <> 'ROW' OR TG_OP NOT IN ('INSERT', 'UPDATE') THEN
    RAISE EXCEPTION 'pipelinedb.insert_into_stream must be an AFTER INSERT or UPDATE … FOR EACH ROW trigger' USING ERRCODE = 'feature_not_supported';
  END IF;
  FOREACH target IN ARRAY TG_ARGV LOOP
    EXECUTE format('INSERT INTO %s SELECT * FROM jsonb_populate_record(NULL::%s, $1)', target::regclass, target::regclass) USING to_jsonb(NEW);
  END LOOP;
  RETURN NULL;
END $$;
-- PipelineDB's columns first (id, schema, name, active, query; transforms: tgfunc, tgargs), then Sluice's.
-- Catalogs made before had other columns first, which CREATE OR REPLACE VIEW cannot reorder.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('pipelinedb.views') AND attnum = 1 AND attname <> 'id') THEN
    PERFORM set_config('sluice.internal_ddl', 'on', true);
    DROP FUNCTION IF EXISTS pipelinedb.get_views();
    DROP VIEW pipelinedb.views;
    DROP FUNCTION IF EXISTS pipelinedb.get_transforms();
    DROP VIEW IF EXISTS pipelinedb.transforms;
    PERFORM set_config('sluice.internal_ddl', 'off', true);
  END IF;
END $$;
CREATE OR REPLACE VIEW pipelinedb.views AS
  SELECT to_regclass(format('%I.%I', v.schema, v.name))::oid AS id, v.schema, v.name, v.active, v.definition AS query,
         v.stream_schema, v.stream, v.created_at
  FROM sluice.views v WHERE NOT v.plan ? 'transform';
CREATE OR REPLACE FUNCTION pipelinedb.get_views() RETURNS SETOF pipelinedb.views LANGUAGE sql AS $$ SELECT * FROM pipelinedb.views $$;
CREATE OR REPLACE VIEW pipelinedb.transforms AS
  -- A transform's relation is its output stream.
  SELECT to_regclass(format('%I.%I', v.schema, v.name || '_osrel'))::oid AS id, v.schema, v.name, v.active,
         CASE
           WHEN v.plan->'transform' ? 'triggerTable' THEN
             (SELECT t.tgfoid::regproc::text FROM pg_trigger t
              WHERE t.tgrelid = to_regclass(format('%I.%I', v.plan->'transform'->'triggerTable'->>'schema', v.plan->'transform'->'triggerTable'->>'name'))
                AND NOT t.tgisinternal LIMIT 1)
           WHEN jsonb_array_length(coalesce(v.plan->'transform'->'insertInto', '[]')) > 0 THEN 'pipelinedb.insert_into_stream'
           WHEN v.plan->'transform' ? 'kafka' THEN 'pipeline_kafka.emit_tuple'
         END AS tgfunc,
         ARRAY(SELECT CASE WHEN s->>'schema' = 'public' THEN quote_ident(s->>'name') ELSE format('%I.%I', s->>'schema', s->>'name') END FROM jsonb_array_elements(coalesce(v.plan->'transform'->'insertInto', '[]')) AS s) AS tgargs,
         v.definition AS query, v.stream_schema, v.stream,
         v.plan->'transform'->'insertInto' AS insert_into, v.plan->'transform' ? 'triggerTable' AS has_outputfunc, v.created_at
  FROM sluice.views v WHERE v.plan ? 'transform';
CREATE OR REPLACE FUNCTION pipelinedb.get_transforms() RETURNS SETOF pipelinedb.transforms LANGUAGE sql AS $$ SELECT * FROM pipelinedb.transforms $$;
CREATE OR REPLACE VIEW pipelinedb.streams AS
  SELECT n.nspname AS schema, c.relname AS name,
         -- the continuous views and transforms reading the stream, as PipelineDB lists them
         ARRAY(SELECT v.schema || '.' || v.name FROM sluice.views v WHERE v.stream_schema = n.nspname AND v.stream = c.relname ORDER BY v.created_at, v.name) AS queries
  FROM pg_foreign_table ft
  JOIN pg_foreign_server s ON s.oid = ft.ftserver
  JOIN pg_class c ON c.oid = ft.ftrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE s.srvname IN ('${streamServer}', '${kafkaServer}')
    -- output streams (output_of('v')) are the views' own, not the user's
    AND NOT EXISTS (SELECT 1 FROM unnest(ft.ftoptions) AS o WHERE o LIKE 'output_of=%');
CREATE OR REPLACE FUNCTION pipelinedb.get_streams() RETURNS SETOF pipelinedb.streams LANGUAGE sql AS $$ SELECT * FROM pipelinedb.streams $$;
-- Each stream (output streams too) with the views and transforms reading it.
CREATE OR REPLACE VIEW pipelinedb.stream_readers AS
  SELECT v.stream_schema AS schema, v.stream, array_agg(v.schema || '.' || v.name ORDER BY v.created_at, v.name) AS queries
  FROM sluice.views v GROUP BY v.stream_schema, v.stream;
`;

/** PipelineDB's time functions, in \`public\` where a continuous view's query (PostgreSQL) finds them. */
const publicFunctionsSql = `
-- PipelineDB's time functions, where a continuous view's query (PostgreSQL) finds them.
-- date_round: binned from 2000-01-01 UTC; a step with months or years counts them as extract(epoch) does
-- (30 days, 365.25 days), as PipelineDB's does; a NULL step leaves the timestamp as it is.
CREATE OR REPLACE FUNCTION public.date_round(ts timestamptz, step interval) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN step IS NULL THEN ts
              WHEN extract(month FROM step) = 0 AND extract(year FROM step) = 0 THEN date_bin(step, ts, timestamptz '2000-01-01 00:00:00+00')
              ELSE date_bin(extract(epoch FROM step) * interval '1 second', ts, timestamptz '2000-01-01 00:00:00+00') END $$;
CREATE OR REPLACE FUNCTION public.year(ts timestamptz) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT date_trunc('year', ts) $$;
CREATE OR REPLACE FUNCTION public.month(ts timestamptz) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT date_trunc('month', ts) $$;
CREATE OR REPLACE FUNCTION public.day(ts timestamptz) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT date_trunc('day', ts) $$;
CREATE OR REPLACE FUNCTION public.hour(ts timestamptz) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT date_trunc('hour', ts) $$;
CREATE OR REPLACE FUNCTION public.minute(ts timestamptz) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT date_trunc('minute', ts) $$;
CREATE OR REPLACE FUNCTION public.second(ts timestamptz) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT date_trunc('second', ts) $$;
`;

/**
 * Creates or updates Sluice's catalog in the store. Returns what it had to
 * repair on the way (a dropped \`public\` schema, where PipelineDB's
 * functions live, is made again as PostgreSQL makes it), for the log.
 */
export async function bootstrapCatalog(conn: StoreConnection): Promise<string[]> {
  const hasPublic = (await conn.query("SELECT to_regnamespace('public') IS NOT NULL")).rows[0][0] === 't';
  const repairPublic = hasPublic ? '' : 'CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;';
  await conn.exec(`BEGIN; ${repairPublic} ${bootstrapSql} ${publicFunctionsSql} ${catalogGuardSql} ${statsCatalogSql} ${reaggregateFunctionsSql} ${storeAggregatesSql} ${sketchFunctionsSql} COMMIT;`);
  const problems = hasPublic ? [] : ["schema public had been dropped: Sluice made it again (owned by pg_database_owner, USAGE for everyone), since PipelineDB's functions (date_round, hll_cardinality, …) live there"];
  const guarded = (await conn.query("SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'sluice_guard_drops')")).rows[0][0] === 't';
  if (!guarded) problems.push("Sluice's role is not a superuser, so it cannot create the event trigger that keeps its catalog whole: a DROP SCHEMA … CASCADE can leave views in sluice.views that no longer exist, and Sluice's own schemas can be dropped");
  return problems;
}

export async function loadStreams(conn: StoreConnection): Promise<Stream[]> {
  const result = await conn.query(`
    SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.atttypmod, a.atttypid, CASE WHEN s.srvname = $2 THEN array_to_json(ft.ftoptions)::text END
    FROM pg_foreign_table ft
    JOIN pg_foreign_server s ON s.oid = ft.ftserver
    JOIN pg_class c ON c.oid = ft.ftrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    WHERE s.srvname IN ($1, $2)
    ORDER BY n.nspname, c.relname, a.attnum`, [streamServer, kafkaServer]);
  const byName = new Map<string, { schema: string; name: string; columns: StreamColumn[]; options?: Record<string, string> }>();
  for (const [schema, name, column, type, typeName, typmod, typeOid, options] of result.rows as string[][]) {
    const key = `${schema}.${name}`;
    let entry = byName.get(key);
    if (!entry) byName.set(key, (entry = { schema, name, columns: [], options: options ? parseOptions(options) : undefined }));
    entry.columns.push({ name: column, type, typeName, typmod: Number(typmod), typeOid: Number(typeOid) });
  }
  return [...byName.values()].map((s) => new Stream(s.schema, s.name, s.columns, s.options));
}

/** `ftoptions` ({"topic=x", …}) as a record. */
function parseOptions(json: string): Record<string, string> {
  const options: Record<string, string> = {};
  for (const item of JSON.parse(json) as string[]) {
    const eq = item.indexOf('=');
    options[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return options;
}

/** The continuous views and transforms of the catalog, in creation order, their plans as stored (JSON text). */
export async function loadViewPlans(conn: StoreConnection): Promise<{ schema: string; name: string; plan: string; active: boolean }[]> {
  const result = await conn.query('SELECT schema, name, plan::text, active FROM sluice.views ORDER BY created_at, name');
  return result.rows.map(([schema, name, plan, active]) => ({ schema: schema as string, name: name as string, plan: plan as string, active: active === 't' }));
}

/** `schema.name` of every continuous view and transform the catalog holds. */
export async function catalogViewNames(conn: StoreConnection): Promise<Set<string>> {
  const result = await conn.query("SELECT schema || '.' || name FROM sluice.views");
  return new Set(result.rows.map(([key]) => key as string));
}

/** pipelinedb.activate/deactivate: a deactivated view ignores its stream until activated again. */
export async function setViewActive(conn: StoreConnection, schema: string, name: string, active: boolean): Promise<void> {
  await conn.query('UPDATE sluice.views SET active = $3 WHERE schema = $1 AND name = $2', [schema, name, active ? 't' : 'f']);
}

export async function saveViewPlan(conn: StoreConnection, plan: ViewPlan): Promise<void> {
  await conn.query(
    'INSERT INTO sluice.views (schema, name, stream_schema, stream, definition, plan) VALUES ($1, $2, $3, $4, $5, $6)',
    [plan.schema, plan.name, plan.stream.schema, plan.stream.name, plan.definition, JSON.stringify(plan)],
  );
}

export async function updateViewPlan(conn: StoreConnection, plan: ViewPlan): Promise<void> {
  await conn.query('UPDATE sluice.views SET plan = $3 WHERE schema = $1 AND name = $2', [plan.schema, plan.name, JSON.stringify(plan)]);
}

export async function deleteViewPlan(conn: StoreConnection, schema: string, name: string): Promise<void> {
  await conn.query('DELETE FROM sluice.views WHERE schema = $1 AND name = $2', [schema, name]);
}

/** The schema unqualified names resolve to (the first existing schema of the search_path). */
export async function currentSchema(conn: StoreConnection): Promise<string> {
  const result = await conn.query('SELECT current_schema()');
  return (result.rows[0]?.[0] as string | null) ?? 'public';
}
