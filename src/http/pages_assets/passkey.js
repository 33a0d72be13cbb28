// Roster's passkey button on the login and second-step pages: it asks
// /oauth/passkey/start for a challenge, the browser for a passkey, and sends
// the answer in the page's own form, whose redirect the browser follows.
(() => {
  'use strict';
  const webauthn = window.RosterWebAuthn;
  const button = document.getElementById('passkey');
  const form = document.getElementById('passkey-form');
  const status = document.getElementById('passkey-status');
  if (!button || !form || !webauthn || !window.PublicKeyCredential) return;
  button.hidden = false;
  button.addEventListener('click', async () => {
    status.textContent = '';
    button.disabled = true;
    try {
      const body = new URLSearchParams({ mode: button.dataset.mode, csrf: form.elements.csrf.value });
      const r = await fetch('/oauth/passkey/start', { method: 'POST', body, credentials: 'same-origin' });
      const started = await r.json();
      if (!r.ok) throw new Error(started.error_description || 'The passkey login could not start.');
      const cred = await navigator.credentials.get({ publicKey: webauthn.requestOptions(started.options) });
      form.elements.ceremony.value = started.ceremony;
      form.elements.credential.value = JSON.stringify(webauthn.assertion(cred));
      form.submit();
    } catch (e) {
      status.textContent = e.message || String(e);
      button.disabled = false;
    }
  });
})();
