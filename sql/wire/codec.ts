/**
 * PostgreSQL protocol 3.0, server side: frontend parsing and backend
 * serializing/scanning. Import the wire codec from here.
 */
export * from './frontend.ts';
export * from './backend.ts';
