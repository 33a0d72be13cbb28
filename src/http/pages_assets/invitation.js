// Roster's invitation page: the link's token is in the URL fragment, which
// the browser never sends; this script hands it to /oauth/invitation/start,
// asks the browser for a new passkey, and sends the answer to
// /oauth/invitation/finish, which stores it and spends the link.
(() => {
  'use strict';
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const unb64 = (s) => {
    const std = s.replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(std + '='.repeat((4 - (std.length % 4)) % 4)), (c) => c.charCodeAt(0));
  };
  const button = document.getElementById('invitation-create');
  const status = document.getElementById('invitation-status');
  const lead = document.getElementById('invitation-lead');
  if (!button || !status) return;
  const token = decodeURIComponent(window.location.hash.slice(1));
  // The token leaves the address bar (and the history) once it is read.
  window.history.replaceState(null, '', window.location.pathname);
  if (!token) {
    status.textContent = 'This link has no invitation in it: open the whole link you were given.';
    return;
  }
  if (!window.PublicKeyCredential) {
    status.textContent = 'This browser offers no passkeys (WebAuthn): open the link in another browser.';
    return;
  }
  const post = async (path, body) => {
    const r = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error_description || `The server answered ${r.status}.`);
    return data;
  };
  button.hidden = false;
  button.addEventListener('click', async () => {
    status.textContent = '';
    button.disabled = true;
    try {
      const begun = await post('/oauth/invitation/start', { token });
      lead.textContent = `Creating a passkey for ${begun.name}…`;
      const pk = begun.options.publicKey;
      pk.challenge = unb64(pk.challenge);
      pk.user.id = unb64(pk.user.id);
      (pk.excludeCredentials || []).forEach((c) => { c.id = unb64(c.id); });
      const cred = await navigator.credentials.create({ publicKey: pk });
      await post('/oauth/invitation/finish', {
        token,
        ceremony: begun.ceremony,
        credential: {
          id: cred.id,
          rawId: b64(cred.rawId),
          type: cred.type,
          response: {
            attestationObject: b64(cred.response.attestationObject),
            clientDataJSON: b64(cred.response.clientDataJSON),
          },
          extensions: {},
        },
      });
      document.getElementById('invitation').hidden = true;
      document.getElementById('invitation-done').hidden = false;
    } catch (e) {
      status.textContent = e.message || String(e);
      button.disabled = false;
    }
  });
})();
