import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * The catalog queries BI and admin tools send when they connect and browse
 * (as captured from Metabase 0.50, Grafana 11, DBeaver 24 and pgAdmin 4 8.x;
 * volatile columns such as live-tuple estimates left out), replayed through
 * Sluice with both protocols and straight to the PostgreSQL it serves from:
 * the answers must be the same, so the tools see exactly what PostgreSQL shows.
 */
const queries: { tool: string; sql: string; params?: (ids: Ids) => unknown[] }[] = [
  { tool: 'Metabase: version', sql: "SELECT current_setting('server_version_num') AS v, current_setting('server_version') AS version" },
  {
    tool: 'Metabase: tables',
    sql: `SELECT n.nspname AS schema, c.relname AS name,
            CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS type,
            d.description AS description
          FROM pg_catalog.pg_class c
          INNER JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid
          LEFT JOIN pg_catalog.pg_description d ON c.oid = d.objoid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass
          WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'f', 'm')
            AND n.nspname !~ '^information_schema|catalog_history|pg_'
            AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
          ORDER BY schema, name`,
  },
  {
    tool: 'Metabase: fields',
    sql: `SELECT c.column_name AS name, c.udt_name AS database_type, c.ordinal_position - 1 AS database_position, c.table_schema AS table_schema, c.table_name AS table_name,
            CASE WHEN c.is_nullable = 'YES' THEN false ELSE true END AS database_required, col_description(pc.oid, c.ordinal_position) AS field_comment
          FROM information_schema.columns c
          JOIN pg_catalog.pg_class pc ON pc.relname = c.table_name
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace AND pn.nspname = c.table_schema
          WHERE c.table_schema = 'public' ORDER BY table_name, database_position`,
  },
  { tool: 'Grafana: version', sql: "SELECT current_setting('server_version_num')::int/100 AS version" },
  { tool: 'Grafana: timescaledb', sql: "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'" },
  {
    tool: 'Grafana: tables on the search path',
    sql: `SELECT quote_ident(table_name) AS "table" FROM information_schema.tables
          WHERE (table_schema IN (SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
                                  FROM generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1),
                                                       array_upper(string_to_array(current_setting('search_path'), ','), 1)) AS i,
                                       string_to_array(current_setting('search_path'), ',') s))
          ORDER BY table_name`,
  },
  {
    tool: 'Grafana: columns of a table',
    sql: "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\" FROM information_schema.columns WHERE quote_ident(table_name) = 'per_city' ORDER BY column_name",
  },
  { tool: 'DBeaver: session', sql: 'SELECT current_schema(), session_user' },
  { tool: 'DBeaver: settings', sql: "select * from pg_catalog.pg_settings where name = 'standard_conforming_strings'" },
  {
    tool: 'DBeaver: schemas',
    sql: "SELECT n.oid, n.*, d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0 AND d.classoid = 'pg_namespace'::regclass ORDER BY nspname",
  },
  { tool: 'DBeaver: database', sql: 'SELECT db.oid, db.datname, db.datdba, db.encoding, db.datallowconn FROM pg_catalog.pg_database db WHERE datname = $1', params: () => ['sluice'] },
  {
    tool: 'DBeaver: relations of a schema',
    sql: `SELECT c.oid, c.relname, c.relkind, c.relnamespace, c.reloftype, c.relowner, c.relhasindex, c.relpersistence, c.relnatts, c.relhasrules, c.relhastriggers,
            t.relname AS tabrelname, rt.relnamespace AS refnamespace, d.description,
            CASE WHEN c.relpartbound IS NOT NULL THEN pg_get_expr(c.relpartbound, c.oid, true) END AS partition_expr,
            CASE WHEN c.relpartbound IS NOT NULL THEN pg_get_partkeydef(c.oid) END AS partition_key
          FROM pg_catalog.pg_class c
          LEFT OUTER JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
          LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid = c.reloftype
          LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass
          WHERE c.relnamespace = $1 AND c.relkind NOT IN ('i', 'I', 'c') ORDER BY c.relname`,
    params: (ids) => [ids.publicSchema],
  },
  {
    tool: 'DBeaver: columns of a view',
    sql: `SELECT c.relname, a.attname, a.atttypid, a.attnum, a.attnotnull, a.atttypmod, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value, dsc.description, dep.objid
          FROM pg_catalog.pg_attribute a
          INNER JOIN pg_catalog.pg_class c ON (a.attrelid = c.oid)
          LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid = ad.adrelid AND a.attnum = ad.adnum)
          LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid)
          LEFT OUTER JOIN pg_depend dep ON dep.refobjid = a.attrelid AND dep.deptype = 'i' AND dep.refobjsubid = a.attnum AND dep.classid = dep.refclassid
          WHERE NOT a.attisdropped AND c.relkind NOT IN ('i', 'I', 'c') AND c.oid = $1 ORDER BY a.attnum`,
    params: (ids) => [ids.view],
  },
  {
    tool: 'DBeaver: data types',
    sql: `SELECT t.oid, t.typname, t.typtype, t.typcategory, c.relkind, format_type(nullif(t.typbasetype, 0), t.typtypmod) AS base_type_name, d.description
          FROM pg_catalog.pg_type t
          LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid = t.typelem
          LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
          LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid = d.objoid
          WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C') ORDER BY t.oid`,
  },
  { tool: 'DBeaver: view definition', sql: 'SELECT pg_get_viewdef($1::oid, true) AS definition', params: (ids) => [ids.view] },
  { tool: 'pgAdmin: version', sql: 'SELECT version()' },
  {
    tool: 'pgAdmin: database',
    sql: `SELECT db.oid AS did, db.datname, db.datallowconn, pg_catalog.pg_encoding_to_char(db.encoding) AS serverencoding,
            pg_catalog.has_database_privilege(db.oid, 'CREATE') AS cancreate, datistemplate
          FROM pg_catalog.pg_database db WHERE db.datname = current_database()`,
  },
  {
    tool: 'pgAdmin: role',
    sql: `SELECT roles.oid AS id, roles.rolname AS name, roles.rolsuper AS is_superuser,
            CASE WHEN roles.rolsuper THEN true ELSE roles.rolcreaterole END AS can_create_role,
            CASE WHEN roles.rolsuper THEN true ELSE roles.rolcreatedb END AS can_create_db,
            CASE WHEN 'pg_signal_backend' = ANY(ARRAY(WITH RECURSIVE cte AS (
                SELECT pg_roles.oid, pg_roles.rolname FROM pg_roles WHERE pg_roles.oid = roles.oid
                UNION ALL SELECT m.roleid, pgr.rolname FROM cte cte_1 JOIN pg_auth_members m ON m.member = cte_1.oid JOIN pg_roles pgr ON pgr.oid = m.roleid)
              SELECT rolname FROM cte)) THEN True ELSE False END AS can_signal_backend
          FROM pg_catalog.pg_roles AS roles WHERE rolname = current_user`,
  },
  {
    tool: 'pgAdmin: schemas',
    sql: `SELECT nsp.oid, nsp.nspname AS name, pg_catalog.has_schema_privilege(nsp.oid, 'CREATE') AS can_create, pg_catalog.has_schema_privilege(nsp.oid, 'USAGE') AS has_usage, des.description
          FROM pg_catalog.pg_namespace nsp
          LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid = nsp.oid AND des.classoid = 'pg_namespace'::regclass)
          WHERE NOT ((nsp.nspname = 'pg_catalog' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'pg_class' AND relnamespace = nsp.oid LIMIT 1))
                  OR (nsp.nspname = 'information_schema' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'tables' AND relnamespace = nsp.oid LIMIT 1)))
            AND nsp.nspname NOT LIKE 'pg!_%' ESCAPE '!'
          ORDER BY nspname`,
  },
  {
    tool: 'pgAdmin: tables',
    sql: `SELECT rel.oid, rel.relname AS name,
            (SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgrelid = rel.oid AND tgisinternal = FALSE) AS triggercount,
            (SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgrelid = rel.oid AND tgisinternal = FALSE AND tgenabled = 'O') AS has_enable_triggers,
            (CASE WHEN rel.relkind = 'p' THEN true ELSE false END) AS is_partitioned,
            (SELECT count(1) FROM pg_catalog.pg_inherits WHERE inhrelid = rel.oid LIMIT 1) AS is_inherits,
            (SELECT count(1) FROM pg_catalog.pg_inherits WHERE inhparent = rel.oid LIMIT 1) AS is_inherited,
            des.description
          FROM pg_catalog.pg_class rel
          LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid = rel.oid AND des.objsubid = 0 AND des.classoid = 'pg_class'::regclass)
          WHERE rel.relkind IN ('r', 's', 't', 'p') AND rel.relnamespace = $1::oid AND NOT rel.relispartition
          ORDER BY rel.relname`,
    params: (ids) => [ids.publicSchema],
  },
  {
    tool: 'pgAdmin: views',
    sql: `SELECT c.oid, c.relname AS name, pg_catalog.pg_get_userbyid(c.relowner) AS owner, description
          FROM pg_catalog.pg_class c
          LEFT OUTER JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass)
          WHERE ((c.relhasrules AND (EXISTS (SELECT r.rulename FROM pg_catalog.pg_rewrite r WHERE ((r.ev_class = c.oid) AND (pg_catalog.bpchar(r.ev_type) = '1'::bpchar)))))
                 OR (c.relkind = 'v'::char))
            AND c.relnamespace = $1::oid
          ORDER BY c.relname`,
    params: (ids) => [ids.publicSchema],
  },
  {
    tool: 'pgAdmin: foreign tables',
    sql: `SELECT c.oid, c.relname AS name, pg_catalog.pg_get_userbyid(relowner) AS owner, ftoptions, nspname AS basensp, description
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_foreign_table ft ON c.oid = ft.ftrelid
          LEFT OUTER JOIN pg_catalog.pg_namespace nsp ON (nsp.oid = c.relnamespace)
          LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid = c.oid AND des.classoid = 'pg_class'::regclass)
          WHERE c.relnamespace = $1::oid ORDER BY c.relname`,
    params: (ids) => [ids.publicSchema],
  },
];

interface Ids {
  publicSchema: string;
  view: string;
}

let sluice: RunningSluice;
let through: pg.Client;
let straight: pg.Client;
let ids: Ids;

beforeAll(async () => {
  sluice = await startSluice();
  through = await sluice.client();
  await through.query('CREATE STREAM sales (city text, amount numeric, at timestamptz)');
  await through.query('CREATE VIEW per_city AS SELECT city, count(*), sum(amount) AS revenue, max(at) AS last_sale FROM sales GROUP BY city');
  await through.query("COMMENT ON VIEW per_city IS 'Revenue per city, kept by Sluice'");
  await through.query('CREATE TABLE cities (name text PRIMARY KEY, country text)');
  await through.query("INSERT INTO sales VALUES ('Lyon', 10, now()), ('Oslo', 5, now())");
  straight = new pg.Client({ host: path.join(sluice.dataDir, 'pg'), port: 5432, user: 'postgres', database: 'sluice' });
  await straight.connect();
  const found = await straight.query("SELECT 'public'::regnamespace::oid::text AS schema, 'per_city'::regclass::oid::text AS view");
  ids = { publicSchema: found.rows[0].schema, view: found.rows[0].view };
});

afterAll(async () => {
  await straight?.end();
  await sluice?.stop({ removeData: true });
});

describe('catalog queries of BI and admin tools', () => {
  it.each(queries.map((q, i) => [q.tool, i]))('%s: the same answer through Sluice (simple and extended protocol) as from PostgreSQL', async (_, i) => {
    const { tool, sql, params } = queries[i as number];
    const values = params?.(ids);
    const asText = { getTypeParser: () => (v: string) => v };
    const expected = await straight.query({ text: sql, values, types: asText });
    if (tool !== 'Grafana: timescaledb') expect(expected.rows.length).toBeGreaterThan(0);
    // Extended protocol, as a named statement (JDBC tools prepare after a few runs), twice.
    for (let run = 0; run < 2; run++) {
      const extended = await through.query({ name: `q${i}`, text: sql, values, types: asText });
      expect(extended.fields.map((f) => [f.name, f.dataTypeID])).toEqual(expected.fields.map((f) => [f.name, f.dataTypeID]));
      expect(extended.rows).toEqual(expected.rows);
    }
    if (!values) expect((await through.query({ text: sql, types: asText })).rows).toEqual(expected.rows);
  });
});
