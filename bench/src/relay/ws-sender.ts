/**
 * A device that sends over its authenticated websocket (spec/09-relay.md
 * §5.4): challenge-response once, then binary CBOR send frames numbered
 * 1, 2, 3, ... each answered "sent" (committed) or "send-failed". The load
 * generator's cheap sender: no signature, hash or base64 per envelope, so
 * the 2 shared cores go to the relay rather than to the generator.
 *
 * It ignores pushed envelopes (a sender in the load test receives none).
 */
import { encodeCbor } from '@parley/core';
import type { CborValue, DeviceIdentity } from '@parley/core';
import { WEBSOCKET_LABEL, deviceSigner, fromBase64Url, toBase64Url, websocketStatementBody } from '@parley/client/relay-client';
import WebSocket from 'ws';

export interface WsElement {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  readonly id: string;
  readonly envelope: Uint8Array;
}

export interface WsSendFailure {
  readonly code: string;
  readonly message: string;
}

type Settle = (result: { accepted: number } | { error: WsSendFailure }) => void;

export class WsSender {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, Settle>();
  #counter = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as { type: string; counter?: number; accepted?: number; error?: WsSendFailure };
      if (frame.type !== 'sent' && frame.type !== 'send-failed') return;
      const settle = this.#pending.get(frame.counter as number);
      if (!settle) return;
      this.#pending.delete(frame.counter as number);
      settle(frame.type === 'sent' ? { accepted: frame.accepted as number } : { error: frame.error as WsSendFailure });
    });
    // A socket whose relay died (multi-process.ts kills one) errors, then closes: the close settles its frames.
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      for (const settle of this.#pending.values()) settle({ error: { code: 'CLOSED', message: `${code} ${reason.toString()}` } });
      this.#pending.clear();
    });
  }

  /** Opens and authenticates `device`'s websocket on the relay at `url` (http://host:port). */
  static open(url: string, device: DeviceIdentity): Promise<WsSender> {
    const base = new URL(url);
    const wsUrl = new URL('/v1/websocket', base);
    wsUrl.protocol = 'ws:';
    const signer = deviceSigner(device);
    const ws = new WebSocket(wsUrl);
    return new Promise((resolve, reject) => {
      const onMessage = (data: WebSocket.RawData) => {
        const frame = JSON.parse(data.toString()) as { type: string; challenge?: string };
        if (frame.type === 'challenge' && frame.challenge) {
          const body = websocketStatementBody(base.host, fromBase64Url(frame.challenge), signer);
          ws.send(
            JSON.stringify({
              type: 'auth',
              account: toBase64Url(signer.accountKey),
              deviceId: signer.deviceId,
              signature: toBase64Url(signer.signStatement(WEBSOCKET_LABEL, body)),
            }),
          );
        } else if (frame.type === 'ready') {
          ws.off('message', onMessage);
          resolve(new WsSender(ws));
        }
      };
      ws.on('message', onMessage);
      ws.once('error', reject);
      ws.once('close', (code) => reject(new Error(`websocket closed ${code} before ready`)));
    });
  }

  /** Sends one frame; resolves when the relay answers it. */
  send(elements: readonly WsElement[]): Promise<{ accepted: number } | { error: WsSendFailure }> {
    // ws drops a frame sent on a closed socket without a word: answer it here, or it would wait forever.
    if (this.#ws.readyState !== WebSocket.OPEN) return Promise.resolve({ error: { code: 'CLOSED', message: 'socket closed' } });
    const counter = ++this.#counter;
    const frame: CborValue = ['send', counter, null, elements.map((e) => [e.accountKey, e.deviceId, e.id, e.envelope, null])];
    return new Promise((resolve) => {
      this.#pending.set(counter, resolve);
      this.#ws.send(encodeCbor(frame), { binary: true });
    });
  }

  /** Frames sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.size;
  }

  close(): void {
    this.#ws.close();
  }
}
