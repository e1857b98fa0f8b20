import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeFeed, parseSnapshot, visibleIn } from '../../engine/change-feed.ts';
import type { ContinuousView } from '../../engine/continuous-view.ts';
import { whenTransactionEnds, inTransaction, type StoreConnection } from '../../engine/store.ts';
import { copyLine, parseSubscription, recordFields } from '../../sql/subscribe.ts';
import { rng } from '../support/random.ts';

describe('recordFields', () => {
  let db: PGlite;
  beforeAll(async () => {
    db = await PGlite.create();
    await db.exec('CREATE TYPE r3 AS (a text, b text, c int)');
  });
  afterAll(() => db.close());

  it("splits PostgreSQL's record text into the fields it was made of, for 2,000 random records", async () => {
    const random = rng(42);
    const alphabet = ['a', ' ', ',', '"', '\\', '(', ')', '\t', '\n', 'é', '日', "'", 'NULL', ''];
    const text = () => (random() < 0.15 ? null : Array.from({ length: Math.floor(random() * 6) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''));
    const records = Array.from({ length: 2000 }, () => [text(), text(), random() < 0.2 ? null : String(Math.floor(random() * 2000) - 1000)]);
    const result = await db.query<{ t: string }>('SELECT ROW(a, b, c::int)::r3::text AS t FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(a, b, c, i) ORDER BY i', [
      records.map((r) => r[0]),
      records.map((r) => r[1]),
      records.map((r) => r[2]),
    ]);
    expect(result.rows.map((row) => recordFields(row.t, 3))).toEqual(records);
  });

  it('reads a one-column record of NULL and of the empty string apart', () => {
    expect(recordFields('()', 1)).toEqual([null]);
    expect(recordFields('("")', 1)).toEqual(['']);
  });
});

describe('parseSubscription', () => {
  it('reads the spellings of SUBSCRIBE, DECLARE, FETCH and CLOSE', () => {
    expect(parseSubscription('SUBSCRIBE v')).toEqual({ kind: 'subscribe', target: { schema: undefined, name: 'v' }, options: { snapshot: true, maxBacklogRows: 1_000_000 } });
    expect(parseSubscription('subscribe to App."My View" with (snapshot = false, max_backlog_rows = 10);')).toMatchObject({ target: { schema: 'app', name: 'My View' }, options: { snapshot: false, maxBacklogRows: 10 } });
    expect(parseSubscription('COPY (SUBSCRIBE v WITH (SNAPSHOT)) TO STDOUT WITH (FORMAT csv)')).toMatchObject({ kind: 'subscribe', copy: { csv: true }, options: { snapshot: true } });
    expect(parseSubscription('DECLARE c NO SCROLL CURSOR WITHOUT HOLD FOR SUBSCRIBE v')).toMatchObject({ kind: 'declare', cursor: 'c', target: { name: 'v' } });
    expect(parseSubscription('DECLARE c CURSOR FOR SELECT 1')).toBeUndefined();
    expect(parseSubscription('DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT 1')).toBeUndefined();
    expect(parseSubscription("FETCH 100 c WITH (timeout = '250ms')")).toEqual({ kind: 'fetch', cursor: 'c', count: 100, timeoutMs: 250 });
    expect(parseSubscription('FETCH FORWARD ALL FROM "C"')).toEqual({ kind: 'fetch', cursor: 'C', count: Infinity, timeoutMs: Infinity });
    expect(parseSubscription("fetch c with (timeout '1 s')")).toEqual({ kind: 'fetch', cursor: 'c', count: 1, timeoutMs: 1000 });
    expect(parseSubscription('FETCH PRIOR c')).toBeUndefined();
    expect(parseSubscription('CLOSE ALL')).toEqual({ kind: 'close', cursor: undefined });
    expect(parseSubscription('SELECT 1')).toBeUndefined();
  });

  it('refuses what it does not support with SQLSTATEs', () => {
    const code = (sql: string) => {
      try {
        parseSubscription(sql);
        return 'none';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    expect(code('SUBSCRIBE (SELECT 1)')).toBe('0A000');
    expect(code('SUBSCRIBE v WITH (PROGRESS)')).toBe('0A000');
    expect(code('SUBSCRIBE v ENVELOPE UPSERT (KEY (a))')).toBe('0A000');
    expect(code('SUBSCRIBE v AS OF 5')).toBe('0A000');
    expect(code('SUBSCRIBE')).toBe('42601');
    expect(code('DECLARE c SCROLL CURSOR FOR SUBSCRIBE v')).toBe('0A000');
    expect(code('DECLARE c CURSOR WITH HOLD FOR SUBSCRIBE v')).toBe('0A000');
    expect(code('COPY (SUBSCRIBE v) TO STDOUT (FORMAT binary)')).toBe('0A000');
    expect(code("FETCH c WITH (timeout = 'soon')")).toBe('22023');
    expect(code('SUBSCRIBE v WITH (max_backlog_rows = 0)')).toBe('22023');
  });
});

describe('copyLine', () => {
  it('escapes COPY text and quotes CSV as PostgreSQL does', () => {
    expect(copyLine(['a\tb', null, 'back\\slash', 'line\nbreak'], false)).toBe('a\\tb\t\\N\tback\\\\slash\tline\\nbreak\n');
    expect(copyLine(['a,b', null, '', 'say "hi"'], true)).toBe('"a,b",,"","say ""hi"""\n');
  });
});

describe('snapshot visibility', () => {
  it('is pg_visible_in_snapshot: below xmin yes, at or above xmax no, in progress no', () => {
    const snapshot = parseSnapshot('100:110:102,105');
    expect([99n, 100n, 101n, 102n, 105n, 109n, 110n, 200n].map((x) => visibleIn(snapshot, x))).toEqual([true, true, true, false, false, true, false, false]);
    expect(parseSnapshot('7:7:').inProgress.size).toBe(0);
  });
});

describe('ChangeFeed', () => {
  /** A store session that only runs what the feed and inTransaction send. */
  function fakeConnection(xid: string): StoreConnection & { statements: string[]; transactionStatus: 'I' | 'T' | 'E' } {
    const conn = {
      statements: [] as string[],
      transactionStatus: 'I' as 'I' | 'T' | 'E',
      async query(sql: string) {
        conn.statements.push(sql);
        return { fields: [], rows: [[xid]], command: 'SELECT 1' };
      },
      async exec(sql: string) {
        conn.statements.push(sql);
        conn.transactionStatus = sql === 'BEGIN' ? 'T' : 'I';
      },
    };
    return conn;
  }
  const view = { name: 'v', plan: { schema: 'public' } } as unknown as ContinuousView;

  it('publishes a transaction consolidated, only when it commits, and after a snapshot only what the snapshot did not see', async () => {
    const feed = new ChangeFeed();
    const subscription = feed.subscribe(view, 100);
    const seen = fakeConnection('50');
    const unseen = fakeConnection('60');
    const rolledBack = fakeConnection('70');
    await inTransaction(seen, () => feed.stage(seen, view, [{ before: null, after: '(a,1)' }]));
    await inTransaction(unseen, async () => {
      await feed.stage(unseen, view, [{ before: '(a,1)', after: '(a,2)' }]);
      await feed.stage(unseen, view, [{ before: '(a,2)', after: '(a,3)' }, { before: null, after: '(b,1)' }]);
    });
    await inTransaction(rolledBack, async () => {
      await feed.stage(rolledBack, view, [{ before: '(a,3)', after: '(a,4)' }]);
      throw new Error('rolled back');
    }).catch(() => undefined);
    // The snapshot saw transaction 50 (committed before it), not 60.
    subscription.begin({ snapshot: '55:65:60', rows: ['(a,1)'] });
    const rows = subscription.take();
    expect(rows.map(({ diff, row }) => [diff, row])).toEqual([
      [1, '(a,1)'],
      [-1, '(a,1)'],
      [1, '(a,3)'],
      [1, '(b,1)'],
    ]);
    expect(rows[1].timestamp).toBeGreaterThan(rows[0].timestamp);
    // One xid query per transaction, whatever the number of writes in it.
    expect(unseen.statements.filter((s) => s.includes('pg_current_xact_id')).length).toBe(1);
  });

  it('ends a subscription that falls behind, and stops feeding it', async () => {
    const feed = new ChangeFeed();
    const subscription = feed.subscribe(view, 3);
    subscription.begin();
    const conn = fakeConnection('9');
    await inTransaction(conn, () => feed.stage(conn, view, [1, 2, 3, 4].map((i) => ({ before: null, after: `(${i})` }))));
    expect(subscription.ended?.code).toBe('53400');
    expect(feed.wants(view)).toBe(false);
  });

  it('waits for the client transaction: listeners hear the outcome when the session settles it', async () => {
    const conn = fakeConnection('1');
    conn.transactionStatus = 'T';
    const outcomes: boolean[] = [];
    whenTransactionEnds(conn, { xid: '1', ended: (committed) => outcomes.push(committed) });
    expect(outcomes).toEqual([]);
    await inTransaction(conn, async () => undefined); // inside the client's block: not Sluice's to end
    expect(outcomes).toEqual([]);
  });
});
