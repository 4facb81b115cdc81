#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, resolved from this package, not the caller's cwd.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/egressctl.ts');
process.exitCode = await main(process.argv.slice(2));
