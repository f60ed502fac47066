/**
 * Drives programs under a real terminal: a private tmux server (its own
 * socket, so no user session is touched), panes read with capture-pane and
 * polled until a pattern shows or a bounded deadline passes. Every call is
 * asynchronous, so a relay running in the test process keeps serving.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** True when a tmux binary is on PATH. */
export function hasTmux(): boolean {
  return (process.env['PATH'] ?? '').split(':').some((dir) => existsSync(`${dir}/tmux`));
}

export class Tmux {
  readonly #socket: string;

  constructor(socket: string) {
    this.#socket = socket;
  }

  async #tmux(...args: string[]): Promise<string> {
    const { stdout } = await run('tmux', ['-S', this.#socket, ...args], { maxBuffer: 1 << 20 });
    return stdout;
  }

  /** Starts `command` (an argv, quoted for the shell tmux uses) in a new 200x50 session. */
  async start(session: string, argv: readonly string[], env: Record<string, string> = {}): Promise<void> {
    const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    const line = [...Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`), ...argv.map(quote)].join(' ');
    // "; sleep" keeps the pane (and its last words) readable after the program exits.
    await this.#tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', `env ${line}; echo "[exit $?]"; sleep 600`);
  }

  /** Types text (literally), then Enter unless told not to. */
  async type(session: string, text: string, enter = true): Promise<void> {
    if (text) await this.#tmux('send-keys', '-t', session, '-l', text);
    if (enter) await this.#tmux('send-keys', '-t', session, 'Enter');
  }

  /** The pane's text, its scrollback included. */
  capture(session: string): Promise<string> {
    return this.#tmux('capture-pane', '-p', '-J', '-S', '-2000', '-t', session);
  }

  /** Polls the pane until `pattern` matches; throws with the pane's text after `timeoutMs`. */
  async waitFor(session: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await this.capture(session);
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`pane ${session} never showed ${pattern} in ${timeoutMs} ms; it shows:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async kill(): Promise<void> {
    await this.#tmux('kill-server').catch(() => undefined);
  }
}
