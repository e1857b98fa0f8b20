/** Kafka: pipeline_kafka's consumers (sources), behind a small client interface. */
export { KafkaConnector, type KafkaClientFactory } from './connector.ts';
export { KafkajsClient } from './kafkajs-client.ts';
export type { KafkaClient } from './client.ts';
