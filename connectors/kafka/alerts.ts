import type { Logger } from 'pino';
import { BackgroundSession, type ServingStore, type StoreConnection } from '../../engine/store.ts';

/**
 * Alerts on Kafka sources, set in SQL: `sluice.set_alert(topic, stream,
 * max_lag_messages => 10000, max_lag_seconds => 60, stalled_after => '2 min'[,
 * webhook => 'https://…'])`.
 * A watcher checks every rule each round; a breached one is a row of
 * `sluice.alerts` (since when, the value now) for as long as it lasts, and
 * each start and end is sent with `NOTIFY sluice_alerts` and to the rule's
 * webhook (a JSON POST).
 */
export const alertsCatalogSql = `
CREATE TABLE IF NOT EXISTS sluice.alert_rules (
  topic text NOT NULL,
  relation text NOT NULL,
  max_lag_messages bigint,
  max_lag_seconds double precision,
  stalled_after interval,
  webhook text,
  PRIMARY KEY (topic, relation)
);
CREATE TABLE IF NOT EXISTS sluice.alerts (
  topic text NOT NULL,
  relation text NOT NULL,
  condition text NOT NULL,
  value double precision,
  threshold double precision,
  -- Kept with the alert, so its end reaches the webhook even after the rule is removed.
  webhook text,
  since timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, relation, condition)
);
CREATE OR REPLACE FUNCTION sluice.set_alert(topic text, stream text, max_lag_messages bigint DEFAULT NULL, max_lag_seconds double precision DEFAULT NULL,
  stalled_after interval DEFAULT NULL, webhook text DEFAULT NULL)
  RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  target text := (SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(stream));
BEGIN
  IF target IS NULL THEN
    RAISE EXCEPTION 'stream "%" does not exist', stream USING ERRCODE = 'undefined_table';
  END IF;
  IF max_lag_messages IS NULL AND max_lag_seconds IS NULL AND stalled_after IS NULL THEN
    DELETE FROM sluice.alert_rules r WHERE r.topic = set_alert.topic AND r.relation = target;
    RETURN 'removed';
  END IF;
  IF max_lag_messages < 0 OR max_lag_seconds < 0 OR stalled_after <= interval '0' THEN
    RAISE EXCEPTION 'max_lag_messages and max_lag_seconds must be at least 0, stalled_after positive' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO sluice.alert_rules VALUES (topic, target, max_lag_messages, max_lag_seconds, stalled_after, webhook)
  ON CONFLICT ON CONSTRAINT alert_rules_pkey DO UPDATE SET max_lag_messages = EXCLUDED.max_lag_messages, max_lag_seconds = EXCLUDED.max_lag_seconds,
    stalled_after = EXCLUDED.stalled_after, webhook = EXCLUDED.webhook;
  RETURN 'success';
END $$;
`;

interface Breach {
  topic: string;
  relation: string;
  condition: 'lag' | 'lag_seconds' | 'stalled';
  value: number;
  threshold: number;
  webhook: string | null;
}

export class AlertWatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly line: BackgroundSession;
  /** Per rule: the offsets applied when last seen moving, and when. */
  private readonly progress = new Map<string, { applied: string; at: number }>();

  constructor(
    store: ServingStore,
    private readonly log: Logger,
    private readonly intervalMs = Number(process.env.SLUICE_ALERT_INTERVAL_MS ?? 5000),
  ) {
    this.line = new BackgroundSession(store, 'sluice: alerts');
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.check()
        .catch((err) => this.log.warn({ err }, 'checking alerts failed; retrying at the next round'))
        .finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await this.line.close();
  }

  /** One round: the breaches now, against the alerts open, started and ended alerts told. */
  async check(): Promise<void> {
    const changes = await this.line.run(async ({ conn }) => {
      const openRows = (await conn.query('SELECT topic, relation, condition, value::text, webhook FROM sluice.alerts')).rows as (string | null)[][];
      const breaches = await this.breaches(conn, openRows);
      const open = openRows.map(([t, r, c]) => `${t}\u0000${r}\u0000${c}`);
      const openWebhooks = new Map(openRows.map(([t, r, c, , w]) => [`${t}\u0000${r}\u0000${c}`, w]));
      const now = new Set(breaches.map((b) => `${b.topic}\u0000${b.relation}\u0000${b.condition}`));
      const started = breaches.filter((b) => !open.includes(`${b.topic}\u0000${b.relation}\u0000${b.condition}`));
      const ended = open.filter((key) => !now.has(key)).map((key) => key.split('\u0000'));
      for (const b of breaches) {
        await conn.query(
          `INSERT INTO sluice.alerts (topic, relation, condition, value, threshold, webhook) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (topic, relation, condition) DO UPDATE SET value = EXCLUDED.value, threshold = EXCLUDED.threshold, webhook = EXCLUDED.webhook, updated_at = now()`,
          [b.topic, b.relation, b.condition, String(b.value), String(b.threshold), b.webhook],
        );
      }
      for (const [topic, relation, condition] of ended) {
        await conn.query('DELETE FROM sluice.alerts WHERE topic = $1 AND relation = $2 AND condition = $3', [topic, relation, condition]);
      }
      const events = [
        ...started.map((b) => ({ event: { state: 'firing', topic: b.topic, stream: b.relation, condition: b.condition, value: b.value, threshold: b.threshold }, webhook: b.webhook })),
        ...ended.map(([topic, relation, condition]) => ({
          event: { state: 'resolved', topic, stream: relation, condition },
          webhook: openWebhooks.get(`${topic}\u0000${relation}\u0000${condition}`) ?? null,
        })),
      ];
      for (const { event } of events) await conn.query("SELECT pg_notify('sluice_alerts', $1)", [JSON.stringify(event)]);
      return events;
    });
    for (const { event, webhook } of changes) {
      this.log.warn(event, event.state === 'firing' ? 'alert firing' : 'alert resolved');
      if (webhook) await this.post(webhook, event);
    }
  }

  /** The rules breached now; `open` (the alerts already open) tells a restarted Sluice since when a source has been stalled. */
  private async breaches(conn: StoreConnection, open: (string | null)[][]): Promise<Breach[]> {
    const rows = (
      await conn.query(
        `SELECT r.topic, r.relation, r.max_lag_messages::text, extract(epoch FROM r.stalled_after)::text, r.webhook, s.lag::text,
                r.max_lag_seconds::text, s.lag_seconds::text,
                (SELECT coalesce(sum(o."offset"), 0)::text FROM pipeline_kafka.offsets o WHERE o.consumer_id = s.consumer_id)
         FROM sluice.alert_rules r LEFT JOIN pipeline_kafka.sources s ON s.topic = r.topic AND s.stream = r.relation AND s.state <> 'stopped'`,
      )
    ).rows;
    const breaches: Breach[] = [];
    const now = Date.now();
    for (const [topic, relation, maxLag, stalledAfter, webhook, lagText, maxLagSeconds, lagSecondsText, applied] of rows as string[][]) {
      const lag = Number(lagText ?? 0);
      if (maxLag !== null && lag > Number(maxLag)) breaches.push({ topic, relation, condition: 'lag', value: lag, threshold: Number(maxLag), webhook });
      const lagSeconds = Number(lagSecondsText ?? 0);
      if (maxLagSeconds !== null && lagSeconds > Number(maxLagSeconds)) {
        breaches.push({ topic, relation, condition: 'lag_seconds', value: lagSeconds, threshold: Number(maxLagSeconds), webhook });
      }
      const key = `${topic}\u0000${relation}`;
      const seen = this.progress.get(key);
      const stalledSince = () => {
        const alert = open.find(([t, r, c]) => t === topic && r === relation && c === 'stalled');
        return alert ? now - Number(alert[3]) * 1000 : now;
      };
      if (!seen) this.progress.set(key, { applied, at: lag === 0 ? now : stalledSince() });
      else if (seen.applied !== applied || lag === 0) this.progress.set(key, { applied, at: now });
      const stalledFor = (now - (this.progress.get(key)?.at ?? now)) / 1000;
      if (stalledAfter !== null && lag > 0 && stalledFor >= Number(stalledAfter)) {
        breaches.push({ topic, relation, condition: 'stalled', value: stalledFor, threshold: Number(stalledAfter), webhook });
      }
    }
    return breaches;
  }

  private async post(url: string, event: object): Promise<void> {
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event), signal: AbortSignal.timeout(5000) });
      if (!res.ok) this.log.warn({ url, status: res.status }, 'alert webhook refused the alert');
    } catch (err) {
      this.log.warn({ err, url }, 'alert webhook unreachable');
    }
  }
}
