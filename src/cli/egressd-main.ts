/**
 * The `egressd` program: bin/egressd.js runs it from the sources through tsx, the production
 * build (scripts/build.ts) bundles it as dist/egressd.mjs.
 */
import { main } from './egressd.ts';

process.exitCode = await main(process.argv.slice(2));
