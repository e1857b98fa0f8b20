/** Kafka: pipeline_kafka's consumers (sources), behind a small client interface. */
import type { KafkaClient } from './client.ts';
import { KafkajsClient } from './kafkajs-client.ts';
import { PlatformaticClient } from './platformatic-client.ts';

export { KafkaConnector, type KafkaClientFactory } from './connector.ts';
export { KafkajsClient } from './kafkajs-client.ts';
export { PlatformaticClient } from './platformatic-client.ts';
export type { KafkaClient } from './client.ts';

/** The Kafka client library by SLUICE_KAFKA_CLIENT: `kafkajs` (the default) or `platformatic` (@platformatic/kafka). */
export function createKafkaClient(brokers: string[]): KafkaClient {
  const name = process.env.SLUICE_KAFKA_CLIENT ?? 'kafkajs';
  if (name === 'platformatic') return new PlatformaticClient(brokers);
  if (name === 'kafkajs') return new KafkajsClient(brokers);
  throw new Error(`SLUICE_KAFKA_CLIENT must be 'kafkajs' or 'platformatic', not '${name}'`);
}
