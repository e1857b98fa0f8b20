import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certainlyValidDateTime } from '../../engine/values/index.ts';
import { rng } from '../support/random.ts';

/**
 * The engine skips PostgreSQL's own check for timestamps it can vouch for;
 * it must never vouch for one PostgreSQL rejects.
 */
describe('certainlyValidDateTime never accepts what PostgreSQL rejects', () => {
  let db: PGlite;
  beforeAll(async () => {
    db = await PGlite.create();
  });
  afterAll(() => db.close());

  function candidates(): string[] {
    const r = rng(42);
    const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)];
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    const out = ['2024-02-29', '2023-02-29', '2000-02-29', '1900-02-29', '0001-01-01', '0000-01-01', '9999-12-31T23:59:59.999999Z', '2026-11-21T24:00:00Z'];
    for (let i = 0; i < 3000; i++) {
      const date = `${pad(Math.floor(r() * 10000), 4)}-${pad(Math.floor(r() * 14))}-${pad(Math.floor(r() * 33))}`;
      const time = pick(['', `T${pad(Math.floor(r() * 26))}:${pad(Math.floor(r() * 62))}`, ` ${pad(Math.floor(r() * 25))}:${pad(Math.floor(r() * 61))}:${pad(Math.floor(r() * 62))}.${Math.floor(r() * 1e9)}`]);
      const zone = time ? pick(['', 'Z', '+05:30', '-0800', '+14', '-12:00']) : '';
      out.push(date + time + zone);
    }
    return out;
  }

  for (const type of ['timestamptz', 'timestamp', 'date']) {
    it(type, async () => {
      let vouched = 0;
      for (const text of candidates()) {
        if (!certainlyValidDateTime(type, text)) continue;
        vouched++;
        const result = await db.query<{ ok: boolean }>('SELECT pg_input_is_valid($1, $2) AS ok', [text, type]);
        expect({ text, ok: result.rows[0].ok }).toEqual({ text, ok: true });
      }
      expect(vouched).toBeGreaterThan(100);
    });
  }
});
