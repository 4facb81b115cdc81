/**
 * prom-client's process metrics, one file each (src/core/metrics.ts takes all but one); the
 * package types only its index.
 */
declare module 'prom-client/lib/metrics/*.js' {
  import type { Registry } from 'prom-client';

  const register: (registry: Registry, config: object) => void;
  export default register;
}
