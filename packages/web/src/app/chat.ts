/**
 * The chat screen: conversations on the left, the open one on the right,
 * dialogs for adding a contact, making a group, linking a device and the
 * safety number. Everything shown is read back from the SDK (history,
 * contacts, groups) after each event, so what the page shows is what the
 * store holds.
 */
import {
  type AttachmentInfo,
  MAX_REPORT_CONTEXT,
  type ParleyClient,
  REPORT_REASONS,
  REPORT_REASON_LABELS,
  type ReportReason,
  type ReportRequest,
  type StoredMessage,
  isReportError,
} from '@parley/client';
import { dialog, errorText, h, mount } from './dom.ts';
import { STATUS_MARK, TIMER_CHOICES, digitGroups, shortId, sizeText, time, toBase64Url } from './format.ts';
import { MAX_INLINE_BYTES, MediaCache, kindOf } from './media.ts';
import { qrCanvas } from './qr.ts';
import { reportOutcomeText, reportPreviewNodes } from './report.ts';

/** How long a "typing" indicator stays without a refresh from the sender. */
const TYPING_SHOWN_MS = 6000;
/** Messages of the open conversation shown (the latest). */
const HISTORY_SHOWN = 200;
/** Conversations with non-contacts remembered for the list (oldest dropped): anyone can message us, so it is bounded. */
const MAX_REMEMBERED = 500;

export class ChatView {
  readonly #root: HTMLElement;
  readonly #client: ParleyClient;
  readonly #media: MediaCache;
  /** Conversations with someone not (yet) in the contacts: remembered per profile in localStorage (UI state only). */
  readonly #seenKey: string;
  #active: string | null = null;
  #connection = 'closed';
  #typing = new Map<string, number>();
  #renderQueued = false;
  #messagesEl: HTMLElement | null = null;
  readonly #mediaNodes = new Map<string, HTMLElement>();

  constructor(root: HTMLElement, client: ParleyClient, profile: string) {
    this.#root = root;
    this.#client = client;
    this.#media = new MediaCache(client);
    this.#seenKey = `parley-web:${profile}:conversations`;
    const rerender = () => this.#queueRender();
    client.on('message', (m) => {
      this.#remember(m.conversation);
      this.#typing.delete(m.conversation);
      rerender();
    });
    for (const event of ['receipt', 'sent', 'group-change', 'timer-change', 'devices-change', 'safety-number-change'] as const)
      client.on(event, rerender);
    client.on('sent', () => {
      // The relay took a message that waited while we were offline: say so where the warning was.
      const toast = document.querySelector('[data-testid=toast]');
      if (toast?.textContent?.startsWith('Offline')) this.#toast('Back online: queued messages went out.');
    });
    client.on('typing', (t) => {
      if (t.typing) this.#typing.set(t.conversation, Date.now() + TYPING_SHOWN_MS);
      else this.#typing.delete(t.conversation);
      rerender();
    });
    client.on('connection', (c) => {
      this.#connection = c.state;
      rerender();
    });
    const first = this.#conversations()[0];
    this.#active = new URLSearchParams(location.hash.slice(1)).get('c') ?? first?.id ?? null;
  }

  render(): void {
    const me = this.#client.accountId;
    const header = h(
      'header',
      {},
      h('strong', {}, 'Parley'),
      h('span', { class: 'me', title: me, 'data-testid': 'my-id' }, me),
      h('button', { class: 'plain', 'data-testid': 'copy-id', onclick: () => void navigator.clipboard?.writeText(me) }, 'Copy my id'),
      h('button', { class: 'plain', 'data-testid': 'show-qr', onclick: () => this.#myQr() }, 'QR'),
      h('span', { class: 'spacer' }),
      h(
        'span',
        { class: `conn ${this.#connection}`, 'data-testid': 'connection' },
        this.#connection === 'drained' ? 'online' : this.#connection,
      ),
      h('button', { 'data-testid': 'add-contact', onclick: () => this.#addContact() }, 'Add contact'),
      h('button', { 'data-testid': 'new-group', onclick: () => this.#newGroup() }, 'New group'),
      this.#client.isPrimary
        ? h('button', { class: 'plain', 'data-testid': 'link-device', onclick: () => this.#linkDevice() }, 'Link device')
        : null,
    );
    mount(this.#root, h('div', { class: 'shell' }, header, this.#sidebar(), this.#chat()));
    if (this.#messagesEl) this.#messagesEl.scrollTop = this.#messagesEl.scrollHeight;
    this.#markRead();
  }

  #queueRender(): void {
    if (this.#renderQueued) return;
    this.#renderQueued = true;
    queueMicrotask(() => {
      this.#renderQueued = false;
      // Keep what the user is typing across re-renders.
      const draft = (this.#root.querySelector('[data-testid=composer]') as HTMLInputElement | null)?.value ?? '';
      const focused = document.activeElement?.getAttribute('data-testid') === 'composer';
      this.render();
      const composer = this.#root.querySelector('[data-testid=composer]') as HTMLInputElement | null;
      if (composer) {
        composer.value = draft;
        if (focused) composer.focus();
      }
    });
  }

  // ---- conversations ---------------------------------------------------------

  #conversations(): { id: string; name: string }[] {
    const out = new Map<string, string>();
    for (const c of this.#client.contacts()) out.set(c.account, c.verified ? `${c.name} ✔` : c.name);
    for (const g of this.#client.groups()) out.set(g.conversation, `# ${g.name}`);
    for (const id of this.#seen()) if (!out.has(id) && id !== this.#client.accountId) out.set(id, shortId(id));
    return [...out].map(([id, name]) => ({ id, name }));
  }

  #seen(): string[] {
    try {
      const v = JSON.parse(localStorage.getItem(this.#seenKey) ?? '[]');
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    } catch {
      return [];
    }
  }

  #remember(id: string): void {
    const seen = this.#seen();
    if (!seen.includes(id)) localStorage.setItem(this.#seenKey, JSON.stringify([...seen, id].slice(-MAX_REMEMBERED)));
  }

  #nameOf(account: string): string {
    if (account === this.#client.accountId) return 'me';
    return this.#client.contacts().find((c) => c.account === account)?.name ?? shortId(account);
  }

  #sidebar(): HTMLElement {
    const list = this.#conversations();
    const items = list.map(({ id, name }) => {
      const unread = this.#safeHistory(id).filter((m) => !m.outgoing && m.status !== 'read').length;
      return h(
        'div',
        {
          class: `conv${id === this.#active ? ' active' : ''}`,
          'data-testid': 'conversation',
          'data-id': id,
          onclick: () => this.#open(id),
        },
        h('span', {}, name),
        unread && id !== this.#active ? h('span', { class: 'badge' }, String(unread)) : null,
      );
    });
    return h('aside', {}, ...(items.length ? items : [h('p', { class: 'empty' }, 'No conversations yet: add a contact by account id.')]));
  }

  #open(id: string): void {
    this.#active = id;
    this.#remember(id);
    history.replaceState(null, '', `${location.search}#c=${encodeURIComponent(id)}`);
    this.render();
  }

  #safeHistory(id: string): StoredMessage[] {
    try {
      return this.#client.history(id, HISTORY_SHOWN);
    } catch {
      return [];
    }
  }

  // ---- the open conversation -------------------------------------------------

  #chat(): HTMLElement {
    const id = this.#active;
    this.#messagesEl = null;
    if (!id) return h('section', { class: 'chat' }, h('p', { class: 'none' }, 'Pick a conversation, or add a contact.'));
    const isGroup = id.startsWith('g.');
    const group = isGroup ? this.#client.group(id) : null;
    const title = group ? `# ${group.name} (${group.members.length} members)` : this.#nameOf(id);
    const timer = this.#client.expireTimer(id);
    const timerSelect = h(
      'select',
      {
        'data-testid': 'timer',
        title: 'Disappearing messages',
        onchange: (ev: Event) => {
          const seconds = Number((ev.target as HTMLSelectElement).value);
          void this.#client.setExpireTimer(id, seconds).catch((e) => this.#toast(errorText(e)));
        },
      },
      ...TIMER_CHOICES.map(([s, label]) => h('option', { value: String(s), selected: s === timer }, `disappearing: ${label}`)),
    );
    const bar = h(
      'div',
      { class: 'bar' },
      h('span', { class: 'title', 'data-testid': 'chat-title' }, title),
      timerSelect,
      isGroup
        ? null
        : h('button', { class: 'plain', 'data-testid': 'safety-number', onclick: () => this.#safetyNumber(id) }, 'Safety number'),
    );
    const messages = h(
      'div',
      { class: 'messages', 'data-testid': 'messages' },
      ...this.#safeHistory(id).map((m) => this.#message(id, m, isGroup)),
    );
    this.#messagesEl = messages;
    const typingUntil = this.#typing.get(id) ?? 0;
    const typing = h('div', { class: 'typing', 'data-testid': 'typing' }, typingUntil > Date.now() ? 'typing…' : '');
    return h('section', { class: 'chat' }, bar, messages, typing, this.#composer(id));
  }

  #message(conversation: string, m: StoredMessage, isGroup: boolean): HTMLElement {
    const body = m.content.body;
    const sender = toBase64Url(m.sender.accountKey);
    const parts: (Node | null)[] = [];
    if (isGroup && !m.outgoing) parts.push(h('div', { class: 'who' }, this.#nameOf(sender)));
    if (body.type === 'text') parts.push(h('div', { class: 'text' }, body.text));
    else if (body.type === 'attachment') {
      parts.push(this.#mediaHolder(body.attachment));
      if (body.caption) parts.push(h('div', { class: 'text' }, body.caption));
    }
    const meta = [time(m.content.sentAt)];
    if (m.outgoing) meta.push(STATUS_MARK[m.status] ?? m.status);
    if (m.expiresAt !== null) meta.push(`disappears ${time(m.expiresAt)}`);
    const report = m.outgoing
      ? null
      : h(
          'button',
          { class: 'plain report', 'data-testid': 'report', title: 'Report this message', onclick: () => this.#report(conversation, m) },
          'Report',
        );
    return h(
      'div',
      { class: `msg ${m.outgoing ? 'out' : 'in'}`, 'data-testid': 'message', 'data-status': m.status },
      ...parts,
      h('div', { class: 'meta' }, meta.join(' · '), report ? ' · ' : null, report),
    );
  }

  /**
   * One element per attachment for the page's lifetime, moved into each re-render: a video keeps
   * playing (and an image is not decoded again) when a message arrives and the list is redrawn.
   */
  #mediaHolder(attachment: AttachmentInfo): HTMLElement {
    const known = this.#mediaNodes.get(attachment.id);
    if (known) return known;
    const kind = kindOf(attachment.contentType);
    const holder = h('div', { class: 'media', 'data-testid': `media-${kind}` });
    const name = attachment.fileName ?? 'file';
    const show = () => {
      holder.replaceChildren(h('span', {}, `loading ${name}…`));
      void this.#media.url(attachment).then(
        (url) => {
          if (kind === 'image') holder.replaceChildren(h('img', { src: url, alt: name, 'data-testid': 'inline-image' }));
          else if (kind === 'video') holder.replaceChildren(h('video', { src: url, controls: true, 'data-testid': 'inline-video' }));
          else holder.replaceChildren(h('a', { href: url, download: name }, `save ${name}`));
        },
        (e) => holder.replaceChildren(h('span', { class: 'error' }, `could not open ${name}: ${errorText(e)}`)),
      );
    };
    // Pictures and videos up to MAX_INLINE_BYTES load by themselves; anything else waits for a click.
    if (kind !== 'file' && attachment.size <= MAX_INLINE_BYTES) show();
    else holder.append(h('button', { class: 'plain', onclick: show }, `open ${name} (${sizeText(attachment.size)})`));
    this.#mediaNodes.set(attachment.id, holder);
    return holder;
  }

  #composer(id: string): HTMLElement {
    const input = h('input', { type: 'text', placeholder: 'Message', 'data-testid': 'composer', autocomplete: 'off' });
    let typingSent = false;
    input.addEventListener('input', () => {
      const now = input.value.length > 0;
      if (now !== typingSent) {
        typingSent = now;
        void this.#client.setTyping(id, now);
      }
    });
    const send = () => {
      const text = input.value.trim();
      if (!text) return;
      input.value = '';
      typingSent = false;
      // Shown as queued at once (it is in history); the relay being down is not an error to the user.
      void this.#client.sendText(id, text).catch((e) => this.#sendFailed(e));
      this.#queueRender();
    };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') send();
    });
    const file = h('input', {
      type: 'file',
      accept: 'image/*,video/*',
      'data-testid': 'file-input',
      onchange: () => {
        const f = file.files?.[0];
        file.value = '';
        if (!f) return;
        this.#toast(`Sending ${f.name}…`);
        void this.#client
          .sendFile(id, {
            stream: f.stream() as ReadableStream<Uint8Array>,
            size: f.size,
            fileName: f.name,
            contentType: f.type || undefined,
          })
          .then(
            () => this.#toast(''),
            (e) => this.#sendFailed(e),
          );
      },
    });
    return h(
      'div',
      { class: 'composer' },
      input,
      h('label', { class: 'file', title: 'Send a picture or a video' }, 'Attach', file),
      h('button', { 'data-testid': 'send', onclick: send }, 'Send'),
    );
  }

  #sendFailed(e: unknown): void {
    const code = (e as { code?: string }).code;
    if (code === 'RELAY_UNAVAILABLE') this.#toast('Offline: the message is queued and goes out when the relay is back.');
    else this.#toast(errorText(e));
    this.#queueRender();
  }

  #markRead(): void {
    const id = this.#active;
    if (!id || document.visibilityState === 'hidden') return;
    const unread = this.#safeHistory(id).some((m) => !m.outgoing && m.status !== 'read');
    if (unread)
      void this.#client.markRead(id).then(
        () => this.#queueRender(),
        () => {},
      );
  }

  #toast(text: string): void {
    let el = document.querySelector('[data-testid=toast]') as HTMLElement | null;
    if (!el) {
      el = h('div', { class: 'typing', 'data-testid': 'toast' });
      document.body.append(el);
    }
    el.textContent = text;
  }

  // ---- dialogs ---------------------------------------------------------------

  #addContact(): void {
    dialog('add-contact-dialog', (close) => {
      const id = h('input', { type: 'text', placeholder: 'account id', 'data-testid': 'contact-id' });
      const name = h('input', { type: 'text', placeholder: 'name', 'data-testid': 'contact-name' });
      const error = h('p', { class: 'error' });
      const add = async () => {
        try {
          await this.#client.addContact(id.value.trim(), name.value.trim());
          close();
          this.#open(id.value.trim());
        } catch (e) {
          error.textContent = errorText(e);
        }
      };
      return [
        h('h2', {}, 'Add a contact'),
        h('p', {}, 'Ask them for their account id (shown at the top of their screen).'),
        id,
        name,
        error,
        h(
          'div',
          { class: 'actions' },
          h('button', { class: 'plain', onclick: close }, 'Cancel'),
          h('button', { 'data-testid': 'contact-save', onclick: add }, 'Add'),
        ),
      ];
    });
  }

  #newGroup(): void {
    dialog('new-group-dialog', (close) => {
      const name = h('input', { type: 'text', placeholder: 'group name', 'data-testid': 'group-name' });
      const boxes = this.#client.contacts().map((c) => {
        const box = h('input', { type: 'checkbox', value: c.account, 'data-testid': 'group-member', 'data-name': c.name });
        return { box, row: h('label', {}, box, ` ${c.name}`) };
      });
      const error = h('p', { class: 'error' });
      const create = async () => {
        try {
          const members = boxes.filter((b) => b.box.checked).map((b) => b.box.value);
          const conversation = await this.#client.createGroup(name.value.trim(), members);
          close();
          this.#open(conversation);
        } catch (e) {
          error.textContent = errorText(e);
        }
      };
      return [
        h('h2', {}, 'New group'),
        name,
        ...boxes.map((b) => b.row),
        error,
        h(
          'div',
          { class: 'actions' },
          h('button', { class: 'plain', onclick: close }, 'Cancel'),
          h('button', { 'data-testid': 'group-save', onclick: create }, 'Create'),
        ),
      ];
    });
  }

  #linkDevice(): void {
    dialog('link-dialog', (close) => {
      const request = h('textarea', { rows: 4, placeholder: 'paste the request from the new device', 'data-testid': 'link-request-input' });
      const response = h('textarea', { rows: 4, readonly: true, 'data-testid': 'link-response' });
      const error = h('p', { class: 'error' });
      const approve = async () => {
        try {
          response.value = await this.#client.approveLink(request.value.trim());
        } catch (e) {
          error.textContent = errorText(e);
        }
      };
      return [
        h('h2', {}, 'Link a device'),
        h('p', {}, 'On the new browser choose "Link to my account", paste its request here, then paste the response back there.'),
        request,
        h('div', { class: 'actions' }, h('button', { 'data-testid': 'link-approve', onclick: approve }, 'Approve')),
        response,
        error,
        h('div', { class: 'actions' }, h('button', { class: 'plain', onclick: close }, 'Close')),
      ];
    });
  }

  /**
   * The report screen (spec/14-franking.md §6): reason, comment, context
   * messages picked from the same sender, and a preview that is exactly
   * what will be sent, rebuilt on every change; nothing leaves before
   * "Send report". A message that cannot be reported (it disappeared, our
   * own, sent by an old app, its proof expired) says why instead.
   */
  #report(conversation: string, m: StoredMessage): void {
    const messageId = toBase64Url(m.content.messageId);
    dialog('report-dialog', (close) => {
      const verdict = this.#client.reportable(conversation, messageId);
      if (!verdict.reportable) {
        return [
          h('h2', {}, 'Report'),
          h('p', { 'data-testid': 'report-unavailable' }, verdict.explanation),
          h('div', { class: 'actions' }, h('button', { class: 'plain', onclick: close }, 'Close')),
        ];
      }
      const reason = h(
        'select',
        { 'data-testid': 'report-reason' },
        ...(Object.keys(REPORT_REASONS) as ReportReason[]).map((r) => h('option', { value: r }, REPORT_REASON_LABELS[r])),
      );
      const comment = h('textarea', {
        rows: 2,
        maxlength: 1000,
        placeholder: 'anything the moderators should know (optional)',
        'data-testid': 'report-comment',
      });
      const sender = toBase64Url(m.sender.accountKey);
      // Context: the sender's other received messages here (the latest first), each checked as reportable.
      const candidates = this.#safeHistory(conversation)
        .filter((o) => !o.outgoing && toBase64Url(o.sender.accountKey) === sender && o.sender.deviceId === m.sender.deviceId)
        .filter((o) => toBase64Url(o.content.messageId) !== messageId)
        .slice(-30)
        .filter((o) => this.#client.reportable(conversation, toBase64Url(o.content.messageId)).reportable)
        .reverse();
      const boxes = candidates.map((o) => {
        const box = h('input', { type: 'checkbox', value: toBase64Url(o.content.messageId), 'data-testid': 'report-context' });
        const b = o.content.body;
        const label = b.type === 'text' ? b.text : b.type === 'attachment' ? `[file ${b.attachment.fileName ?? 'unnamed'}]` : `[${b.type}]`;
        return { box, row: h('label', { class: 'context' }, box, ` ${time(o.content.sentAt)} ${label}`) };
      });
      const preview = h('div', { class: 'report-preview', 'data-testid': 'report-preview' });
      const error = h('p', { class: 'error', 'data-testid': 'report-error' });
      const sendButton = h('button', { 'data-testid': 'report-send' }, 'Send report');
      const request = (): ReportRequest => ({
        conversation,
        messageId,
        context: boxes.filter((b) => b.box.checked).map((b) => b.box.value),
        reason: reason.value as ReportReason,
        comment: comment.value.trim(),
      });
      const refresh = () => {
        const picked = boxes.filter((b) => b.box.checked).length;
        for (const b of boxes) b.box.disabled = !b.box.checked && picked >= MAX_REPORT_CONTEXT;
        error.textContent = '';
        try {
          preview.replaceChildren(...reportPreviewNodes(this.#client.reportPreview(request()), (a) => this.#nameOf(a)));
          sendButton.disabled = false;
        } catch (e) {
          preview.replaceChildren();
          error.textContent = isReportError(e) ? reportOutcomeText(e) : errorText(e);
          sendButton.disabled = true;
        }
      };
      for (const el of [reason, comment, ...boxes.map((b) => b.box)]) el.addEventListener('input', refresh);
      sendButton.addEventListener('click', () => {
        sendButton.disabled = true;
        void this.#client.report(request()).then(
          (outcome) => {
            dialogBody.replaceChildren(
              h('h2', {}, 'Report sent'),
              h(
                'p',
                { 'data-testid': 'report-outcome' },
                `Report sent: ${outcome.items} message${outcome.items === 1 ? '' : 's'} queued for the moderators.`,
              ),
              h('div', { class: 'actions' }, h('button', { class: 'plain', onclick: close }, 'Close')),
            );
          },
          (e) => {
            error.textContent = isReportError(e) ? reportOutcomeText(e) : errorText(e);
            error.setAttribute('data-testid', 'report-outcome');
          },
        );
      });
      const dialogBody = h(
        'div',
        {},
        h('h2', {}, 'Report a message'),
        h('p', {}, 'Why are you reporting it?'),
        reason,
        comment,
        boxes.length ? h('p', {}, `Add up to ${MAX_REPORT_CONTEXT} earlier messages from the same person as context:`) : null,
        ...boxes.map((b) => b.row),
        h('h3', {}, 'This is exactly what will be sent to the moderators'),
        preview,
        error,
        h('div', { class: 'actions' }, h('button', { class: 'plain', onclick: close }, 'Cancel'), sendButton),
      );
      refresh();
      return [dialogBody];
    });
  }

  #myQr(): void {
    dialog('qr-dialog', (close) => [
      h('h2', {}, 'My account id'),
      h('p', {}, 'Let a friend scan this (or copy the id below) and add it as a contact.'),
      qrCanvas(this.#client.accountId, 'my-qr'),
      h('code', {}, this.#client.accountId),
      h('div', { class: 'actions' }, h('button', { class: 'plain', onclick: close }, 'Close')),
    ]);
  }

  #safetyNumber(id: string): void {
    dialog('safety-dialog', (close) => {
      const { digits } = this.#client.safetyNumber(id);
      const contact = this.#client.contacts().find((c) => c.account === id);
      const verify = () => {
        this.#client.verifySafetyNumber(id);
        close();
        this.render();
      };
      return [
        h('h2', {}, `Safety number with ${this.#nameOf(id)}`),
        h(
          'p',
          {},
          'Compare these digits with the ones on their screen, in person or over a call you trust. If they match, no one is in between.',
        ),
        h('div', { class: 'digits', 'data-testid': 'safety-digits' }, ...digitGroups(digits).map((g) => h('span', {}, g))),
        h('p', { 'data-testid': 'verified-state' }, contact?.verified ? 'Verified ✔' : 'Not verified yet'),
        h(
          'div',
          { class: 'actions' },
          h('button', { class: 'plain', onclick: close }, 'Close'),
          contact && !contact.verified
            ? h('button', { 'data-testid': 'mark-verified', onclick: verify }, 'They match: mark verified')
            : null,
        ),
      ];
    });
  }
}
