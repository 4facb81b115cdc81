import test from 'ava';
import { RequestHostCheck } from '../../../src/core/http1-request-host.ts';

test('names of the allowed host pass however they are written; the first other name is returned', (t) => {
  const check = new RequestHostCheck('API.example.test.');
  t.is(check.host, 'api.example.test');
  t.is(check.other('api.example.test', null), undefined);
  // The same name again (kept as sent), then other spellings of it.
  t.is(check.other('api.example.test', null), undefined);
  t.is(check.other('Api.Example.Test', 'api.example.test.'), undefined);
  t.is(check.other('evil.example.test', null), 'evil.example.test');
  t.is(check.other('api.example.test', 'evil.example.test'), 'evil.example.test');
  t.is(check.other(null, 'evil.example.test'), 'evil.example.test');
  // A name that matched before does not let a different one through after it.
  t.is(check.other('api.example.test', null), undefined);
  t.is(check.other('api.example.tes', null), 'api.example.tes');
});

test('a connection allowed for no host (HTTP/1.0 without Host) takes no name', (t) => {
  const check = new RequestHostCheck(null);
  t.is(check.host, null);
  t.is(check.other(null, null), undefined);
  t.is(check.other('api.example.test', null), 'api.example.test');
});
