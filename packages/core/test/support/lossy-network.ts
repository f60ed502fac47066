/**
 * A two-party network that reorders, loses and duplicates, driven by a
 * fast-check script: the "every message exactly once" property of the v1 and
 * v2 session tests plays the same network over either session kind.
 */
import fc from 'fast-check';

export type Side = 'a' | 'b';

/** One step: who sends, whether the message is lost or duplicated, and which pending message (if any) arrives now. */
export interface NetworkStep {
  readonly from: boolean;
  readonly deliver: number;
  readonly duplicate: boolean;
  readonly drop: boolean;
}

/** 1 to 40 steps. */
export const networkScript: fc.Arbitrary<NetworkStep[]> = fc.array(
  fc.record({ from: fc.boolean(), deliver: fc.nat(), duplicate: fc.boolean(), drop: fc.boolean() }),
  { minLength: 1, maxLength: 40 },
);

/**
 * Plays `script`: each step `send`s one text (A0, B1, ... by sender and
 * step) from a (`from`) or b, drops or duplicates it as told, and on every
 * even `deliver` hands one pending message (picked by `deliver`) to
 * `receive`; what is still pending at the end arrives in order.
 * `duplicate` tells `receive` that this side already got that text.
 */
export function playNetwork<M>(
  script: readonly NetworkStep[],
  send: (from: Side, text: string) => M,
  receive: (to: Side, message: M, text: string, duplicate: boolean) => void,
): void {
  const inFlight: { to: Side; message: M; text: string }[] = [];
  const received = { a: new Set<string>(), b: new Set<string>() };
  const hand = (m: { to: Side; message: M; text: string }) => {
    const seen = received[m.to];
    receive(m.to, m.message, m.text, seen.has(m.text));
    seen.add(m.text);
  };
  let n = 0;
  for (const step of script) {
    const text = `${step.from ? 'A' : 'B'}${n++}`;
    const message = send(step.from ? 'a' : 'b', text);
    const to: Side = step.from ? 'b' : 'a';
    if (!step.drop) inFlight.push({ to, message, text });
    if (step.duplicate && !step.drop) inFlight.push({ to, message, text });
    if (inFlight.length > 0 && step.deliver % 2 === 0) {
      const [m] = inFlight.splice(step.deliver % inFlight.length, 1);
      if (m) hand(m);
    }
  }
  while (inFlight.length) hand(inFlight.shift() as (typeof inFlight)[number]);
}
