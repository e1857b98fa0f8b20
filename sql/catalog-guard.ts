import { SqlError, SqlState } from '../engine/errors.ts';
import { arrayLiteral } from '../engine/sql-text.ts';
import type { AstFields, AstNode } from './ast.ts';
import { fieldsOf, stringValue } from './ast.ts';
import type { StoreConnection } from '../engine/store.ts';

/**
 * Keeps Sluice's catalog in step with the store whatever drops objects
 * (DROP SCHEMA … CASCADE, DROP OWNED, a cascade from a table), and keeps its
 * internals from being dropped: a `sql_drop` event trigger, which sees every
 * object a statement drops before the statement commits.
 *
 * - A continuous view or transform whose view, `_mrel` or stream is dropped
 *   leaves `sluice.views` in the same transaction, so a restart never finds
 *   a view without its parts.
 * - Dropping the `pipelinedb`/`kafka` servers, the `sluice_stream` wrapper,
 *   the `sluice`, `pipelinedb` and `pipeline_kafka` schemas or anything in
 *   them fails with 2BP01, as a dependency would in PipelineDB, unless Sluice
 *   itself drops what it made (a transform's trigger table) in a transaction
 *   marked with `allowInternalDrops`.
 */
export const catalogGuardSql = `
-- SECURITY DEFINER: any role's DROP fires it, and it must read and prune Sluice's catalog whatever that role may do.
CREATE OR REPLACE FUNCTION sluice.guard_drops() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $guard$
DECLARE
  dropped record;
BEGIN
  IF coalesce(current_setting('sluice.internal_ddl', true), '') <> 'on' THEN
    FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
      IF (dropped.object_type = 'schema' AND dropped.object_name IN ('sluice', 'pipelinedb', 'pipeline_kafka'))
         OR (dropped.object_type = 'server' AND dropped.object_name IN ('pipelinedb', 'kafka'))
         OR (dropped.object_type = 'foreign-data wrapper' AND dropped.object_name = 'sluice_stream')
         OR (dropped.object_type = 'user mapping' AND dropped.object_identity ~ ' on server (pipelinedb|kafka)$')
         OR (dropped.schema_name IN ('sluice', 'pipelinedb', 'pipeline_kafka')) THEN
        RAISE EXCEPTION 'cannot drop % % because Sluice depends on it', dropped.object_type, dropped.object_identity
          USING ERRCODE = 'dependent_objects_still_exist',
                HINT = 'Streams, continuous views and Kafka sources need Sluice''s own schemas, servers and catalog. Drop your streams and views instead.';
      END IF;
    END LOOP;
  END IF;
  DELETE FROM sluice.views v USING pg_event_trigger_dropped_objects() o
  WHERE (o.object_type IN ('view', 'materialized view') AND o.schema_name = v.schema AND o.object_name = v.name)
     OR (o.object_type = 'foreign table' AND o.schema_name = v.stream_schema AND o.object_name = v.stream)
     OR (o.object_type = 'table' AND o.schema_name = v.schema AND o.object_name = v.plan->>'mrel');
END
$guard$;
DO $$
BEGIN
  -- Only a superuser may create event triggers: without one, drops are not guarded (the start says so).
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'sluice_guard_drops') AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    CREATE EVENT TRIGGER sluice_guard_drops ON sql_drop EXECUTE FUNCTION sluice.guard_drops();
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS sluice.broken_views (
  schema text NOT NULL,
  name text NOT NULL,
  reason text NOT NULL,
  since timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema, name)
);
`;

/** Lets this transaction drop objects Sluice made in its own schemas (see catalogGuardSql). */
export async function allowInternalDrops(conn: StoreConnection): Promise<void> {
  await conn.query("SELECT set_config('sluice.internal_ddl', 'on', true)");
}

/** What a start could not load, for `SELECT * FROM sluice.broken_views`: replaced at every start. */
export async function recordBrokenViews(conn: StoreConnection, broken: readonly { schema: string; name: string; reason: string }[]): Promise<void> {
  await conn.exec('DELETE FROM sluice.broken_views');
  if (broken.length === 0) return;
  await conn.query('INSERT INTO sluice.broken_views (schema, name, reason) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING', [
    arrayLiteral(broken.map((b) => b.schema)),
    arrayLiteral(broken.map((b) => b.name)),
    arrayLiteral(broken.map((b) => b.reason)),
  ]);
}

const protectedSchemas = new Set(['sluice', 'pipelinedb', 'pipeline_kafka']);
/** Top-level objects Sluice needs, by DROP's object type. */
const protectedObjects: Record<string, ReadonlySet<string>> = {
  OBJECT_SCHEMA: protectedSchemas,
  OBJECT_EVENT_TRIGGER: new Set(['sluice_guard_drops']),
  OBJECT_FOREIGN_SERVER: new Set(['pipelinedb', 'kafka']),
  OBJECT_FDW: new Set(['sluice_stream']),
  OBJECT_EXTENSION: new Set(['postgres_fdw']),
};
/** DROP's object type as PostgreSQL names it in messages (`OBJECT_FOREIGN_TABLE` → `foreign table`). */
function objectTypeLabel(type: string): string {
  if (type === 'OBJECT_FOREIGN_SERVER') return 'server';
  if (type === 'OBJECT_FDW') return 'foreign-data wrapper';
  return type.replace(/^OBJECT_/, '').replaceAll('_', ' ').toLowerCase();
}

/**
 * The drops the event trigger cannot refuse because they would take it with
 * them (its schema, its function, the trigger itself), and drops of Sluice's
 * servers and wrapper, which PostgreSQL would refuse by listing Sluice's
 * internal dependents: refused before they reach the store, with the
 * trigger's message.
 */
export function protectedDropError(stmt: AstFields): SqlError | undefined {
  const type = stmt.removeType as string;
  for (const object of (stmt.objects as AstNode[] | undefined) ?? []) {
    const name = objectName(object);
    const hit = (name.length === 1 && protectedObjects[type]?.has(name[0])) || (name.length > 1 && protectedSchemas.has(name[0]));
    if (hit) {
      return new SqlError(SqlState.dependentObjectsStillExist, `cannot drop ${objectTypeLabel(type)} ${name.join('.')} because Sluice depends on it`, {
        hint: "Streams, continuous views and Kafka sources need Sluice's own schemas, servers and catalog. Drop your streams and views instead.",
      });
    }
  }
  return undefined;
}

/** The parts of a DROP's object name (`schema.name`, a function's name without its arguments). */
function objectName(object: AstNode): string[] {
  const withArgs = fieldsOf(object, 'ObjectWithArgs');
  const list = withArgs ? (withArgs.objname as AstNode[]) : ((fieldsOf(object, 'List')?.items as AstNode[] | undefined) ?? [object]);
  return list.map((part) => stringValue(part) ?? '');
}
