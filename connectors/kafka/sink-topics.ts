import { SqlError, SqlState } from '../../engine/errors.ts';
import type { StoreConnection } from '../../engine/store.ts';
import type { KafkaClient } from './client.ts';
import { TopicNotFoundError } from './client.ts';

/**
 * The topics a cluster's sinks write to, made sure of before messages go
 * out: a missing one is created with the partitions and replication factor
 * its sinks ask for (the broker's defaults otherwise), unless a sink says
 * `create_topic 'false'`; then producing waits, saying why, until someone
 * creates it. Kafka would otherwise retry a send to a missing topic for
 * minutes without saying anything useful.
 */
export class SinkTopics {
  private readonly ready = new Set<string>();

  constructor(private readonly cluster: string) {}

  async prepare(client: KafkaClient, conn: StoreConnection, topics: Iterable<string>): Promise<void> {
    for (const topic of new Set(topics)) {
      if (this.ready.has(topic)) continue;
      const wanted = await this.wanted(conn, topic);
      if (wanted.create) await client.ensureTopic(topic, wanted.partitions, wanted.replicationFactor);
      else await this.checkExists(client, topic);
      this.ready.add(topic);
    }
  }

  /** Whether every one of these topics is known to exist (prepare would do nothing). */
  allReady(topics: Iterable<string>): boolean {
    for (const topic of topics) if (!this.ready.has(topic)) return false;
    return true;
  }

  /** After a failed send: the topic may have been deleted since. */
  forget(): void {
    this.ready.clear();
  }

  private async checkExists(client: KafkaClient, topic: string): Promise<void> {
    try {
      await client.partitions(topic);
    } catch (err) {
      if (!(err instanceof TopicNotFoundError)) throw err;
      throw new SqlError(SqlState.undefinedObject, `Kafka topic "${topic}" does not exist, and its sink is declared with create_topic 'false'`, {
        hint: 'Create the topic (kafka-topics.sh --create), or declare the sink without create_topic so Sluice creates it.',
      });
    }
  }

  /** What the sinks writing to the topic ask for (several may: every one must allow creating it). */
  private async wanted(conn: StoreConnection, topic: string): Promise<{ create: boolean; partitions?: number; replicationFactor?: number }> {
    const result = await conn.query(
      `SELECT bool_and(coalesce(create_topic, true))::text, max(partitions)::text, max(replication_factor)::text
       FROM pipeline_kafka.sinks WHERE brokers = CASE WHEN $1 = '' THEN '(add_broker)' ELSE $1 END AND topic = $2`,
      [this.cluster, topic],
    );
    const [create, partitions, replicationFactor] = result.rows[0] ?? [];
    return {
      create: create !== 'false',
      ...(partitions ? { partitions: Number(partitions) } : {}),
      ...(replicationFactor ? { replicationFactor: Number(replicationFactor) } : {}),
    };
  }
}
