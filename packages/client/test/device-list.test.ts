/**
 * Signed device lists and the device verdict (spec/10-client.md §5).
 */
import { Account, ParleyError, encodeCertificate, toHex } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { compareDeviceLists, decodeSignedDeviceList, listsCertificate, signDeviceList } from '../src/devices/device-list.ts';
import { judgeDevices, trustsCertificate } from '../src/devices/trust.ts';

const alice = Account.generate();
const phone = alice.createDevice(1).certificate;
const laptop = alice.createDevice(2).certificate;
const tablet = alice.createDevice(3).certificate;
const mallory = Account.generate();

describe('signed device lists', () => {
  it('sign, decode, verify; sorted by device id whatever the input order', () => {
    const list = signDeviceList(alice, 4, [laptop, phone]);
    const back = decodeSignedDeviceList(list.encoded, alice.publicKey);
    expect(back.revision).toBe(4);
    expect([...back.devices.keys()]).toEqual([1, 2]);
    expect(listsCertificate(back, laptop)).toBe(true);
    expect(listsCertificate(back, tablet)).toBe(false);
    expect(toHex(signDeviceList(alice, 4, [phone, laptop]).encoded)).toBe(toHex(list.encoded));
  });

  it('refuses a list signed by another key, or naming another account', () => {
    const list = signDeviceList(alice, 1, [phone]);
    expect(() => decodeSignedDeviceList(list.encoded, mallory.publicKey)).toThrow(expect.objectContaining({ code: 'BAD_SIGNATURE' }));
    const forged = signDeviceList(mallory, 1, [mallory.createDevice(1).certificate]);
    expect(() => decodeSignedDeviceList(forged.encoded, alice.publicKey)).toThrow(ParleyError);
    const tampered = list.encoded.slice();
    tampered[10] = (tampered[10] as number) ^ 1;
    expect(() => decodeSignedDeviceList(tampered, alice.publicKey)).toThrow(ParleyError);
  });

  it('orders revisions: newer replaces, older is ignored, the same revision with other contents is a conflict', () => {
    const r1 = signDeviceList(alice, 1, [phone]);
    const r2 = signDeviceList(alice, 2, [phone, laptop]);
    const r2b = signDeviceList(alice, 2, [phone, tablet]);
    expect(compareDeviceLists(null, r1)).toBe('newer');
    expect(compareDeviceLists(r1, r2)).toBe('newer');
    expect(compareDeviceLists(r2, r1)).toBe('older');
    expect(compareDeviceLists(r2, r2)).toBe('same');
    expect(compareDeviceLists(r2, r2b)).toBe('conflict');
  });
});

describe('judging the relay list', () => {
  const entry = (c: typeof phone, deviceId = c.deviceId) => ({ deviceId, certificate: encodeCertificate(c) });

  // Changed on purpose (issue 11 finding 3): certificates never expire, so without a signed list
  // nothing tells a current device from a removed one; first contact is no longer trust on first use.
  it('trusts no device while no signed list is held, however well certified', () => {
    const v = judgeDevices(alice.publicKey, [entry(phone), entry(laptop)], null);
    expect(v.trusted).toEqual([]);
    expect(v.refused).toEqual([
      { deviceId: 1, reason: 'no-device-list' },
      { deviceId: 2, reason: 'no-device-list' },
    ]);
    const list = signDeviceList(alice, 1, [phone, laptop]);
    expect(judgeDevices(alice.publicKey, [entry(phone), entry(laptop)], list).trusted.map((c) => c.deviceId)).toEqual([1, 2]);
  });

  it('refuses a removed device the relay re-lists, once a newer list leaves it out', () => {
    const list = signDeviceList(alice, 3, [phone]);
    const v = judgeDevices(alice.publicKey, [entry(phone), entry(laptop)], list);
    expect(v.trusted.map((c) => c.deviceId)).toEqual([1]);
    expect(v.refused).toEqual([{ deviceId: 2, reason: 'not-in-device-list' }]);
  });

  it('refuses forged, malformed, misplaced and duplicated entries', () => {
    const forged = { ...mallory.createDevice(5).certificate, accountKey: alice.publicKey };
    const v = judgeDevices(
      alice.publicKey,
      [
        entry(phone),
        { deviceId: 5, certificate: encodeCertificate(forged) },
        { deviceId: 6, certificate: Uint8Array.of(1, 2, 3) },
        entry(laptop, 9),
        entry(tablet),
        entry(tablet),
      ],
      signDeviceList(alice, 1, [phone, laptop, tablet]),
    );
    expect(v.trusted.map((c) => c.deviceId)).toEqual([1]);
    expect(v.refused).toEqual([
      { deviceId: 3, reason: 'duplicate' },
      { deviceId: 5, reason: 'bad-certificate' },
      { deviceId: 6, reason: 'malformed' },
      { deviceId: 9, reason: 'wrong-device-id' },
    ]);
  });

  it('checks a certificate met in a message the same way', () => {
    const list = signDeviceList(alice, 2, [phone, laptop]);
    expect(trustsCertificate(alice.publicKey, laptop, list)).toBe(true);
    expect(trustsCertificate(alice.publicKey, tablet, list)).toBe(false);
    expect(trustsCertificate(alice.publicKey, tablet, null)).toBe(false);
    expect(trustsCertificate(mallory.publicKey, phone, null)).toBe(false);
  });
});
