#!/usr/bin/env node
// Sluice is written in TypeScript and runs through tsx's loader, so there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
