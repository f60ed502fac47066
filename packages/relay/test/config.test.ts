// Configuration from defaults, environment and flags. README.md lists the options.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CONFIG, OPTIONS, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('defaults to 127.0.0.1:8787 and ./data, 30-day TTL', () => {
    const c = loadConfig([], {});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8787, dataDir: resolve('./data'), messageTtlSeconds: 30 * 24 * 3600 });
    expect(c.limits).toEqual(DEFAULT_CONFIG.limits);
  });

  it('reads HOST, PORT, PARLEY_DATA_DIR and PARLEY_* limits from the environment', () => {
    const c = loadConfig([], {
      HOST: '0.0.0.0',
      PORT: '9000',
      PARLEY_DATA_DIR: '/tmp/x',
      PARLEY_MAX_ENVELOPE_BYTES: '2048',
      PARLEY_TRUST_PROXY: 'yes',
    });
    expect(c).toMatchObject({ host: '0.0.0.0', port: 9000, dataDir: '/tmp/x', trustProxy: true });
    expect(c.limits.maxEnvelopeBytes).toBe(2048);
    expect(DEFAULT_CONFIG.limits.maxEnvelopeBytes).not.toBe(2048);
  });

  it('flags win over the environment', () => {
    const c = loadConfig(['--port', '7000', '--bundle-fetches-per-minute-per-account=5'], { PORT: '9000' });
    expect(c.port).toBe(7000);
    expect(c.rateLimits.bundleFetchesPerMinutePerAccount).toBe(5);
  });

  it('refuses bad values and unknown flags, naming the option', () => {
    expect(() => loadConfig([], { PORT: 'http' })).toThrow(ConfigError);
    expect(() => loadConfig([], { PORT: '70000' })).toThrow(/port/);
    expect(() => loadConfig([], { PARLEY_METRICS: 'maybe' })).toThrow(/PARLEY_METRICS/);
    expect(() => loadConfig(['--max-envelope-bytes', '-1'], {})).toThrow(/--max-envelope-bytes/);
    expect(() => loadConfig(['--no-such-flag', '1'], {})).toThrow();
  });

  it('every option has an environment variable and a flag', () => {
    for (const o of OPTIONS) {
      expect(o.env).toMatch(/^(HOST|PORT|PARLEY_[A-Z_]+)$/);
      expect(o.flag).toMatch(/^[a-z-]+$/);
    }
    expect(OPTIONS.map((o) => o.env)).toContain('PARLEY_DATA_DIR');
  });

  it('the README documents every option', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const o of OPTIONS) {
      expect(readme).toContain(`\`${o.env}\``);
      expect(readme).toContain(`\`--${o.flag}\``);
    }
  });
});
