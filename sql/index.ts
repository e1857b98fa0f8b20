/** Sluice's SQL front end: parser, router, planner, catalog and the statements Sluice runs itself. */
export { SluiceService } from './service.ts';
export { parseQuery, loadParser } from './parser.ts';
