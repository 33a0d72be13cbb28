// WebAuthn's JSON for Roster's pages and console: webauthn-rs sends options
// and reads answers with their binary fields as base64url; the browser's
// navigator.credentials wants and gives ArrayBuffers. One place converts.
window.RosterWebAuthn = (() => {
  'use strict';
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const unb64 = (s) => {
    const std = s.replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(std + '='.repeat((4 - (std.length % 4)) % 4)), (c) => c.charCodeAt(0));
  };
  return Object.freeze({
    /** The publicKey options of navigator.credentials.create, from Roster's answer. */
    creationOptions(options) {
      const pk = options.publicKey;
      pk.challenge = unb64(pk.challenge);
      pk.user.id = unb64(pk.user.id);
      (pk.excludeCredentials || []).forEach((c) => { c.id = unb64(c.id); });
      return pk;
    },
    /** The publicKey options of navigator.credentials.get, from Roster's answer. */
    requestOptions(options) {
      const pk = options.publicKey;
      pk.challenge = unb64(pk.challenge);
      (pk.allowCredentials || []).forEach((c) => { c.id = unb64(c.id); });
      return pk;
    },
    /** A new credential, as Roster reads it. */
    registration(cred) {
      return {
        id: cred.id,
        rawId: b64(cred.rawId),
        type: cred.type,
        response: {
          attestationObject: b64(cred.response.attestationObject),
          clientDataJSON: b64(cred.response.clientDataJSON),
        },
        extensions: {},
      };
    },
    /** A passkey's answer to a challenge, as Roster reads it. */
    assertion(cred) {
      const r = cred.response;
      return {
        id: cred.id,
        rawId: b64(cred.rawId),
        type: cred.type,
        response: {
          authenticatorData: b64(r.authenticatorData),
          clientDataJSON: b64(r.clientDataJSON),
          signature: b64(r.signature),
          userHandle: r.userHandle ? b64(r.userHandle) : null,
        },
        extensions: {},
      };
    },
  });
})();
