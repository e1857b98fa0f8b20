import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/random.ts';
import { copyInto, createStreamTableAndViews, failure, type TextRow } from '../support/rows.ts';
import { startSluice, type RunningSluice } from '../support/sluice.ts';

/**
 * The headline view — date_trunc over a timestamptz, jsonb fields,
 * a regular expression — evaluated by the engine itself (compiled), and
 * equal to PostgreSQL's GROUP BY over the same rows; batches with values
 * only the store reads alike (no offset, non-ASCII case mapping) are
 * evaluated by the store and still equal; bad input fails as PostgreSQL fails.
 */

const views: Record<string, string> = {
  per_minute:
    "SELECT date_trunc('minute', ts) AS m, payload->>'country' AS c, count(*), sum((payload->>'amount')::float8) AS amount FROM {src} WHERE payload->>'kind' ~ '^buy' GROUP BY m, c",
  per_user: "SELECT lower(uid) AS u, count(*) FILTER (WHERE payload ? 'coupon') AS coupons, max(length(payload->'tags'->>0)) AS longest_tag FROM {src} GROUP BY 1",
  per_hour_local: "SELECT date_trunc('hour', local_ts) AS h, count(*) FROM {src} WHERE local_ts >= '2026-01-01' GROUP BY 1",
};

const kinds = ['buy', 'buy_again', 'sell', 'view', 'rebuy'];
const countries = ['FR', 'DE', 'NL', 'US', null];

function randomRows(random: () => number, count: number, options: { offsets?: boolean; nonAscii?: boolean } = {}): TextRow[] {
  return Array.from({ length: count }, () => {
    const at = Date.UTC(2026, 0, 5) + Math.floor(random() * 3 * 3600_000);
    const iso = new Date(at).toISOString();
    const ts = options.offsets === false ? iso.replace('T', ' ').replace('Z', '') : random() < 0.5 ? iso : iso.replace('Z', '+00:00');
    const country = countries[Math.floor(random() * countries.length)];
    const payload: Record<string, unknown> = { kind: kinds[Math.floor(random() * kinds.length)], amount: Math.round(random() * 10_000) } // whole numbers: float sums are then exact in any order;
    if (country) payload.country = country;
    if (random() < 0.3) payload.coupon = 'X';
    if (random() < 0.5) payload.tags = ['t'.repeat(1 + Math.floor(random() * 5)), 'other'];
    const uid = options.nonAscii && random() < 0.5 ? `ÜSER${Math.floor(random() * 5)}` : `User${Math.floor(random() * 20)}`;
    return [ts, JSON.stringify(payload), uid, new Date(at + 3600_000).toISOString().slice(0, 19).replace('T', ' ')];
  });
}

let sluice: RunningSluice;
let client: pg.Client;
const columns = 'ts timestamptz, payload jsonb, uid text, local_ts timestamp';
const columnNames = 'ts, payload, uid, local_ts';

async function send(rows: TextRow[]): Promise<void> {
  await copyInto(client, 's', columnNames, rows);
  await copyInto(client, 't', columnNames, rows);
}

async function expectViewsEqualPostgres(): Promise<void> {
  for (const [name, sql] of Object.entries(views)) {
    const got = await client.query({ text: `SELECT * FROM ${name} ORDER BY 1, 2`, rowMode: 'array' });
    const want = await client.query({ text: `${sql.replaceAll('{src}', 't')} ORDER BY 1, 2`, rowMode: 'array' });
    expect([name, got.rows]).toEqual([name, want.rows]);
    expect(got.rows.length).toBeGreaterThan(0);
  }
}

beforeAll(async () => {
  sluice = await startSluice();
  client = await sluice.client();
  await createStreamTableAndViews(client, columns, views);
});

afterAll(async () => {
  await sluice?.stop({ removeData: true });
});

describe('views the engine compiles', () => {
  it('evaluates the headline view in the engine, equal to PostgreSQL', async () => {
    for (const name of Object.keys(views)) expect([name, (await client.query(`SELECT sluice.view_evaluation('${name}') AS e`)).rows[0].e]).toEqual([name, 'engine']);
    const random = rng(99);
    for (let batch = 0; batch < 8; batch++) await send(randomRows(random, 500 + Math.floor(random() * 1500)));
    await expectViewsEqualPostgres();
  });

  it('hands a batch the engine cannot read alike to the store (timestamps without offset, non-ASCII lower()), still equal', async () => {
    const random = rng(7);
    await send(randomRows(random, 400, { offsets: false }));
    await send(randomRows(random, 400, { nonAscii: true }));
    await expectViewsEqualPostgres();
  });

  it('fails a batch with invalid jsonb or a failing cast with PostgreSQL\'s error, and goes on', async () => {
    const bad = [['2026-01-05T10:00:00Z', '{"kind": "buy", "amount": "lots"}', 'u', '2026-01-05 10:00:00']];
    // The cast in per_minute fails in the engine with PostgreSQL's error; invalid jsonb is reported by the store.
    expect(await failure(copyInto(client, 's', columnNames, bad))).toMatchObject({ code: '22P02', message: 'invalid input syntax for type double precision: "lots"' });
    expect(await failure(copyInto(client, 's', columnNames, [['2026-01-05T10:00:00Z', '{"kind": ', 'u', '2026-01-05 10:00:00']]))).toMatchObject({ code: '22P02' });
    await send(randomRows(rng(3), 100));
    await expectViewsEqualPostgres();
  });
});
