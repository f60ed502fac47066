/**
 * The web chat's entry: opens this browser profile's IndexedDB store, then
 * either the chat (an identity is stored) or the welcome screen (create an
 * account, or link this browser to an existing one).
 *
 * `?profile=NAME` keeps several identities apart in one browser (each its
 * own database); the relay is the page's own origin.
 */
import { webCryptoCurves } from '@parley/core';
import { IndexedDbStore, ParleyClient, connectRelay, isClientError } from '@parley/client';
import { ChatView } from './chat.ts';
import { errorText, h, mount } from './dom.ts';

/** Retry delay after the relay could not be reached (the SDK backs off from here up to 30 s). */
const RETRY_DELAY_MS = 1000;

const root = document.getElementById('root') as HTMLElement;
const profile = new URLSearchParams(location.search).get('profile') || 'default';
const relay = connectRelay(location.origin);
const options = { retryDelayMs: RETRY_DELAY_MS };
// WebCrypto's X25519 and Ed25519 where this browser has them (null elsewhere: noble alone); spec 01 §4.2.1.
const curves = webCryptoCurves().catch(() => null);

async function boot(): Promise<void> {
  let store: IndexedDbStore;
  try {
    store = await IndexedDbStore.open(`parley-web:${profile}`, {
      onError: (e) => fatal(`Storage failed (${e.code}). Reload the page.`),
    });
  } catch (e) {
    fatal(errorText(e));
    return;
  }
  try {
    const client = await ParleyClient.open({ store, relay, options, curves: await curves });
    await startChat(client, store);
  } catch (e) {
    if (isClientError(e) && e.code === 'NOT_REGISTERED') welcome(store);
    else fatal(errorText(e));
  }
}

async function startChat(client: ParleyClient, store: IndexedDbStore): Promise<void> {
  const view = new ChatView(root, client, profile);
  view.render();
  window.addEventListener('pagehide', () => {
    void client.close().finally(() => store.close());
  });
  await client.start();
}

function welcome(store: IndexedDbStore): void {
  const error = h('p', { class: 'error', 'data-testid': 'welcome-error' });
  const create = async () => {
    error.textContent = '';
    try {
      const client = await ParleyClient.createAccount({ store, relay, options, curves: await curves });
      await startChat(client, store);
    } catch (e) {
      error.textContent = errorText(e);
    }
  };
  mount(
    root,
    h(
      'div',
      { class: 'welcome', 'data-testid': 'welcome' },
      h('h1', {}, 'Parley'),
      h('p', {}, 'End-to-end encrypted chat. Your keys and messages stay in this browser.'),
      h(
        'div',
        { class: 'row' },
        h('button', { 'data-testid': 'create-account', onclick: create }, 'Create an account'),
        h('button', { class: 'plain', 'data-testid': 'start-link', onclick: () => linkScreen(store) }, 'Link to my account'),
      ),
      error,
    ),
  );
}

/** Linking this browser as a second device: show the request, paste the primary's response. */
function linkScreen(store: IndexedDbStore): void {
  const request = ParleyClient.requestLink({ store });
  const response = h('textarea', { rows: 4, 'data-testid': 'link-response-input', placeholder: 'paste the response here' });
  const error = h('p', { class: 'error' });
  const finish = async () => {
    try {
      const client = await ParleyClient.completeLink({ store, relay, options, curves: await curves }, response.value.trim());
      await startChat(client, store);
    } catch (e) {
      error.textContent = errorText(e);
    }
  };
  mount(
    root,
    h(
      'div',
      { class: 'welcome', 'data-testid': 'link-screen' },
      h('h1', {}, 'Link this browser'),
      h('p', {}, 'On your primary device choose "Link device" and paste this request:'),
      h('textarea', { rows: 4, readonly: true, 'data-testid': 'link-request' }, request),
      h('p', {}, 'Then paste the response it shows:'),
      response,
      h('div', { class: 'row' }, h('button', { 'data-testid': 'finish-link', onclick: finish }, 'Link')),
      error,
    ),
  );
}

function fatal(message: string): void {
  mount(root, h('div', { class: 'welcome', 'data-testid': 'fatal' }, h('h1', {}, 'Parley'), h('p', { class: 'error' }, message)));
}

void boot();
