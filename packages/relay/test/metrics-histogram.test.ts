// LoopHistogram (src/metrics-histogram.ts) scrapes exactly as prom-client's Histogram does for the same
// observations: operators' dashboards and the load bench read these series by name and label.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LoopHistogram } from '../src/metrics-histogram.ts';

const BUCKETS = [0.0001, 0.001, 0.0025, 0.01, 0.25, 1];
/** Values on, between, below and above the bounds. */
const VALUES = [0, 0.0001, 0.00011, 0.001, 0.002, 0.0025, 0.3, 1, 1.5, 42, 0.01, 0.009999];

function pair(labelName?: string) {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({
    name: 'h_seconds',
    help: 'a help text',
    buckets: BUCKETS,
    ...(labelName ? { labelNames: [labelName] } : {}),
    registers: [theirs],
  });
  const loop = new LoopHistogram({
    name: 'h_seconds',
    help: 'a help text',
    buckets: BUCKETS,
    ...(labelName ? { labelName } : {}),
    registers: [ours],
  });
  return { theirs, ours, reference, loop };
}

describe('LoopHistogram', () => {
  it('renders the text and JSON of a prom-client Histogram without labels, before and after observations', async () => {
    const { theirs, ours, reference, loop } = pair();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const v of VALUES) {
      reference.observe(v);
      loop.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    ours.resetMetrics();
    theirs.resetMetrics();
    loop.observe(0.5);
    reference.observe(0.5);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('renders one series per label value, in first-observed order, as prom-client does', async () => {
    const { theirs, ours, reference, loop } = pair('phase');
    expect(await ours.metrics()).toBe(await theirs.metrics());
    VALUES.forEach((v, i) => {
      const phase = ['sync', 'wait', 'transaction'][i % 3] as string;
      reference.observe({ phase }, v);
      loop.observeAt(phase, v);
    });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('refuses a value that is not a finite number, as prom-client does, counting nothing', async () => {
    const { theirs, ours, reference, loop } = pair();
    expect(() => reference.observe(Number.NaN)).toThrow(TypeError);
    expect(() => loop.observe(Number.NaN)).toThrow(TypeError);
    expect(() => loop.observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
