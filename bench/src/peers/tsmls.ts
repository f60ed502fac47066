/**
 * Peer: ts-mls 1.6 (RFC 9420 MLS in TypeScript), ciphersuite 1
 * (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519) with its default WebCrypto
 * provider. Issue 5 (peers: ts-mls application message encrypt/decrypt and
 * add/remove member commits at 10 and 100 members).
 *
 * How the group is built, and why it matters: the creator adds N-1 members
 * in one commit and only one of them (the member that receives) joins; the
 * others' leaves exist but never commit. That leaves the parent nodes of
 * the tree blank, so a commit's path secrets are encrypted to every leaf of
 * each copath subtree: close to N HPKE encryptions, the worst case for MLS.
 * A group whose members have all committed would pay about log2(N) instead.
 * Joining the group with every member (750 ms each at N=100 here) is what it
 * would take to measure that, and it would not fit the time budget.
 *
 * ts-mls state is immutable (transitions return a new state), so every
 * iteration starts from the same group state with a fresh key package.
 * Messages are encoded and decoded as MLSMessage, as on the wire.
 */
import {
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type MLSMessage,
  type PrivateKeyPackage,
  type Proposal,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  processPrivateMessage,
} from 'ts-mls';
import type { Runner } from '../runner.ts';

const SUBJECT = { section: 'peers', subject: 'ts-mls' } as const;
const TREE_NOTE = 'tree built by one commit adding N-1 members: blank parents, so commits encrypt to ~N leaves (MLS worst case)';
const text = new TextEncoder();

interface Member {
  readonly publicPackage: KeyPackage;
  readonly privatePackage: PrivateKeyPackage;
}

async function member(name: string, impl: CiphersuiteImpl): Promise<Member> {
  return generateKeyPackage({ credentialType: 'basic', identity: text.encode(name) }, defaultCapabilities(), defaultLifetime, [], impl);
}

/** Encodes and decodes, as the message would cross the wire. */
function wire(message: MLSMessage): MLSMessage {
  const decoded = decodeMlsMessage(encodeMlsMessage(message), 0);
  if (!decoded) throw new Error('ts-mls: message did not decode');
  return decoded[0];
}

function privateMessageOf(m: MLSMessage) {
  if (m.wireformat !== 'mls_private_message') throw new Error(`ts-mls: expected a private message, got ${m.wireformat}`);
  return m.privateMessage;
}

interface Group {
  readonly sender: ClientState;
  readonly receiver: ClientState;
}

/** A group of `size` members in which the creator (sender) and one other member (receiver) hold state. */
async function buildGroup(size: number, impl: CiphersuiteImpl): Promise<Group> {
  const creator = await member('creator', impl);
  let sender = await createGroup(text.encode(`group-${size}`), creator.publicPackage, creator.privatePackage, [], impl);
  const receiver = await member('receiver', impl);
  const adds: Proposal[] = [{ proposalType: 'add', add: { keyPackage: receiver.publicPackage } }];
  for (let i = 2; i < size; i++) adds.push({ proposalType: 'add', add: { keyPackage: (await member(`m${i}`, impl)).publicPackage } });
  const commit = await createCommit({ state: sender, cipherSuite: impl }, { extraProposals: adds });
  sender = commit.newState;
  if (!commit.welcome) throw new Error('ts-mls: no welcome for added members');
  const receiverState = await joinGroup(
    commit.welcome,
    receiver.publicPackage,
    receiver.privatePackage,
    emptyPskIndex,
    impl,
    sender.ratchetTree,
  );
  return { sender, receiver: receiverState };
}

export async function runTsMls(runner: Runner): Promise<void> {
  const impl = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
  const body = new Uint8Array(100).fill(7);
  // Commits at N=100 take ~0.1 s and a join ~0.75 s: one per sample, few samples.
  const slow = { maxIterations: 1, samples: runner.quick ? 3 : 5, minSamples: 3, warmupSamples: 1 };

  for (const size of runner.profile.mlsGroupSizes) {
    runner.progress(`ts-mls: building a group of ${size}`);
    const group = await buildGroup(size, impl);
    const at = { ...SUBJECT, groupSize: size } as const;

    let sender = group.sender;
    let receiver = group.receiver;
    await runner.time(
      { ...at, op: `group-message@${size}`, label: `MLS app message encrypt + one member decrypt, 100 B, N=${size}` },
      {
        async: true,
        async run() {
          const out = await createApplicationMessage(sender, body, impl);
          sender = out.newState;
          const m = wire({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: out.privateMessage });
          const got = await processPrivateMessage(receiver, privateMessageOf(m), emptyPskIndex, impl);
          receiver = got.newState;
          if (got.kind !== 'applicationMessage' || got.message.length !== body.length) throw new Error('ts-mls: round trip failed');
        },
      },
    );

    // Add: the committer, one existing member processing the commit, the joiner.
    const addCommits: { commit: MLSMessage; welcome: MLSMessage; joiner: Member; tree: ClientState['ratchetTree'] }[] = [];
    await runner.time(
      { ...at, op: `group-add-sender@${size}`, label: `add member: commit (committer), N=${size}`, note: TREE_NOTE },
      {
        async: true,
        prepare: async (n) => Promise.all(Array.from({ length: n }, (_, i) => member(`joiner${i}`, impl))),
        async run(joiners, i) {
          const joiner = joiners[i] as Member;
          const out = await createCommit(
            { state: group.sender, cipherSuite: impl },
            { extraProposals: [{ proposalType: 'add', add: { keyPackage: joiner.publicPackage } }] },
          );
          if (!out.welcome) throw new Error('ts-mls: no welcome');
          const welcome = wire({ version: 'mls10', wireformat: 'mls_welcome', welcome: out.welcome });
          if (addCommits.length < 8) addCommits.push({ commit: wire(out.commit), welcome, joiner, tree: out.newState.ratchetTree });
        },
      },
      slow,
    );
    await runner.time(
      { ...at, op: `group-add-member@${size}`, label: `add member: process commit (per member), N=${size}`, note: TREE_NOTE },
      {
        async: true,
        async run(_ctx, i) {
          const c = addCommits[i % addCommits.length];
          if (!c) throw new Error('ts-mls: no commit recorded');
          const got = await processPrivateMessage(group.receiver, privateMessageOf(c.commit), emptyPskIndex, impl);
          if (got.kind !== 'newState') throw new Error('ts-mls: commit not applied');
        },
      },
      slow,
    );
    await runner.time(
      {
        ...at,
        op: `group-add-joiner@${size}`,
        label: `add member: joiner processes welcome, N=${size}`,
        note: 'ratchet tree passed out of band',
      },
      {
        async: true,
        async run(_ctx, i) {
          const c = addCommits[i % addCommits.length];
          if (c?.welcome.wireformat !== 'mls_welcome') throw new Error('ts-mls: no welcome recorded');
          await joinGroup(c.welcome.welcome, c.joiner.publicPackage, c.joiner.privatePackage, emptyPskIndex, impl, c.tree);
        },
      },
      slow,
    );

    // Remove: a member that is neither the committer nor the receiver.
    const removals: MLSMessage[] = [];
    const removed = size - 1;
    await runner.time(
      { ...at, op: `group-remove-sender@${size}`, label: `remove member: commit (committer), N=${size}`, note: TREE_NOTE },
      {
        async: true,
        async run() {
          const out = await createCommit(
            { state: group.sender, cipherSuite: impl },
            { extraProposals: [{ proposalType: 'remove', remove: { removed } }] },
          );
          if (removals.length < 8) removals.push(wire(out.commit));
        },
      },
      slow,
    );
    await runner.time(
      { ...at, op: `group-remove-member@${size}`, label: `remove member: process commit (per member), N=${size}`, note: TREE_NOTE },
      {
        async: true,
        async run(_ctx, i) {
          const c = removals[i % removals.length];
          if (!c) throw new Error('ts-mls: no removal recorded');
          const got = await processPrivateMessage(group.receiver, privateMessageOf(c), emptyPskIndex, impl);
          if (got.kind !== 'newState') throw new Error('ts-mls: commit not applied');
        },
      },
      slow,
    );
  }
}
