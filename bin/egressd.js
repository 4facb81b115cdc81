#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, resolved from this package, not the caller's cwd.
// Production runs the bundle instead: `npm run build`, then `node dist/egressd.mjs` (see docs/build.md).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/egressd-main.ts');
