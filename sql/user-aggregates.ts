import { createHash } from 'node:crypto';
import { SqlError, SqlState } from '../engine/errors.ts';
import { quoteLiteral } from '../engine/sql-text.ts';
import { rolledBack, type StoreConnection } from '../engine/store.ts';
import type { TypeRef, UserAggregatePlan } from '../engine/view-plan.ts';

/**
 * User-defined aggregates in continuous views, as PipelineDB allowed them:
 * any aggregate with a combine function. A batch's partial state comes from a
 * helper aggregate with the same transition function and state but no final
 * function (PostgreSQL has no other way to give an aggregate's state in SQL);
 * the stored and partial states merge with the combine function, and the
 * final function runs when the view is read.
 */

interface AggregateCatalogRow {
  signature: string;
  name: string;
  argTypes: string[];
  transFn: string;
  combineFn: string | null;
  combineStrict: boolean;
  finalFn: string | null;
  finalExtra: boolean;
  stateType: string;
  statePseudo: boolean;
  initValue: string | null;
  kind: string;
}

/**
 * Resolves `callSql` (a call of a user-defined aggregate over `from`) to the
 * aggregate PostgreSQL picks, and plans it; fails with 0A000 when it cannot
 * be kept incrementally (no combine function, an internal state).
 */
export async function planUserAggregate(conn: StoreConnection, callSql: string, from: string, arg: TypeRef | undefined): Promise<UserAggregatePlan> {
  const row = await resolveAggregate(conn, callSql, from, arg);
  if (row.kind !== 'n') throw notIncremental(row.signature, 'it is an ordered-set or hypothetical-set aggregate');
  if (!row.combineFn) {
    throw notIncremental(row.signature, 'it has no combine function', `Give it one: CREATE AGGREGATE ${row.name}(…) (…, COMBINEFUNC = …).`);
  }
  const stateType = resolvedStateType(row, arg);
  const key = createHash('md5').update([row.transFn, row.combineFn, row.stateType, row.initValue ?? '', row.argTypes.join(',')].join('|')).digest('hex').slice(0, 16);
  const partial = `sluice.partial_${key}`;
  const combineAggregate = `sluice.combine_${key}`;
  const init = row.initValue === null ? '' : `, INITCOND = ${quoteLiteral(row.initValue)}`;
  return {
    signature: row.signature,
    partial,
    combineAggregate,
    combineFn: row.combineFn,
    combineStrict: row.combineStrict,
    finalFn: row.finalFn ?? undefined,
    finalExtraArgs: row.finalExtra ? row.argTypes.map((t) => `NULL::${t === 'anyelement' || t === 'anycompatible' ? (arg?.type ?? 'text') : t}`) : undefined,
    stateType,
    ddl: [
      `CREATE OR REPLACE AGGREGATE ${partial}(${row.argTypes.join(', ')}) (SFUNC = ${row.transFn}, STYPE = ${row.stateType}${init})`,
      // The combine function is a transition function over states: it merges many stored states (combine(), windows).
      `CREATE OR REPLACE AGGREGATE ${combineAggregate}(${row.stateType}) (SFUNC = ${row.combineFn}, STYPE = ${row.stateType})`,
    ],
  };
}

function notIncremental(signature: string, why: string, hint = 'Use an aggregate that has a combine function.'): SqlError {
  return new SqlError(SqlState.featureNotSupported, `aggregate ${signature} cannot be used in a continuous view: ${why}`, { hint });
}

/** The state type a column can hold: the declared one, or the argument's type for a polymorphic state. */
function resolvedStateType(row: AggregateCatalogRow, arg: TypeRef | undefined): string {
  if (!row.statePseudo) return row.stateType;
  if (arg && (row.stateType === 'anyelement' || row.stateType === 'anycompatible')) return arg.type;
  if (arg && (row.stateType === 'anyarray' || row.stateType === 'anycompatiblearray')) return `${arg.type}[]`;
  throw notIncremental(row.signature, `its state is of type ${row.stateType}, which a table cannot store`);
}

/** An aggregate's catalog entries, as AggregateCatalogRow (filtered by a WHERE on `p`, its pg_proc row). */
const aggregateCatalogSql = `
  SELECT p.oid::regprocedure::text, p.oid::regproc::text,
         (SELECT string_agg(format_type(t, NULL), '|' ORDER BY n) FROM unnest(p.proargtypes) WITH ORDINALITY AS u(t, n)),
         a.aggtransfn::regproc::text, nullif(a.aggcombinefn, 0)::regproc::text, coalesce(c.proisstrict, false),
         nullif(a.aggfinalfn, 0)::regproc::text, a.aggfinalextra, format_type(a.aggtranstype, NULL), st.typtype = 'p', a.agginitval, a.aggkind
  FROM pg_proc p
  JOIN pg_aggregate a ON a.aggfnoid = p.oid
  JOIN pg_type st ON st.oid = a.aggtranstype
  LEFT JOIN pg_proc c ON c.oid = a.aggcombinefn`;

/**
 * The aggregate a call resolves to: what a (rolled back) view over the call
 * depends on. PostgreSQL records no dependency on its own (pinned)
 * aggregates: those are found by name and first argument type.
 */
async function resolveAggregate(conn: StoreConnection, callSql: string, from: string, arg: TypeRef | undefined): Promise<AggregateCatalogRow> {
  return rolledBack(conn, async () => {
    await conn.exec(`CREATE TEMP VIEW sluice_probe_aggregate AS SELECT ${callSql} FROM ${from}`);
    const dependedOn = `SELECT d.refobjid FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
                        WHERE r.ev_class = 'pg_temp.sluice_probe_aggregate'::regclass AND d.refclassid = 'pg_proc'::regclass`;
    let result = await conn.query(`${aggregateCatalogSql} WHERE p.oid IN (${dependedOn})`);
    if (result.rows.length === 0) {
      const name = /^\s*(?:pg_catalog\.)?"?(\w+)"?\s*\(/.exec(callSql)?.[1] ?? '';
      result = await conn.query(
        `${aggregateCatalogSql} WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = $1 AND (p.pronargs = 0 OR format_type(p.proargtypes[0], NULL) = $2)`,
        [name, arg?.type ?? ''],
      );
    }
    if (result.rows.length !== 1) throw new SqlError(SqlState.internalError, `could not resolve the aggregate of ${callSql}`);
    const [signature, name, argTypes, transFn, combineFn, combineStrict, finalFn, finalExtra, stateType, statePseudo, initValue, kind] = result.rows[0];
    return {
      signature: signature as string,
      name: name as string,
      argTypes: argTypes === null ? [] : String(argTypes).split('|'),
      transFn: transFn as string,
      combineFn: combineFn as string | null,
      combineStrict: combineStrict === 't',
      finalFn: finalFn as string | null,
      finalExtra: finalExtra === 't',
      stateType: stateType as string,
      statePseudo: statePseudo === 't',
      initValue: initValue as string | null,
      kind: kind as string,
    };
  });
}
