// The connection guard on its own (front-door/connections.ts): who is
// displaced at each cap, and that authenticated connections never are.
// spec/09-relay.md §8.2.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionGuard, RESERVED_DESCRIPTORS, effectiveMaxConnections, markAuthenticated } from '../src/front-door/connections.ts';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    // A real socket emits 'close' later; the guard must not count it twice.
    queueMicrotask(() => this.emit('close'));
  }
}

const socket = (address: string) => new FakeSocket(address) as unknown as Socket & FakeSocket;

function guard(maxConnections: number, maxConnectionsPerAddress: number) {
  const events: string[] = [];
  const g = new ConnectionGuard({ maxConnections, maxConnectionsPerAddress }, (e, cap) => {
    if (e !== 'accepted') events.push(`${e}:${cap}`);
  });
  return { g, events };
}

describe('ConnectionGuard', () => {
  it('at the per-address cap closes that address its oldest unauthenticated connection, not anyone else', () => {
    const { g, events } = guard(100, 2);
    const [a1, a2, a3, b1] = [socket('10.0.0.1'), socket('10.0.0.1'), socket('10.0.0.1'), socket('10.0.0.2')];
    for (const s of [b1, a1, a2, a3]) g.admit(s);
    expect([a1.destroyed, a2.destroyed, a3.destroyed, b1.destroyed]).toEqual([true, false, false, false]);
    expect(events).toEqual(['evicted:address']);
    expect(g.open).toBe(3);
  });

  it('never displaces an authenticated connection; when all are authenticated the new one is refused', () => {
    const { g, events } = guard(100, 2);
    const [a1, a2, a3] = [socket('10.0.0.1'), socket('10.0.0.1'), socket('10.0.0.1')];
    g.admit(a1);
    g.admit(a2);
    markAuthenticated(a1);
    markAuthenticated(a2);
    g.admit(a3);
    expect([a1.destroyed, a2.destroyed, a3.destroyed]).toEqual([false, false, true]);
    expect(events).toEqual(['refused:address']);
  });

  it('at the total cap closes the oldest unauthenticated connection of any address', async () => {
    const { g, events } = guard(3, 10);
    const [a, b, c, d] = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map(socket) as (Socket & FakeSocket)[];
    g.admit(a as Socket);
    markAuthenticated(a);
    g.admit(b as Socket);
    g.admit(c as Socket);
    g.admit(d as Socket);
    expect([a?.destroyed, b?.destroyed, c?.destroyed, d?.destroyed]).toEqual([false, true, false, false]);
    expect(events).toEqual(['evicted:total']);
    await Promise.resolve();
    expect(g.open).toBe(3);
  });

  it('frees a place when a connection closes, counted once', async () => {
    const { g } = guard(2, 2);
    const [a, b] = [socket('10.0.0.1'), socket('10.0.0.1')];
    g.admit(a);
    g.admit(b);
    markAuthenticated(a);
    markAuthenticated(b);
    a.destroy();
    a.emit('close');
    await Promise.resolve();
    expect(g.open).toBe(1);
    const c = socket('10.0.0.1');
    g.admit(c);
    expect(c.destroyed).toBe(false);
    expect(g.open).toBe(2);
  });

  it('lowers the total cap to fit the open-file limit, with room for storage and files', () => {
    expect(effectiveMaxConnections(8192, 1024)).toBe(1024 - RESERVED_DESCRIPTORS);
    expect(effectiveMaxConnections(8192, 1_048_576)).toBe(8192);
    expect(effectiveMaxConnections(8192, undefined)).toBe(8192);
  });
});
