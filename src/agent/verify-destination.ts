import { errorMessage } from '../core/errors.ts';
import { parseCidr } from '../policy/cidr.ts';
import type { Resolver } from './resolve.ts';
import type { UpstreamPlan } from './upstream-plan.ts';

/**
 * The verify stage, for passthrough (resolution NONE) connections decided
 * by name: the IP the client dialled must be one the name resolves to (the
 * agent asks its own resolver, `--resolve` included) or be covered by the
 * ServiceEntry's `addresses`. Returns why not, or undefined when it is.
 */
export async function verifyDestination(check: NonNullable<UpstreamPlan['verify']>, port: number, resolve: Resolver): Promise<string | undefined> {
  if (check.listed.some((cidr) => covers(cidr, check.address))) return undefined;
  let addresses: string[];
  try {
    addresses = await resolve(check.name, port);
  } catch (err) {
    return `${check.address} cannot be checked against ${check.name}: ${errorMessage(err)}`;
  }
  const dialled = canonical(check.address);
  if (addresses.some((a) => canonical(a) === dialled)) return undefined;
  const listed = check.listed.length > 0 ? ` nor in the ServiceEntry addresses (${check.listed.join(', ')})` : '';
  return `${check.address} is not an address of ${check.name} (${addresses.join(', ')})${listed}`;
}

/** Whether `cidr` (canonical, as the policy keeps it) contains `address`. */
function covers(cidr: string, address: string): boolean {
  const block = parseCidr(cidr);
  return block !== undefined && parseCidr(`${address}/${block.prefix}`)?.text === block.text;
}

function canonical(address: string): string {
  return parseCidr(address)?.text ?? address;
}
