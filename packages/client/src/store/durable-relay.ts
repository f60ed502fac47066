/**
 * For write-behind stores (IndexedDbStore): nothing that tells the relay
 * about new local state leaves before that state is durable.
 * spec/10-client.md §7.1.
 *
 * Wraps the relay link so that each call that publishes something derived
 * from stored secrets (an envelope encrypted with a new chain step, public
 * prekeys whose private halves were just stored, a registration, a device
 * removal) first awaits `store.flushed()`. Otherwise a reload in between
 * would encrypt again under the same message key, or leave the relay
 * handing out prekeys nobody holds. Reads pass straight through.
 */
import type { AccountRelayLink, RelayLink } from '../relay-link/link.ts';
import type { ClientStore } from './types.ts';

/** The link methods that publish local state. */
const PUBLISHING = new Set<string>(['registerDevice', 'uploadPreKeys', 'send', 'removeDevice']);

export function durableRelay<L extends RelayLink & Partial<AccountRelayLink>>(link: L, store: ClientStore): L {
  if (typeof store.flushed !== 'function') return link;
  const flushed = () => (store.flushed as () => Promise<void>).call(store);
  return new Proxy(link, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      // Methods run on the link itself: it may keep private (#) fields, which a proxy as `this` cannot reach.
      if (typeof property !== 'string' || !PUBLISHING.has(property)) return value.bind(target);
      return async (...args: unknown[]) => {
        await flushed();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
