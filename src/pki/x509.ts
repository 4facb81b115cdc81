/**
 * The one place @peculiar/x509 is imported from. It needs a Reflect polyfill
 * loaded before it (its dependency injection container), and a WebCrypto
 * provider: Node's own, so keys stay in node:crypto.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
