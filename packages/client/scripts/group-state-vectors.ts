/**
 * Writes test-vectors/group-state.json: the group state, its hash, the
 * group-update content and the change rules of spec/08-groups.md §13 and
 * spec/10-client.md §3.2, pinned byte for byte.
 *
 *   node --import tsx packages/client/scripts/group-state-vectors.ts
 *
 * Deterministic: fixed group id and accounts. The expected bytes are built
 * here from the spec's definitions (CBOR arrays and SHA-256 of the backend),
 * not by calling src/state/group-state.ts or the content encoder, so the
 * vector test compares two constructions. Expected refusals are written
 * from the spec's table (§13.2, §13.5).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CborValue, encodeCbor, nobleBackend, toHex } from '@parley/core';

/** Bump when the shape of the file changes. */
const VECTOR_FORMAT_VERSION = 1;

export const VECTOR_FILE = fileURLToPath(new URL('../../../test-vectors/group-state.json', import.meta.url));

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

interface State {
  revision: number;
  name: string;
  members: Uint8Array[];
  admins: Uint8Array[];
  parent: Uint8Array;
  author: Uint8Array;
}

const backend = nobleBackend;
const fill = (n: number, len = 32) => new Uint8Array(len).fill(n);
const groupId = fill(7);
const [A, B, C, D] = [fill(1), fill(2), fill(3), fill(4)] as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
const ZERO = fill(0);

const stateCbor = (s: State) => encodeCbor(['parley/group-state', 1, groupId, s.revision, s.name, s.members, s.admins, s.parent, s.author]);
const hashOf = (s: State) => backend.sha256(stateCbor(s));
const stateJson = (s: State): Json => ({
  revision: s.revision,
  name: s.name,
  members: s.members.map(toHex),
  admins: s.admins.map(toHex),
  parent: toHex(s.parent),
  author: toHex(s.author),
});
/** A change by A unless `change` names another author. */
const childOf = (p: State, change: Partial<State>): State => ({ ...p, revision: p.revision + 1, parent: hashOf(p), author: A, ...change });

/** Content = [1, 8 (group-update), messageId, sentAt(8), expireTimer, group, body, null]. */
const updateContent = (body: CborValue[]) => encodeCbor([1, 8, fill(0xab, 16), fill(0, 8), 0, groupId, body, null]);
const body = (s: State, epoch: number): CborValue[] => [s.revision, s.name, s.members, epoch, s.admins, s.parent, s.author];

export function buildVectors(): Json {
  const root: State = { revision: 1, name: 'g', members: [A], admins: [A], parent: ZERO, author: A };
  const three: State = { revision: 1, name: 'climbing', members: [A, B, C], admins: [A], parent: ZERO, author: A };
  const promoted = childOf(three, { admins: [A, B] });
  const bLeaves = childOf(three, { members: [A, C], author: B });
  const states = [root, three, promoted, bLeaves].map((s, i) => ({
    comment: ['a new group of one', 'a new group of three, its creator the admin', 'A makes B an admin', 'B leaves'][i] as string,
    result: 'valid',
    groupId: toHex(groupId),
    state: stateJson(s),
    stateCbor: toHex(stateCbor(s)),
    stateHash: toHex(hashOf(s)),
  }));

  interface UpdateCase {
    comment: string;
    bytes: Uint8Array;
    result: 'valid' | 'invalid';
    code?: string;
    state?: Json;
    epoch?: number;
  }
  const updateCases: UpdateCase[] = [
    {
      comment: 'the group-update for "A makes B an admin", epoch 5',
      bytes: updateContent(body(promoted, 5)),
      result: 'valid',
      state: stateJson(promoted),
      epoch: 5,
    },
    {
      comment: 'revision 2^32-1',
      bytes: updateContent(body({ ...promoted, revision: 0xffffffff }, 0)),
      result: 'invalid',
      code: 'OVERSIZED',
    },
    { comment: 'revision 0', bytes: updateContent(body({ ...promoted, revision: 0 }, 0)), result: 'invalid', code: 'MALFORMED' },
    {
      comment: 'joining epoch 2^32-2 (above MAX_GROUP_JOIN_EPOCH)',
      bytes: updateContent(body(promoted, 0xfffffffe)),
      result: 'invalid',
      code: 'OVERSIZED',
    },
    {
      comment: 'an admin that is not a member',
      bytes: updateContent(body({ ...promoted, admins: [D] }, 0)),
      result: 'invalid',
      code: 'MALFORMED',
    },
    {
      comment: 'a member listed twice',
      bytes: updateContent(body({ ...promoted, members: [A, B, B] }, 0)),
      result: 'invalid',
      code: 'MALFORMED',
    },
    { comment: 'no admin', bytes: updateContent(body({ ...promoted, admins: [] }, 0)), result: 'invalid', code: 'MALFORMED' },
    {
      comment: 'a 31-byte parent',
      bytes: updateContent(body({ ...promoted, parent: fill(1, 31) }, 0)),
      result: 'invalid',
      code: 'MALFORMED',
    },
    {
      comment: 'no author (a body of six fields)',
      bytes: updateContent(body(promoted, 0).slice(0, 6)),
      result: 'invalid',
      code: 'MALFORMED',
    },
    {
      comment: 'a 31-byte author',
      bytes: updateContent([...body(promoted, 0).slice(0, 6), fill(1, 31)]),
      result: 'invalid',
      code: 'MALFORMED',
    },
    {
      comment: 'the four-field body of the format before §13 (no admins, no parent)',
      bytes: updateContent([2, 'g', [A, B, C], 0]),
      result: 'invalid',
      code: 'MALFORMED',
    },
  ];
  const updates = updateCases.map(
    ({ bytes, comment, result, code, state, epoch }): Json => ({
      comment,
      result,
      content: toHex(bytes),
      ...(state !== undefined ? { state, epoch: epoch ?? 0 } : {}),
      ...(code !== undefined ? { code } : {}),
    }),
  );

  const change = (comment: string, parent: State, child: State, author: Uint8Array, code: string | null): Json => ({
    comment,
    result: code ? 'invalid' : 'valid',
    parent: stateJson(parent),
    child: stateJson(child),
    author: toHex(author),
    ...(code ? { code } : {}),
  });
  const last: State = { ...three, revision: 0xfffffffe };
  const changes = [
    change('an admin adds a member and makes it admin', three, childOf(three, { members: [A, B, C, D], admins: [A, D] }), A, null),
    change('a member leaves', three, bLeaves, B, null),
    change('a member leaves and renames', three, childOf(three, { members: [A, C], name: 'x', author: B }), B, 'NOT_GROUP_ADMIN'),
    change('a member removes another', three, childOf(three, { members: [A, B], author: B }), B, 'NOT_GROUP_ADMIN'),
    change('a member makes itself admin', three, childOf(three, { admins: [A, B], author: B }), B, 'NOT_GROUP_ADMIN'),
    change('a non-member renames', three, childOf(three, { name: 'x', author: D }), D, 'NOT_GROUP_ADMIN'),
    change('an admin leaves no admin', three, childOf(three, { admins: [] }), A, 'NOT_GROUP_ADMIN'),
    change('a skipped revision', three, childOf(three, { revision: 3 }), A, 'GROUP_OUT_OF_ORDER'),
    change('a change of the last revision', last, childOf(last, { revision: 0xffffffff }), A, 'GROUP_LIMIT'),
  ];

  const tie = (comment: string, parent: State, children: [State, Uint8Array][], winner: number): Json => ({
    comment,
    result: 'valid',
    parent: stateJson(parent),
    children: children.map(([c]) => stateJson(c)),
    authors: children.map(([, a]) => toHex(a)),
    head: toHex(hashOf((children[winner] as [State, Uint8Array])[0])),
  });
  const byA = childOf(promoted, { name: 'by A' });
  const byB = childOf(promoted, { name: 'by B', author: B });
  const one = childOf(promoted, { name: 'one' });
  const two = childOf(promoted, { name: 'two' });
  const lower = toHex(hashOf(one)) < toHex(hashOf(two)) ? 0 : 1;
  const bFirst: State = { ...promoted, admins: [B, A] };
  const removesB = childOf(bFirst, { members: [A, C], admins: [A] });
  const renameByB = childOf(bFirst, { name: 'by B', author: B });
  const removesA = childOf(promoted, { members: [B, C], admins: [B], author: B });
  const removesB2 = childOf(promoted, { members: [A, C], admins: [A] });
  const ties = [
    tie(
      'two admins change one parent at once: the admin listed first in the parent (A) wins',
      promoted,
      [
        [byB, B],
        [byA, A],
      ],
      1,
    ),
    tie(
      'two changes of one parent by the same admin (two of its devices): the lower state hash wins',
      promoted,
      [
        [one, A],
        [two, A],
      ],
      lower,
    ),
    tie(
      'a removal beats a change by the removed, even one listed first (B)',
      bFirst,
      [
        [renameByB, B],
        [removesB, A],
      ],
      1,
    ),
    tie(
      'two admins remove each other: the one listed first in the parent (A) wins',
      promoted,
      [
        [removesA, B],
        [removesB2, A],
      ],
      1,
    ),
  ];

  return {
    description:
      'Group membership states (spec/08-groups.md §13): the state hash, the group-update content that carries a state (spec/10-client.md §3.2), who may make which change, and which of concurrent changes every device keeps.',
    spec: 'spec/08-groups.md',
    version: VECTOR_FORMAT_VERSION,
    notes: {
      stateHash:
        'SHA-256(CBOR(["parley/group-state", 1, groupId, revision, name, members, admins, parent])), deterministic CBOR (spec 01 §2).',
      body: "group-update body = [revision, name, members, epoch, admins, parent]; epoch is the sender's core epoch and is not hashed.",
    },
    testGroups: [
      { type: 'GroupStateHash', spec: '08 §13.1', tests: states },
      { type: 'GroupUpdateContent', spec: '10 §3.2, 08 §13.5', tests: updates },
      { type: 'GroupChange', spec: '08 §13.2', tests: changes },
      { type: 'GroupForkChoice', spec: '08 §13.4', tests: ties },
    ],
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(VECTOR_FILE, `${JSON.stringify(buildVectors(), null, 2)}\n`);
  console.log(`wrote ${VECTOR_FILE}`);
}
