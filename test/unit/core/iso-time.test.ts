import test from 'ava';
import { isoTime } from '../../../src/core/iso-time.ts';

test('isoTime is Date#toISOString: epoch, leap days, the last millisecond of a year, now, and 20,000 random instants', (t) => {
  const instants = [0, 951_782_400_000, 951_868_799_999, 1_709_164_800_123, 4_102_444_799_999, -1, Date.now()];
  for (let i = 0; i < 20_000; i++) instants.push(Math.floor(Math.random() * 253_402_300_799_999));
  for (const ms of instants) {
    if (isoTime(ms) !== new Date(ms).toISOString()) t.fail(`${ms}: ${isoTime(ms)} vs ${new Date(ms).toISOString()}`);
  }
  t.is(isoTime(951_782_400_000), '2000-02-29T00:00:00.000Z');
});
