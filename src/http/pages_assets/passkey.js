// Roster's passkey button on the login and second-step pages: it asks
// /oauth/passkey/start for a challenge, the browser for a passkey, and sends
// the answer in the page's own form, whose redirect the browser follows.
(() => {
  'use strict';
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const unb64 = (s) => {
    const std = s.replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(std + '='.repeat((4 - (std.length % 4)) % 4)), (c) => c.charCodeAt(0));
  };
  const button = document.getElementById('passkey');
  const form = document.getElementById('passkey-form');
  const status = document.getElementById('passkey-status');
  if (!button || !form || !window.PublicKeyCredential) return;
  button.hidden = false;
  button.addEventListener('click', async () => {
    status.textContent = '';
    button.disabled = true;
    try {
      const body = new URLSearchParams({ mode: button.dataset.mode, csrf: form.elements.csrf.value });
      const r = await fetch('/oauth/passkey/start', { method: 'POST', body, credentials: 'same-origin' });
      const started = await r.json();
      if (!r.ok) throw new Error(started.error_description || 'The passkey login could not start.');
      const pk = started.options.publicKey;
      pk.challenge = unb64(pk.challenge);
      (pk.allowCredentials || []).forEach((c) => { c.id = unb64(c.id); });
      const cred = await navigator.credentials.get({ publicKey: pk });
      const resp = cred.response;
      form.elements.ceremony.value = started.ceremony;
      form.elements.credential.value = JSON.stringify({
        id: cred.id,
        rawId: b64(cred.rawId),
        type: cred.type,
        response: {
          authenticatorData: b64(resp.authenticatorData),
          clientDataJSON: b64(resp.clientDataJSON),
          signature: b64(resp.signature),
          userHandle: resp.userHandle ? b64(resp.userHandle) : null,
        },
        extensions: {},
      });
      form.submit();
    } catch (e) {
      status.textContent = e.message || String(e);
      button.disabled = false;
    }
  });
})();
