/**
 * test-vectors/group-state.json through the implementation: the state hash
 * (spec/08-groups.md §13.1), the group-update decoder (spec/10-client.md
 * §3.2), the change rules (§13.2) and the fork choice (§13.4). The file is
 * built by packages/client/scripts/group-state-vectors.ts from the spec's
 * definitions; the first test checks it is exactly what the script makes.
 */
import { readFileSync } from 'node:fs';
import { defaultProvider, fromHex, toHex } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { buildVectors, VECTOR_FILE } from '../scripts/group-state-vectors.ts';
import { decodeContent } from '../src/content/content.ts';
import { type GroupStateCore, type KnownState, ROOT_PARENT, addState, checkChange, headOf, stateHash } from '../src/state/group-state.ts';

interface StateJson {
  revision: number;
  name: string;
  members: string[];
  admins: string[];
  parent: string;
  author: string;
}
interface Case {
  comment: string;
  result: 'valid' | 'invalid';
  code?: string;
  [field: string]: unknown;
}

const file = JSON.parse(readFileSync(VECTOR_FILE, 'utf8')) as { testGroups: { type: string; tests: Case[] }[] };
const group = (type: string) => file.testGroups.find((g) => g.type === type)?.tests ?? [];
const p = defaultProvider();
const groupId = new Uint8Array(32).fill(7);
const state = (s: StateJson): GroupStateCore => ({
  revision: s.revision,
  name: s.name,
  members: s.members.map(fromHex),
  admins: s.admins.map(fromHex),
  parent: fromHex(s.parent),
  author: fromHex(s.author),
});

describe('group-state vectors', () => {
  it('are exactly what the generator makes (byte stability)', () => {
    expect(`${JSON.stringify(buildVectors(), null, 2)}\n`).toBe(readFileSync(VECTOR_FILE, 'utf8'));
  });

  it('GroupStateHash: the implementation hashes every state to the vector', () => {
    const tests = group('GroupStateHash');
    expect(tests.length).toBeGreaterThan(0);
    for (const t of tests)
      expect(toHex(stateHash(p, fromHex(t.groupId as string), state(t.state as StateJson))), t.comment).toBe(t.stateHash);
  });

  it('GroupUpdateContent: valid contents decode to the state; invalid ones are refused with the code', () => {
    for (const t of group('GroupUpdateContent')) {
      const bytes = fromHex(t.content as string);
      if (t.result === 'valid') {
        const c = decodeContent(bytes);
        if (c.body.type !== 'group-update') throw new Error(t.comment);
        const s = t.state as StateJson;
        expect(c.body.state.revision, t.comment).toBe(s.revision);
        expect(c.body.state.admins.map(toHex), t.comment).toEqual(s.admins);
        expect(toHex(c.body.state.parent), t.comment).toBe(s.parent);
        expect(c.body.state.epoch, t.comment).toBe(t.epoch);
      } else {
        expect(() => decodeContent(bytes), t.comment).toThrow(expect.objectContaining({ code: t.code }));
      }
    }
  });

  it('GroupChange: each change is allowed or refused with the code', () => {
    for (const t of group('GroupChange')) {
      const refusal = checkChange(state(t.parent as StateJson), state(t.child as StateJson), fromHex(t.author as string));
      expect(refusal?.code ?? null, t.comment).toBe(t.result === 'valid' ? null : t.code);
    }
  });

  it("GroupForkChoice: in either order of arrival the head is the vector's", () => {
    const tests = group('GroupForkChoice');
    expect(tests.length).toBeGreaterThan(0);
    for (const t of tests) {
      const parent = state(t.parent as StateJson);
      const anchor: KnownState = { state: parent, hash: stateHash(p, groupId, parent), author: null, valid: true };
      const children = (t.children as StateJson[]).map(state);
      const authors = (t.authors as string[]).map(fromHex);
      for (const order of [
        [0, 1],
        [1, 0],
      ]) {
        let states: readonly KnownState[] = [anchor];
        for (const i of order) {
          const c = children[i] as GroupStateCore;
          const r = addState(states, c, stateHash(p, groupId, c), authors[i] as Uint8Array);
          if (r.kind !== 'added') throw new Error(`${t.comment}: ${r.kind}`);
          states = r.states;
        }
        expect(toHex(headOf(states).hash), t.comment).toBe(t.head);
      }
    }
    expect(ROOT_PARENT).toEqual(new Uint8Array(32));
  });
});
