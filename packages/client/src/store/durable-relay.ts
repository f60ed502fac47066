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
import type { AccountRelayLink, RelayLink, SealedRelayLink } from '../relay-link/link.ts';
import type { ClientStore } from './types.ts';

/** The link methods that publish local state. */
const PUBLISHING = new Set<string>(['registerDevice', 'uploadPreKeys', 'send', 'removeDevice']);

export function durableRelay<L extends RelayLink & Partial<AccountRelayLink>>(link: L, store: ClientStore): L {
  if (typeof store.flushed !== 'function') return link;
  const flushed = () => (store.flushed as () => Promise<void>).call(store);
  return new Proxy(link, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      // Sealed sends and token registrations publish local state too (spec/12): same rule, one level down.
      if (property === 'sealed' && value && typeof value === 'object') return durableSealed(value as unknown as SealedRelayLink, flushed);
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

function durableSealed(link: SealedRelayLink, flushed: () => Promise<void>): SealedRelayLink {
  return {
    registerTokens: async (tokens) => {
      await flushed();
      return link.registerTokens(tokens);
    },
    revokeTokens: (hashes) => link.revokeTokens(hashes),
    sendSealed: async (envelopes, options) => {
      await flushed();
      return link.sendSealed(envelopes, options);
    },
  };
}
