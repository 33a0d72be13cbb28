// Roster's invitation page: the link's token is in the URL fragment, which
// the browser never sends; this script hands it to /oauth/invitation/start,
// asks the browser for a new passkey, and sends the answer to
// /oauth/invitation/finish, which stores it and spends the link.
(() => {
  'use strict';
  const webauthn = window.RosterWebAuthn;
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
  if (!webauthn || !window.PublicKeyCredential) {
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
      const cred = await navigator.credentials.create({ publicKey: webauthn.creationOptions(begun.options) });
      await post('/oauth/invitation/finish', { token, ceremony: begun.ceremony, credential: webauthn.registration(cred) });
      document.getElementById('invitation').hidden = true;
      document.getElementById('invitation-done').hidden = false;
    } catch (e) {
      status.textContent = e.message || String(e);
      button.disabled = false;
    }
  });
})();
