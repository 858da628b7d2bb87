// keyward video_room demo: plain JS, no build step.
'use strict';

const $ = (id) => document.getElementById(id);

function show(id, state, text) {
  const el = $(id);
  el.dataset.state = state;
  el.textContent = text;
}

async function api(path, body) {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.error || `HTTP ${res.status}`);
    err.kind = data.kind;
    err.status = res.status;
    throw err;
  }
  return data;
}

function b64urlToText(part) {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

function showToken(data) {
  const [header, payload] = data.token.split('.');
  const claims = JSON.parse(b64urlToText(payload));
  $('token-header').textContent = JSON.stringify(JSON.parse(b64urlToText(header)), null, 2);
  $('token-payload').textContent = JSON.stringify(claims, null, 2);
  $('token-ttl').textContent = `${claims.exp - claims.nbf} s`;
  $('token-raw').textContent = data.token;
  $('token-section').hidden = false;
}

async function refreshMe() {
  const me = await api('/api/me');
  $('whoami').textContent = me.username ? `signed in as ${me.username} (${me.factors.join(' + ')})` : 'not signed in';
  $('register-button').disabled = !(me.username && window.keywardConfig.passkeys);
}

// 1. One-time code, then a token (seed 000).
$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  show('otp-status', 'busy', 'Sending a code…');
  try {
    const data = await api('/api/login', { username: $('username').value });
    show('otp-status', 'sent', `Sent code to phone number ${data.phone}. Enter the code to verify.`);
    $('verify-form').hidden = false;
    $('code').focus();
  } catch (e) {
    show('otp-status', 'error', `Error - ${e.message}`);
  }
});

$('verify-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  show('otp-status', 'busy', 'Checking the code…');
  try {
    const data = await api('/api/verify', { code: $('code').value });
    $('verify-form').hidden = true;
    showToken(data);
    show('otp-status', 'ok', `Code verified: token issued for ${data.identity} in room "${data.room}".`);
    await refreshMe();
  } catch (e) {
    show('otp-status', 'error', `Error - ${e.message}`);
  }
});

// 2. Passkeys (seed 001), with the Level 3 JSON helpers.
let lastAssertion = null;

$('register-button').addEventListener('click', async () => {
  show('passkey-status', 'busy', 'Creating a passkey…');
  try {
    const options = await api('/api/passkey/register/start', {});
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    const credential = await navigator.credentials.create({ publicKey });
    const done = await api('/api/passkey/register/finish', { response: credential.toJSON() });
    show('passkey-status', 'ok', `Passkey added (credential ${done.credentialId.slice(0, 12)}…, ${done.attestationFormat} attestation, alg ${done.algorithm}).`);
  } catch (e) {
    show('passkey-status', 'error', `Passkey not added - ${e.message}`);
  }
});

async function passkeyAssertion() {
  const options = await api('/api/passkey/login/start', {});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  const credential = await navigator.credentials.get({ publicKey });
  return credential.toJSON();
}

$('passkey-login-button').addEventListener('click', async () => {
  show('passkey-status', 'busy', 'Signing in with a passkey…');
  try {
    const response = await passkeyAssertion();
    lastAssertion = response;
    const data = await api('/api/passkey/login/finish', { response });
    showToken(data);
    show('passkey-status', 'ok', `Signed in with passkey as ${data.identity}: token issued for room "${data.room}".`);
    $('replay-button').disabled = false;
    await refreshMe();
  } catch (e) {
    show('passkey-status', 'error', `Passkey sign-in failed - ${e.message}`);
  }
});

// What an attacker who captured a response would try: send it again into a new sign-in.
$('replay-button').addEventListener('click', async () => {
  if (!lastAssertion) return;
  show('replay-status', 'busy', 'Replaying…');
  try {
    await api('/api/passkey/login/start', {});
    await api('/api/passkey/login/finish', { response: lastAssertion });
    show('replay-status', 'accepted', 'The replayed response was ACCEPTED (this must never happen).');
  } catch (e) {
    show('replay-status', 'refused', `Replay refused as it should be: ${e.message}.`);
  }
});

$('logout-button').addEventListener('click', async () => {
  await api('/api/logout', {});
  location.reload();
});

(async () => {
  const config = await api('/api/config');
  window.keywardConfig = config;
  $('room-name').textContent = config.room;
  $('otp-backend').textContent = config.otp;
  if (config.otp === 'self-hosted') $('otp-where').textContent = ' (the code is printed on the server console)';
  if (!config.passkeys) {
    $('passkey-login-button').disabled = true;
    show('passkey-status', 'off', 'Passkeys are not wired in this build.');
  } else if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) {
    show('passkey-status', 'error', 'This browser lacks the WebAuthn Level 3 JSON helpers.');
  }
  await refreshMe();
  document.body.dataset.ready = '1';
})().catch((e) => {
  document.body.dataset.ready = 'error';
  console.error(e);
});
