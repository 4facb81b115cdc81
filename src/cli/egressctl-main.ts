/**
 * The `egressctl` program: bin/egressctl.js runs it from the sources through tsx, the production
 * build (scripts/build.ts) bundles it as dist/egressctl.mjs.
 */
import { main } from './egressctl.ts';

process.exitCode = await main(process.argv.slice(2));
