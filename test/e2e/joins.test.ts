import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * Stream-table joins and sub-selects in FROM: each batch is joined with the
 * tables as they are when it is processed (later changes to a table are not
 * applied back), checked against PostgreSQL's own join over the same rows,
 * batch by batch, with the tables changing between batches.
 */
describe('continuous views reading a stream joined with tables', () => {
  let sluice: RunningSluice;
  let client: pg.Client;

  beforeAll(async () => {
    sluice = await startSluice();
    client = await sluice.client();
    await client.query('CREATE TABLE users (id int PRIMARY KEY, country text)');
    await client.query('CREATE TABLE regions (code text PRIMARY KEY, region text)');
    await client.query("INSERT INTO regions VALUES ('FR', 'europe'), ('DE', 'europe'), ('US', 'america')");
    await client.query('INSERT INTO users SELECT g, (ARRAY[\'fr\', \'de\', \'us\'])[1 + g % 3] FROM generate_series(1, 50) g');
    await client.query('CREATE STREAM clicks (user_id int, url text, ms numeric)');
    await client.query('CREATE TABLE clicks_batch (user_id int, url text, ms numeric)');
    await client.query('CREATE TABLE joined (country text, region text, ms numeric, bucket int, url text)');
    await client.query('CREATE VIEW by_country AS SELECT u.country, count(*), sum(c.ms) AS ms FROM clicks c JOIN users u ON c.user_id = u.id GROUP BY u.country');
    await client.query("CREATE VIEW with_unknown AS SELECT coalesce(u.country, 'unknown') AS country, count(*) FROM clicks c LEFT JOIN users u ON u.id = c.user_id GROUP BY 1");
    await client.query('CREATE VIEW by_region AS SELECT r.region, count(*), max(c.ms) AS ms FROM clicks c JOIN users u ON c.user_id = u.id JOIN regions r ON r.code = upper(u.country) WHERE c.ms > 10 GROUP BY r.region');
    await client.query("CREATE VIEW buckets AS SELECT bucket, count(*) FROM (SELECT (ms / 25)::int AS bucket FROM clicks WHERE url LIKE '/a%') AS sub GROUP BY bucket");
  });
  afterAll(() => sluice.stop({ removeData: true }));

  it('equals PostgreSQL\'s join of each batch with the tables as they were then', async () => {
    const r = rng(5);
    for (let batch = 0; batch < 5; batch++) {
      const rows = Array.from({ length: 300 }, () => `(${1 + Math.floor(r() * 60)}, '/${r() < 0.5 ? 'a' : 'b'}${Math.floor(r() * 5)}', ${(r() * 100).toFixed(2)})`);
      await client.query(`INSERT INTO clicks VALUES ${rows.join(', ')}`);
      // The oracle: the same batch joined by PostgreSQL now, before the tables change.
      await client.query('TRUNCATE clicks_batch');
      await client.query(`INSERT INTO clicks_batch VALUES ${rows.join(', ')}`);
      await client.query(`INSERT INTO joined SELECT u.country, r.region, c.ms, (c.ms / 25)::int, c.url
        FROM clicks_batch c LEFT JOIN users u ON u.id = c.user_id LEFT JOIN regions r ON r.code = upper(u.country)`);
      // The tables change between batches: a user moves, one appears, one leaves.
      await client.query(`UPDATE users SET country = 'us' WHERE id = ${1 + batch}`);
      await client.query(`INSERT INTO users VALUES (${51 + batch}, 'de')`);
      await client.query(`DELETE FROM users WHERE id = ${40 + batch}`);
    }
    const same = async (view: string, oracle: string) => {
      const got = (await client.query(`SELECT * FROM ${view} ORDER BY 1`)).rows;
      const want = (await client.query(`${oracle} ORDER BY 1`)).rows;
      expect(got).toEqual(want);
    };
    await same('by_country', 'SELECT country, count(*), sum(ms) AS ms FROM joined WHERE country IS NOT NULL GROUP BY country');
    await same('with_unknown', "SELECT coalesce(country, 'unknown') AS country, count(*) FROM joined GROUP BY 1");
    await same('by_region', 'SELECT region, count(*), max(ms) AS ms FROM joined WHERE region IS NOT NULL AND ms > 10 GROUP BY region');
    await same('buckets', "SELECT bucket, count(*) FROM joined WHERE url LIKE '/a%' GROUP BY bucket");
  });

  it('refuses a view reading two streams', async () => {
    await client.query('CREATE STREAM other (user_id int)');
    await expect(client.query('CREATE VIEW two AS SELECT count(*) FROM clicks c JOIN other o ON o.user_id = c.user_id')).rejects.toMatchObject({ code: '0A000' });
  });
});
