// keyward video_room demo, 2-man rule page: the client role, in the browser.
// Blob format in raw-key mode (PROTOCOLS / keyward::keysplit::crypto):
//   key = base64-decode(rawTwoManRuleKey) = hmac_key(32) || aes_key(32)
//   data_b64 = base64(iv(16) || AES-256-CBC-PKCS7(aes_key, iv, identity) || HMAC-SHA256(hmac_key, iv || ct))
'use strict';

const $ = (id) => document.getElementById(id);

function show(id, state, text) {
  $(id).dataset.state = state;
  $(id).textContent = text;
}

async function api(path, body) {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

const b64ToBytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
function bytesToB64(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function importKeys(rawTwoManRuleKey) {
  const key = b64ToBytes(rawTwoManRuleKey);
  if (key.length !== 64) throw new Error('a rawTwoManRuleKey is 64 bytes');
  const hmac = await crypto.subtle.importKey('raw', key.slice(0, 32), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  const aes = await crypto.subtle.importKey('raw', key.slice(32, 64), { name: 'AES-CBC' }, false, ['encrypt', 'decrypt']);
  key.fill(0);
  return { hmac, aes };
}

async function seal(keys, plaintext) {
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-CBC', iv }, keys.aes, plaintext));
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', keys.hmac, concat(iv, ct)));
  return bytesToB64(concat(iv, ct, mac));
}

async function open(keys, dataB64) {
  const blob = b64ToBytes(dataB64);
  if (blob.length < 16 + 16 + 32) throw new Error('blob too short');
  const iv = blob.slice(0, 16);
  const ct = blob.slice(16, blob.length - 32);
  const mac = blob.slice(blob.length - 32);
  // Check the MAC before decrypting anything.
  if (!(await crypto.subtle.verify('HMAC', keys.hmac, mac, concat(iv, ct)))) {
    throw new Error('the stored blob does not authenticate under this key');
  }
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-CBC', iv }, keys.aes, ct));
}

// The SSKS "front" API, called from the browser with the session the backend opened.
async function ssks(session, op, body) {
  const res = await fetch(`${session.ssks_url}/tmr/front/${op}/`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-SEALD-APPID': session.app_id,
      'X-SEALD-SESSION': session.session_id,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`SSKS ${op}: ${data.detail || JSON.stringify(data) || res.status}`);
  return data;
}

let pending = null; // the retrieve session waiting for its challenge

$('save-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  show('save-status', 'busy', 'Opening an SSKS session…');
  try {
    const session = await api('/api/tmr/session', { purpose: 'save' });
    if (session.must_authenticate) {
      throw new Error('SSKS already holds an identity for this email: retrieve it instead');
    }
    const keys = await importKeys(session.raw_two_man_rule_key);
    const data_b64 = await seal(keys, new TextEncoder().encode($('tmr-identity').value));
    const pushed = await ssks(session, 'push', { data_b64, auth_factor: session.auth_factor });
    show('save-status', 'ok', `Identity encrypted in the browser and stored on SSKS (id ${pushed.id}) for ${session.auth_factor.value}.`);
  } catch (e) {
    show('save-status', 'error', `Not saved - ${e.message}`);
  }
});

$('retrieve-button').addEventListener('click', async () => {
  show('retrieve-status', 'busy', 'Asking the backend for an SSKS session…');
  try {
    pending = await api('/api/tmr/session', { purpose: 'retrieve' });
    $('challenge-form').hidden = false;
    show('retrieve-status', 'sent', `SSKS sent a challenge to ${pending.auth_factor.value}.`);
  } catch (e) {
    show('retrieve-status', 'error', `No session - ${e.message}`);
  }
});

$('challenge-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!pending) return;
  const session = pending;
  show('retrieve-status', 'busy', 'Validating the challenge…');
  try {
    const validated = await ssks(session, 'challenge_validate', {
      challenge: $('tmr-challenge').value.trim(),
      auth_factor: session.auth_factor,
    });
    const authed = { ...session, session_id: validated.new_id };
    const found = await ssks(authed, 'search');
    const keys = await importKeys(session.raw_two_man_rule_key);
    const identity = await open(keys, found.data_b64);
    if (!found.authenticated) {
      // Stored before any challenge: re-encrypt and push through the authenticated session.
      await ssks(authed, 'push', { data_b64: await seal(keys, identity), auth_factor: session.auth_factor });
    }
    pending = null;
    $('challenge-form').hidden = true;
    $('retrieved').hidden = false;
    $('retrieved').textContent = new TextDecoder().decode(identity);
    show('retrieve-status', 'ok', `Challenge accepted; identity fetched from SSKS and decrypted in the browser${found.authenticated ? '' : ' (re-saved through the authenticated session)'}.`);
  } catch (e) {
    show('retrieve-status', 'error', `Not retrieved - ${e.message}`);
  }
});

(async () => {
  const config = await api('/api/config');
  const me = await api('/api/me');
  $('ssks-url').textContent = config.ssks_url || 'not wired';
  if (!me.username) {
    show('tmr-signin', 'error', 'Sign in on the video room page first (the backend only opens SSKS sessions for its signed-in users).');
  } else {
    show('tmr-signin', 'ok', `Signed in as ${me.username}.`);
    $('tmr-email').textContent = me.email || 'none registered';
  }
  const id = crypto.getRandomValues(new Uint8Array(24));
  $('tmr-identity').value = `seald-identity:${Array.from(id, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  document.body.dataset.ready = '1';
})().catch((e) => {
  document.body.dataset.ready = 'error';
  console.error(e);
});
