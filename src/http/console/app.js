// The Roster admin console: logs in with authorization code + PKCE as the
// public client named in the page, then calls only Roster's public API with
// the admin's token. Every value from the API is set as text (never as
// HTML), so nothing a principal or a manifest says can become markup.
'use strict';

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).getAttribute('content');
  const ISSUER = meta('roster-issuer');
  const CLIENT = meta('roster-client');
  const REDIRECT = `${ISSUER}/console/`;
  const main = document.getElementById('main');
  const store = window.sessionStorage;
  const TOKEN_KEY = 'roster.console.token';
  const LOGIN_KEY = 'roster.console.login';

  // ---- DOM ---------------------------------------------------------------

  /** An element: attributes (`on…` are listeners) and children as text or nodes. */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  const when = (s) => (s ? `${s.replace('T', ' ').slice(0, 19)} UTC` : '—');
  const list = (xs) => (xs && xs.length ? xs.join(' ') : '—');
  const badge = (status) => h('span', { class: `badge badge-${status}` }, status);
  const link = (hash, text) => h('a', { href: hash }, text);
  const words = (s) => s.split(/[\s,]+/).filter(Boolean);

  /** A table that becomes labelled cards on a narrow screen. */
  function table(caption, headings, rows, empty) {
    if (!rows.length) return h('p', { class: 'empty' }, empty);
    return h('div', { class: 'table-wrap' },
      h('table', {},
        h('caption', { class: 'sr-only' }, caption),
        h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows.map((cells) => h('tr', {},
          cells.map((c, i) => h('td', { 'data-label': headings[i] }, c)))))));
  }

  function field(label, input, hint) {
    const id = input.id;
    return h('div', { class: 'field' },
      h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
  }

  function note(kind, text) {
    return h('p', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, text);
  }

  /** Show a page: a title that takes the focus when the page is new. */
  let focusTitle = true;
  function show(title, nodes, { focus = focusTitle } = {}) {
    document.title = `${title} · Roster console`;
    const h1 = h('h1', { tabindex: '-1', id: 'page-title' }, title);
    main.replaceChildren(h1, ...nodes.filter(Boolean));
    if (focus) h1.focus();
    for (const a of document.querySelectorAll('header nav a')) {
      const here = location.hash.startsWith(a.getAttribute('href'));
      if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
  }

  // ---- login (RFC 6749 §4.1, RFC 7636, OpenID Connect Core §3.1) ----------

  const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

  async function login() {
    const verifier = random(32);
    const state = random(16);
    const nonce = random(16);
    const back = location.hash && location.hash !== '#main' ? location.hash : '#/principals';
    store.setItem(LOGIN_KEY, JSON.stringify({ verifier, state, nonce, back }));
    const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
    const q = new URLSearchParams({
      response_type: 'code', client_id: CLIENT, redirect_uri: REDIRECT, scope: 'openid admin',
      state, nonce, code_challenge: challenge, code_challenge_method: 'S256',
      // Admin power asks for a second step (RFC 8176 amr, OpenID Connect acr_values).
      acr_values: 'mfa',
    });
    location.assign(`${ISSUER}/oauth/authorize?${q}`);
    return new Promise(() => {});
  }

  function claims(jwt) {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  }

  /** Back from the login page with a code: exchange it (§4.1.3). */
  async function finishLogin(params) {
    const saved = JSON.parse(store.getItem(LOGIN_KEY) || 'null');
    store.removeItem(LOGIN_KEY);
    history.replaceState(null, '', REDIRECT + (saved ? saved.back : '#/principals'));
    if (params.get('error')) {
      throw new Error(`The login was refused: ${params.get('error')} ${params.get('error_description') || ''}`);
    }
    if (!saved || params.get('state') !== saved.state) {
      throw new Error('This login answer was not asked for by this tab. Reload to log in again.');
    }
    if (params.get('iss') !== ISSUER) throw new Error('The login answer names another issuer.');
    const body = new URLSearchParams({
      grant_type: 'authorization_code', code: params.get('code'), redirect_uri: REDIRECT,
      client_id: CLIENT, code_verifier: saved.verifier,
    });
    const r = await fetch(`${ISSUER}/oauth/token`, { method: 'POST', body });
    const t = await r.json();
    if (!r.ok) throw new Error(`The token request failed: ${t.error} ${t.error_description || ''}`);
    // The ID token came straight from the token endpoint (§3.1.3.7); its nonce ties it to this login.
    if (claims(t.id_token).nonce !== saved.nonce) throw new Error('The ID token is not for this login.');
    store.setItem(TOKEN_KEY, JSON.stringify({
      access: t.access_token, id: t.id_token, scope: t.scope || '', expires: Date.now() + t.expires_in * 1000,
    }));
  }

  function token() {
    const t = JSON.parse(store.getItem(TOKEN_KEY) || 'null');
    return t && t.expires > Date.now() + 5000 ? t : null;
  }

  function logout() {
    const t = JSON.parse(store.getItem(TOKEN_KEY) || 'null');
    store.removeItem(TOKEN_KEY);
    const q = new URLSearchParams({ client_id: CLIENT, post_logout_redirect_uri: REDIRECT });
    if (t && t.id) q.set('id_token_hint', t.id);
    location.assign(`${ISSUER}/oauth/logout?${q}`);
  }

  // ---- the API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const text = body && typeof body === 'object'
        ? `${body.error_description || body.error}${body.field ? ` (${body.field})` : ''}`
        : `HTTP ${status}`;
      super(text);
      this.status = status;
    }
  }

  /** Call Roster's API as the admin. An expired or refused token logs in again. */
  async function api(method, path, body, { signal, anonymous = false } = {}) {
    const headers = {};
    if (!anonymous) {
      const t = token();
      if (!t) return login();
      headers.Authorization = `Bearer ${t.access}`;
    }
    const init = { method, headers, signal };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(ISSUER + path, init);
    if (r.status === 401 && !anonymous) {
      store.removeItem(TOKEN_KEY);
      return login();
    }
    const text = await r.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = text; }
    }
    if (!r.ok) throw new ApiError(r.status, data);
    return { data, headers: r.headers };
  }

  /** A form whose submit runs `action`, and shows its error in place. */
  function form(attrs, children, action) {
    const out = h('div', { class: 'form-result', 'aria-live': 'polite' });
    const f = h('form', { ...attrs, novalidate: true }, children, out);
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = f.querySelector('button[type=submit]');
      if (button) button.disabled = true;
      out.replaceChildren();
      try {
        const shown = await action(new FormData(f), out);
        if (shown) out.replaceChildren(shown);
      } catch (e) {
        out.replaceChildren(note('error', e.message));
      } finally {
        if (button) button.disabled = false;
      }
    });
    return f;
  }

  /** A secret shown this once: it lives only in this page. */
  /** A button that copies `secret` (or selects `value` for Ctrl+C where there is no clipboard). */
  function copyButton(value, secret) {
    const copy = h('button', {
      type: 'button',
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(secret);
          copy.textContent = 'Copied';
        } catch (e) {
          // No clipboard for this page (a permission, an old browser): select it for Ctrl+C.
          const range = document.createRange();
          range.selectNodeContents(value);
          window.getSelection().removeAllRanges();
          window.getSelection().addRange(range);
          copy.textContent = 'Selected: press Ctrl+C';
        }
      },
    }, 'Copy');
    return copy;
  }

  function secretBox(id, clientId, secret, text) {
    const value = h('code', { id, class: 'secret' }, secret);
    return h('section', { class: 'once', 'aria-labelledby': `${id}-title` },
      h('h2', { id: `${id}-title` }, 'Client secret: shown only this once'),
      h('p', {}, text),
      h('dl', {}, h('dt', {}, 'client_id'), h('dd', {}, h('code', {}, clientId)),
        h('dt', {}, 'client_secret'), h('dd', {}, value, ' ', copyButton(value, secret))));
  }

  /** An invitation link, shown once. */
  function invitationBox(name, invitation) {
    const value = h('code', { id: 'invitation-link', class: 'secret' }, invitation.url);
    return h('section', { class: 'once', 'aria-labelledby': 'invitation-title' },
      h('h2', { id: 'invitation-title' }, 'Invitation link: shown only this once'),
      h('p', {}, `Send it to ${name} yourself. It works once, until ${when(invitation.expires_at)}: `
        + 'opening it lets them create a passkey, with which they sign in from then on.'),
      h('p', {}, value, ' ', copyButton(value, invitation.url)));
  }

  // ---- pages -------------------------------------------------------------------

  const names = new Map();
  /** The name of a principal id, for the audit timeline. */
  async function nameOf(id) {
    if (!id) return '—';
    if (!names.has(id)) {
      names.set(id, api('GET', `/api/v1/principals/${encodeURIComponent(id)}`)
        .then((r) => r.data.name, () => id));
    }
    return names.get(id);
  }

  /** A search form: submitting it goes to `route` with its non-empty fields as the query. */
  function searchForm(label, route, children) {
    const f = h('form', { class: 'filters', role: 'search', 'aria-label': label }, children);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const next = new URLSearchParams();
      for (const [k, v] of new FormData(f)) if (v) next.set(k, v);
      location.hash = `${route}?${next}`;
    });
    return f;
  }

  async function principals({ params }) {
    const q = new URLSearchParams();
    for (const k of ['kind', 'status', 'q', 'cursor']) if (params.get(k)) q.set(k, params.get(k));
    const { data } = await api('GET', `/api/v1/principals?${q}`);
    const select = (id, label, options) => field(label, h('select', { id, name: id },
      options.map(([v, t]) => h('option', { value: v, selected: params.get(id) === v }, t))));
    const filters = searchForm('Filter principals', '#/principals', [
      select('kind', 'Kind', [['', 'All'], ['human', 'People'], ['service', 'Services']]),
      select('status', 'Status', [['', 'All'], ['active', 'Active'], ['disabled', 'Disabled']]),
      field('Name starts with', h('input', { id: 'q', name: 'q', type: 'search', value: params.get('q') || '' })),
      h('button', { type: 'submit' }, 'Filter')]);
    const rows = data.items.map((p) => [
      link(`#/principals/${encodeURIComponent(p.id)}`, p.name),
      p.kind === 'human' ? 'person' : 'service',
      badge(p.status),
      list(p.scopes),
      when(p.created_at),
    ]);
    const more = data.next_cursor
      ? link(`#/principals?${new URLSearchParams({ ...Object.fromEntries(q), cursor: data.next_cursor })}`, 'Next page')
      : null;
    show('Principals', [
      h('p', { class: 'actions' }, h('a', { class: 'button', href: '#/principals/new' }, 'New service'), ' ',
        h('a', { class: 'button', href: '#/principals/new-person' }, 'New person')),
      filters,
      table('Principals', ['Name', 'Kind', 'Status', 'Scopes', 'Created'], rows, 'No principal matches.'),
      more,
    ]);
  }

  const input = (id, attrs = {}) => h('input', { id, name: id, ...attrs });
  /** The name and display name every new principal starts with. */
  const nameFields = (what) => [
    field('Name', input('name', { required: true, autocomplete: 'off', pattern: '[a-z0-9][a-z0-9._-]{0,62}' }),
      `Lower case letters, digits, dot, dash and underscore: ${what}.`),
    field('Display name', input('display_name')),
  ];

  async function newService() {
    const f = form({ class: 'stack', 'aria-label': 'New service' }, [
      ...nameFields('it is the client_id'),
      field('Scopes', input('scopes', { autocomplete: 'off' }), 'Separated by spaces, e.g. registry:read billing:write'),
      field('Categories', input('categories', { autocomplete: 'off' }), 'name:priority, separated by spaces, e.g. billing:10'),
      h('div', { class: 'field check' },
        input('public_client', { type: 'checkbox' }),
        h('label', { for: 'public_client' }, 'Public client: a frontend that logs people in, with no secret')),
      field('Redirect URIs', h('textarea', { id: 'redirect_uris', name: 'redirect_uris', rows: 2 }),
        'One per line; for frontends that log people in.'),
      h('button', { type: 'submit' }, 'Create service'),
    ], async (fd) => {
      const categories = words(fd.get('categories')).map((c) => {
        const [name, priority] = c.split(':');
        return { name, priority: Number(priority || 0) };
      });
      const body = {
        kind: 'service', name: fd.get('name').trim(), scopes: words(fd.get('scopes')), categories,
        public_client: fd.get('public_client') === 'on', redirect_uris: words(fd.get('redirect_uris')),
      };
      if (fd.get('display_name').trim()) body.display_name = fd.get('display_name').trim();
      const { data } = await api('POST', '/api/v1/principals', body);
      f.querySelector('button[type=submit]').remove();
      const detail = link(`#/principals/${encodeURIComponent(data.id)}`, `Go to ${data.name}`);
      return focused(h('div', {}, note('ok', `Created the service ${data.name}.`),
        data.client_secret
          ? secretBox('new-secret', data.client_id, data.client_secret,
            'Copy it into the service\'s configuration now: Roster keeps only a keyed hash and cannot show it again.')
          : h('p', {}, 'A public client has no secret.'),
        h('p', {}, detail)));
    });
    show('New service', [f]);
  }

  async function newPerson() {
    const f = form({ class: 'stack', 'aria-label': 'New person' }, [
      ...nameFields('what they log in with'),
      field('Email', input('email', { type: 'email', autocomplete: 'off' })),
      field('Scopes', input('scopes', { autocomplete: 'off' }), 'Separated by spaces; admin makes an administrator.'),
      field('Password', input('password', { type: 'password', autocomplete: 'new-password' }),
        'At least 8 characters; tell it to them yourself.'),
      h('div', { class: 'field check' }, h('input', { id: 'invite', name: 'invite', type: 'checkbox', value: '1' }),
        h('label', { for: 'invite' }, 'No password: invite them to create a passkey'),
        h('p', { class: 'hint', id: 'invite-hint' }, 'You get a link that works once, for three days, to send them.')),
      h('button', { type: 'submit' }, 'Create person'),
    ], async (fd) => {
      const body = { kind: 'human', name: fd.get('name').trim(), scopes: words(fd.get('scopes')) };
      for (const k of ['display_name', 'email', 'password']) if (fd.get(k).trim()) body[k] = fd.get(k);
      if (fd.get('invite')) body.invite = true;
      const { data } = await api('POST', '/api/v1/principals', body);
      f.querySelector('button[type=submit]').remove();
      f.querySelector('#password').value = '';
      return focused(h('div', {}, note('ok', `Created ${data.name}.`),
        data.invitation ? invitationBox(data.name, data.invitation) : '',
        h('p', {}, link(`#/principals/${encodeURIComponent(data.id)}`, `Go to ${data.name}`))));
    });
    show('New person', [f]);
  }

  /** Move the focus to what an action just showed, so that the keyboard is where the news is. */
  function focused(node) {
    node.setAttribute('tabindex', '-1');
    requestAnimationFrame(() => node.focus());
    return node;
  }

  async function registration(name) {
    try {
      return (await api('GET', `/api/v1/services/${encodeURIComponent(name)}`)).data;
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }

  function instancesTable(svc) {
    return table(`Instances of ${svc.name}`, ['Instance', 'State', 'Base URL', 'Last seen', 'Health'],
      svc.instances.map((i) => [
        i.id, h('span', {}, badge(i.status), i.draining ? ' draining' : ''), h('code', {}, i.base_url),
        when(i.last_seen), i.health ? `${i.health.error || 'ok'} (${when(i.health.checked_at)})` : 'not checked',
      ]), 'No instances: it is not running anywhere.');
  }

  function registrationSection(svc) {
    if (!svc) return h('section', {}, h('h2', {}, 'Registration'), h('p', { class: 'empty' }, 'Not registered.'));
    return h('section', {}, h('h2', {}, 'Registration'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'State'), h('dd', {}, badge(svc.status)),
        h('dt', {}, 'Registered'), h('dd', {}, when(svc.registered_at)),
        h('dt', {}, 'Categories'), h('dd', {}, list(svc.categories.map((c) => `${c.name}:${c.priority}`))),
        h('dt', {}, 'Manifest'), h('dd', {}, svc.manifest
          ? `${svc.manifest.name} (${svc.manifest.pages.length} pages, ${svc.manifest_source})` : 'none'),
        svc.manifest_error ? [h('dt', {}, 'Manifest error'), h('dd', {}, svc.manifest_error)] : null),
      instancesTable(svc),
      h('p', {}, link(`#/services/${encodeURIComponent(svc.name)}`, `Live view of ${svc.name}`)));
  }

  function confirmAction(label, question, confirmLabel, action, { danger = false } = {}) {
    const area = h('div', { class: 'confirm-area' });
    const start = h('button', {
      type: 'button', class: danger ? 'danger' : null,
      onclick: () => {
        const yes = h('button', {
          type: 'button', class: danger ? 'danger' : null,
          onclick: async () => {
            yes.disabled = true;
            try { await action(area); } catch (e) { area.replaceChildren(note('error', e.message)); }
          },
        }, confirmLabel);
        const no = h('button', { type: 'button', onclick: () => { area.replaceChildren(start); start.focus(); } }, 'Cancel');
        area.replaceChildren(h('p', { role: 'alert' }, question), yes, ' ', no);
        yes.focus();
      },
    }, label);
    area.append(start);
    return area;
  }

  /** WebAuthn's JSON both ways (Roster's own /oauth/webauthn.js, loaded first). */
  const webauthn = window.RosterWebAuthn;

  /** Ten recovery codes, shown this once. */
  function recoveryBox(codes) {
    return h('section', { class: 'once', 'aria-labelledby': 'recovery-title' },
      h('h2', { id: 'recovery-title' }, 'Recovery codes: shown only this once'),
      h('p', {}, 'Each logs you in once instead of a code from your app. Keep them somewhere safe.'),
      h('ul', { id: 'console-recovery-codes', class: 'codes' }, codes.map((c) => h('li', {}, h('code', {}, c)))));
  }

  function factorsTable(f, actions) {
    return table('Second factors', ['Name', 'Kind', 'Confirmed', 'Created', 'Last used', actions ? 'Remove' : null].filter(Boolean),
      f.factors.map((x) => [x.name, x.kind === 'totp' ? 'authenticator app' : x.kind, x.confirmed ? 'yes' : 'no',
        when(x.created_at), x.last_used_at ? when(x.last_used_at) : '—', actions ? actions(x) : null].filter((c) => c !== null)),
      'No second factor.');
  }

  /** The signed-in person's own second factors: TOTP, recovery codes. */
  async function securityPage() {
    const reload = () => route({ focus: false });
    const { data: f } = await api('GET', '/api/v1/me/factors');
    const hasPasskey = f.factors.some((x) => x.kind === 'passkey' && x.confirmed);
    const stepHint = hasPasskey ? ' Empty: confirm with one of your passkeys.' : '';
    /** A fresh second step: the code typed, or with none, a passkey's answer to a challenge. */
    const freshStep = async (code) => {
      if (code || !hasPasskey) return { code: code || '' };
      if (!window.PublicKeyCredential) throw new Error('This browser offers no passkeys (WebAuthn): type a code.');
      const { data: begun } = await api('POST', '/api/v1/me/factors/passkeys/challenge');
      const cred = await navigator.credentials.get({ publicKey: webauthn.requestOptions(begun.options) });
      return { passkey: { ceremony: begun.ceremony, credential: webauthn.assertion(cred) } };
    };
    const remove = (x) => form({ class: 'inline', 'aria-label': `Remove ${x.name}` }, [
      field('Code', h('input', { id: `remove-code-${x.id}`, name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric' }),
        `A current code, or a recovery code.${stepHint}`),
      h('button', { type: 'submit', class: 'danger' }, 'Remove'),
    ], async (fd) => {
      await api('DELETE', `/api/v1/me/factors/${encodeURIComponent(x.id)}`, await freshStep(fd.get('code')));
      await reload();
    });
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'Second step required'), h('dd', { id: 'mfa-required' }, f.mfa_required ? 'yes' : 'no'),
      h('dt', {}, 'Recovery codes left'), h('dd', { id: 'recovery-left' }, String(f.recovery_codes_left)));
    const enrolArea = h('div', {});
    const add = form({ class: 'inline', 'aria-label': 'Add an authenticator app' }, [
      field('Name', h('input', { id: 'factor-name', name: 'name', value: 'Authenticator app', autocomplete: 'off' })),
      h('button', { type: 'submit' }, 'Add an authenticator app'),
    ], async (fd) => {
      const { data: started } = await api('POST', '/api/v1/me/factors/totp', { name: fd.get('name') });
      const confirm = form({ class: 'inline', 'aria-label': 'Confirm the authenticator app' }, [
        h('p', {}, 'Type this key into your authenticator app (or open the otpauth link on a phone), then enter the code it shows.'),
        h('dl', {}, h('dt', {}, 'Key'), h('dd', {}, h('code', { id: 'new-totp-secret', class: 'secret' }, started.secret)),
          h('dt', {}, 'Link'), h('dd', {}, h('a', { href: started.otpauth_uri }, 'otpauth link'))),
        field('Code', h('input', { id: 'new-totp-code', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric' })),
        h('button', { type: 'submit' }, 'Confirm'),
      ], async (cd) => {
        const { data: done } = await api('POST', '/api/v1/me/factors/totp/confirm', { id: started.id, code: cd.get('code') || '' });
        const table = factorsTable((await api('GET', '/api/v1/me/factors')).data);
        enrolArea.replaceChildren(note('ok', `${done.factor.name} is confirmed.`),
          done.recovery_codes ? recoveryBox(done.recovery_codes) : '', table);
      });
      enrolArea.replaceChildren(confirm);
      return null;
    });
    const addPasskey = form({ class: 'inline', 'aria-label': 'Add a passkey' }, [
      field('Name', h('input', { id: 'passkey-name', name: 'name', value: 'Passkey', autocomplete: 'off' })),
      h('button', { type: 'submit' }, 'Add a passkey'),
    ], async (fd) => {
      if (!window.PublicKeyCredential) throw new Error('This browser offers no passkeys (WebAuthn).');
      const { data: begun } = await api('POST', '/api/v1/me/factors/passkeys/start', { name: fd.get('name') });
      const cred = await navigator.credentials.create({ publicKey: webauthn.creationOptions(begun.options) });
      const { data: done } = await api('POST', '/api/v1/me/factors/passkeys/finish', {
        ceremony: begun.ceremony,
        credential: webauthn.registration(cred),
      });
      const table = factorsTable((await api('GET', '/api/v1/me/factors')).data);
      enrolArea.replaceChildren(note('ok', `${done.factor.name} is added.`),
        done.recovery_codes ? recoveryBox(done.recovery_codes) : '', table);
      return null;
    });
    const regenerate = form({ class: 'inline', 'aria-label': 'New recovery codes' }, [
      field('Code', h('input', { id: 'regenerate-code', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric' }),
        `A current code, or a recovery code.${stepHint} The old recovery codes stop working.`),
      h('button', { type: 'submit' }, 'New recovery codes'),
    ], async (fd) => {
      const { data } = await api('POST', '/api/v1/me/factors/recovery-codes', await freshStep(fd.get('code')));
      return recoveryBox(data.recovery_codes);
    });
    show('Security', [facts, factorsTable(f, remove),
      h('section', {}, h('h2', {}, 'Add a second factor'), add, addPasskey, enrolArea),
      f.factors.some((x) => x.confirmed) ? h('section', {}, h('h2', {}, 'Recovery codes'), regenerate) : '']);
  }

  /** An admin's view of a person's second factors: the setting, and a reset. */
  async function factorsSection(p, reload) {
    const path = `/api/v1/principals/${encodeURIComponent(p.id)}`;
    const { data: f } = await api('GET', `${path}/factors`);
    const select = h('select', { id: 'mfa', name: 'mfa' },
      ['optional', 'required'].map((v) => h('option', { value: v, selected: f.mfa === v ? true : null }, v)));
    const setting = form({ class: 'inline', 'aria-label': 'MFA setting' }, [
      field('Second step', select, f.mfa_required && f.mfa === 'optional'
        ? 'Required anyway: this person holds admin, and the server requires a second step of admins.' : null),
      h('button', { type: 'submit' }, 'Save MFA setting'),
    ], async (fd) => {
      await api('PUT', `${path}/mfa`, { mfa: fd.get('mfa') });
      await reload();
    });
    const reset = confirmAction('Reset second factors',
      `Remove every second factor and recovery code of ${p.name}, and end their sessions and refresh tokens?`,
      `Reset ${p.name}'s factors`, async (area) => {
        const { data } = await api('DELETE', `${path}/factors`);
        area.replaceChildren(note('ok', `${data.factors_removed} factors removed, ${data.sessions_ended} sessions ended.`));
      }, { danger: true });
    const invite = form({ class: 'inline', 'aria-label': 'Invitation link' }, [
      h('button', { type: 'submit' }, 'New invitation link'),
    ], async () => {
      const { data } = await api('POST', `${path}/invitation`, {});
      return invitationBox(p.name, data);
    });
    return h('section', {}, h('h2', {}, 'Second factors'),
      h('p', {}, `Recovery codes left: ${f.recovery_codes_left}`), factorsTable(f), setting, reset,
      h('h3', {}, 'Invitation'),
      h('p', { class: 'hint' }, 'For a person with no password and no second factor: a link that works once, '
        + 'for three days, to create a passkey. Their earlier links stop working.'), invite);
  }

  async function principalDetail({ id }) {
    const { data: p } = await api('GET', `/api/v1/principals/${encodeURIComponent(id)}`);
    const reload = () => route({ focus: false });
    const facts = h('dl', { class: 'facts' },
      h('dt', {}, 'Kind'), h('dd', {}, p.kind === 'human' ? 'person' : 'service'),
      h('dt', {}, 'Status'), h('dd', { id: 'principal-status' }, badge(p.status)),
      h('dt', {}, 'Display name'), h('dd', {}, p.display_name || '—'),
      p.kind === 'human' ? [h('dt', {}, 'Email'), h('dd', {}, p.email || '—')] : null,
      h('dt', {}, 'Scopes'), h('dd', {}, list(p.scopes)),
      p.kind === 'service' ? [h('dt', {}, 'Categories'),
        h('dd', {}, list((p.categories || []).map((c) => `${c.name}:${c.priority}`)))] : null,
      h('dt', {}, 'Created'), h('dd', {}, when(p.created_at)),
      h('dt', {}, 'Updated'), h('dd', {}, when(p.updated_at)),
      h('dt', {}, 'ID'), h('dd', {}, h('code', {}, p.id)));

    const scopes = form({ class: 'inline', 'aria-label': 'Scopes' }, [
      field('Scopes', h('input', { id: 'edit-scopes', name: 'scopes', value: p.scopes.join(' '), autocomplete: 'off' }),
        'Separated by spaces. Removing a scope ends the tokens that carry it.'),
      h('button', { type: 'submit' }, 'Save scopes'),
    ], async (fd) => {
      await api('PATCH', `/api/v1/principals/${encodeURIComponent(p.id)}`, { scopes: words(fd.get('scopes')) });
      await reload();
    });

    const status = p.status === 'active'
      ? confirmAction('Disable', `Disable ${p.name}? It cannot log in, and its tokens are refused at once.`,
        `Disable ${p.name}`, async () => {
          await api('DELETE', `/api/v1/principals/${encodeURIComponent(p.id)}`);
          await reload();
        }, { danger: true })
      : h('button', {
        type: 'button',
        onclick: async () => {
          await api('PATCH', `/api/v1/principals/${encodeURIComponent(p.id)}`, { status: 'active' });
          await reload();
        },
      }, 'Enable');

    const sections = [facts, h('section', {}, h('h2', {}, 'Actions'), status, scopes)];
    if (p.kind === 'human') {
      sections.push(h('section', {}, h('h2', {}, 'Password'), form({ class: 'inline', 'aria-label': 'Set password' }, [
        field('New password', h('input', { id: 'new-password', name: 'password', type: 'password', autocomplete: 'new-password' }),
          'At least 8 characters. Set by an admin, it takes effect at once.'),
        h('button', { type: 'submit' }, 'Set password'),
      ], async (fd, out) => {
        await api('PUT', `/api/v1/principals/${encodeURIComponent(p.id)}/password`, { password: fd.get('password') });
        out.closest('form').reset();
        return note('ok', `The password of ${p.name} is set.`);
      })));
      sections.push(await factorsSection(p, reload));
    } else {
      sections.push(clientAuthSection(p, reload));
      sections.push(exchangeSection(p, reload));
      sections.push(await secretsSection(p, reload));
      const uris = (id, label, value, hint) => field(label,
        h('textarea', { id, name: id, rows: 2, autocomplete: 'off' }, (value || []).join('\n')), hint);
      sections.push(h('section', {}, h('h2', {}, 'Browser login'),
        h('dl', { class: 'facts' }, h('dt', {}, 'Public client'), h('dd', {}, p.public_client ? 'yes' : 'no')),
        form({ class: 'inline', 'aria-label': 'Redirect URIs' }, [
          uris('redirect_uris', 'Redirect URIs', p.redirect_uris, 'One per line: where a login may return (exact match).'),
          uris('post_logout_redirect_uris', 'After logout', p.post_logout_redirect_uris, 'One per line: where a logout may return.'),
          h('button', { type: 'submit' }, 'Save URIs'),
        ], async (fd) => {
          await api('PATCH', `/api/v1/principals/${encodeURIComponent(p.id)}`, {
            redirect_uris: words(fd.get('redirect_uris')),
            post_logout_redirect_uris: words(fd.get('post_logout_redirect_uris')),
          });
          await reload();
        })));
      sections.push(registrationSection(await registration(p.name)));
    }
    sections.push(h('p', {}, link(`#/audit?principal=${encodeURIComponent(p.id)}`, `Audit events of ${p.name}`)));
    show(p.name, sections);
  }

  /** How a service proves who it is: a secret, its own keys (private_key_jwt), or federated subjects. */
  function clientAuthSection(p, reload) {
    const method = p.token_endpoint_auth_method || 'client_secret_post';
    const select = h('select', { id: 'auth-method', name: 'method' },
      ...['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'].map((m) =>
        h('option', m === method ? { value: m, selected: '' } : { value: m }, m)));
    const subjects = (p.federated_subjects || []).map((s) => `${s.issuer} ${s.subject}`).join('\n');
    return h('section', { 'aria-labelledby': 'auth-title' }, h('h2', { id: 'auth-title' }, 'Client authentication'),
      form({ class: 'inline', 'aria-label': 'Client authentication' }, [
        field('Method', select, 'private_key_jwt: no secret; the service signs with its key. Switching away from secrets deletes them.'),
        field('JWK Set', h('textarea', { id: 'auth-jwks', name: 'jwks', rows: 4, autocomplete: 'off' },
          p.jwks ? JSON.stringify(p.jwks) : ''), 'private_key_jwt: the public keys, as JSON ({"keys": [...]}).'),
        field('JWK Set URL', h('input', { id: 'auth-jwks-uri', name: 'jwks_uri', value: p.jwks_uri || '', autocomplete: 'off' }),
          'Or where Roster fetches them (https).'),
        field('Federated subjects', h('textarea', { id: 'auth-subjects', name: 'subjects', rows: 2, autocomplete: 'off' }, subjects),
          'One per line: a trusted issuer, a space, the subject that stands for this service.'),
        h('button', { type: 'submit' }, 'Save authentication'),
      ], async (fd) => {
        const body = { token_endpoint_auth_method: fd.get('method') };
        const jwks = fd.get('jwks').trim();
        const uri = fd.get('jwks_uri').trim();
        if (body.token_endpoint_auth_method === 'private_key_jwt') {
          if (jwks) {
            try { body.jwks = JSON.parse(jwks); } catch (e) { return note('error', `The JWK Set is not JSON: ${e.message}`); }
            body.jwks_uri = null;
          } else if (uri) {
            body.jwks_uri = uri;
            body.jwks = null;
          }
        }
        body.federated_subjects = fd.get('subjects').split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
          const [issuer, ...rest] = l.split(/\s+/);
          return { issuer, subject: rest.join(' ') };
        });
        await api('PATCH', `/api/v1/principals/${encodeURIComponent(p.id)}`, body);
        await reload();
      }));
  }

  /** For whom it may act: the audiences it may exchange its callers' tokens for (RFC 8693), and the longest chain. */
  function exchangeSection(p, reload) {
    const policy = p.token_exchange;
    return h('section', { 'aria-labelledby': 'exchange-title' }, h('h2', { id: 'exchange-title' }, 'Token exchange'),
      h('p', {}, policy
        ? `It may act for its callers towards ${policy.audiences.join(', ') || 'nobody'}, in chains of at most ${policy.max_depth} hops.`
        : 'It may not act for its callers (no exchange policy).'),
      form({ class: 'inline', 'aria-label': 'Token exchange' }, [
        field('Audiences', h('textarea', { id: 'exchange-audiences', name: 'audiences', rows: 2, autocomplete: 'off' },
          (policy ? policy.audiences : []).join('\n')),
          'One per line: a service, or urn:roster:category:NAME for every service of the category that is up. Empty: none.'),
        field('Longest chain', h('input', {
          id: 'exchange-depth', name: 'max_depth', type: 'number', min: '1', max: '10', value: String(policy ? policy.max_depth : 3),
        }), 'Hops of delegation a token it gets may carry (1 to 10).'),
        h('button', { type: 'submit' }, 'Save exchange policy'),
      ], async (fd) => {
        const audiences = words(fd.get('audiences'));
        const body = audiences.length
          ? { token_exchange: { audiences, max_depth: Number(fd.get('max_depth')) } }
          : { token_exchange: null };
        await api('PATCH', `/api/v1/principals/${encodeURIComponent(p.id)}`, body);
        await reload();
      }));
  }

  async function secretsSection(p, reload) {
    const section = h('section', { 'aria-labelledby': 'secrets-title' }, h('h2', { id: 'secrets-title' }, 'Client secrets'));
    if (p.public_client) {
      section.append(h('p', {}, 'A public client has no secret.'));
      return section;
    }
    if (p.token_endpoint_auth_method === 'private_key_jwt') {
      section.append(h('p', {}, 'It authenticates with private_key_jwt: it has no secret.'));
      return section;
    }
    const { data } = await api('GET', `/api/v1/principals/${encodeURIComponent(p.id)}/secrets`);
    const shown = h('div', { 'aria-live': 'polite' });
    const rows = data.items.map((s) => [
      h('code', {}, s.id.slice(0, 8)), when(s.created_at), s.expires_at ? when(s.expires_at) : 'never',
      when(s.last_used_at), String(s.use_count),
      confirmAction('Retire', 'Retire this secret? Services still using it fail at their next login.', 'Retire',
        async () => {
          await api('DELETE', `/api/v1/principals/${encodeURIComponent(p.id)}/secrets/${encodeURIComponent(s.id)}`);
          await reload();
        }, { danger: true }),
    ]);
    const rotate = h('button', {
      type: 'button', id: 'rotate',
      onclick: async () => {
        rotate.disabled = true;
        try {
          const { data: s } = await api('POST', `/api/v1/principals/${encodeURIComponent(p.id)}/secrets`, {});
          const old = data.items.length;
          shown.replaceChildren(focused(secretBox('rotated-secret', p.name, s.client_secret,
            old ? `The ${old === 1 ? 'old secret keeps' : `${old} old secrets keep`} working until you retire `
              + 'them: deploy this one, then retire the old.' : 'It is the service\'s only secret.')));
        } catch (e) {
          shown.replaceChildren(note('error', e.message));
        } finally {
          rotate.disabled = false;
        }
      },
    }, 'Rotate: new secret');
    section.append(
      table(`Client secrets of ${p.name}`, ['Secret', 'Created', 'Expires', 'Last used', 'Uses', ''], rows,
        'No secret: it cannot log in until it has one.'),
      h('p', {}, rotate), shown);
    return section;
  }

  /** Run `step` again each time the registry changes (blocking queries), until the page is left. */
  function live(signal, url, step) {
    const indicator = h('p', { class: 'live', role: 'status' }, 'Connecting…');
    let index = null;
    let failures = 0;
    const loop = async () => {
      while (!signal.aborted) {
        try {
          const sep = url.includes('?') ? '&' : '?';
          const r = await api('GET', index === null ? url : `${url}${sep}index=${index}&wait=60s`, undefined, { signal });
          index = Number(r.headers.get('X-Roster-Index'));
          failures = 0;
          await step(r.data);
          indicator.textContent = `Live: change index ${index}`;
        } catch (e) {
          if (signal.aborted) return;
          failures += 1;
          indicator.textContent = `Reconnecting: ${e.message}`;
          await new Promise((ok) => { setTimeout(ok, Math.min(30000, 1000 * 2 ** failures)); });
        }
      }
    };
    return { indicator, loop };
  }

  async function registryPage({ signal }) {
    const cats = h('div', {});
    const svcs = h('div', {});
    const { indicator, loop } = live(signal, '/api/v1/services', async (items) => {
      const { data } = await api('GET', '/api/v1/categories', undefined, { signal });
      cats.replaceChildren(table('Categories', ['Category', 'Services', 'Up'],
        data.items.map((c) => [c.name, String(c.service_count), String(c.up_count)]), 'No categories yet.'));
      svcs.replaceChildren(table('Services', ['Service', 'State', 'Instances', 'Categories', 'Last seen'],
        items.items.map((s) => [
          link(`#/services/${encodeURIComponent(s.name)}`, s.name), badge(s.status),
          `${s.instances.filter((i) => i.status === 'up').length} of ${s.instances.length} up`,
          list(s.categories.map((c) => `${c.name}:${c.priority}`)), when(s.last_seen),
        ]), 'No service is registered.'));
    });
    show('Registry', [indicator,
      h('section', { 'aria-labelledby': 'svc-title' }, h('h2', { id: 'svc-title' }, 'Services'), svcs),
      h('section', { 'aria-labelledby': 'cat-title' }, h('h2', { id: 'cat-title' }, 'Categories'), cats)]);
    loop();
  }

  async function serviceLive({ id, signal }) {
    const body = h('div', {});
    const { indicator, loop } = live(signal, `/api/v1/services/${encodeURIComponent(id)}`, async (svc) => {
      body.replaceChildren(registrationSection(svc),
        h('section', {}, h('h2', {}, 'Recent changes'),
          table('Transitions', ['When', 'Instance', 'From', 'To', 'Why'], (svc.transitions || []).map((t) => [
            when(t.at), t.instance || '(service)', t.from, t.to, t.reason || '',
          ]), 'No changes recorded.')));
    });
    show(id, [indicator, body]);
    loop();
  }

  async function modulesPage({ params }) {
    const as = params.get('as') || '';
    const anonymous = params.get('anonymous') === '1';
    const choose = searchForm('Choose a principal', '#/modules', [
      field('See the menu as', h('input', { id: 'as', name: 'as', value: as, list: 'principal-names', autocomplete: 'off' }),
        'A principal\'s name; empty for yourself.'),
      h('datalist', { id: 'principal-names' }),
      h('div', { class: 'field check' }, h('input', { id: 'anonymous', name: 'anonymous', type: 'checkbox', value: '1', checked: anonymous }),
        h('label', { for: 'anonymous' }, 'An anonymous visitor')),
      h('button', { type: 'submit' }, 'Show')]);
    api('GET', '/api/v1/principals?limit=200').then(({ data }) => {
      choose.querySelector('datalist').replaceChildren(...data.items.map((p) => h('option', { value: p.name })));
    }, () => {});
    const q = new URLSearchParams();
    if (as && !anonymous) q.set('as', as);
    const { data } = await api('GET', `/api/v1/modules?${q}`, undefined, { anonymous });
    const who = anonymous ? 'an anonymous visitor' : as || 'you';
    const modules = data.items.map((m) => h('section', { class: 'module' },
      h('h2', {}, m.name, ' ', h('small', {}, `from ${m.service}`)),
      table(`Pages of ${m.name}`, ['Page', 'Link', 'Icon', 'Needs scope', 'Position'], m.pages.map((pg) => [
        pg.name, h('code', {}, pg.module_link), pg.icon, pg.required_scope || '—',
        pg.menu_position === undefined || pg.menu_position === null ? '—' : String(pg.menu_position),
      ]), 'No pages.')));
    show('Modules', [choose, h('p', { class: 'lead', id: 'menu-for' }, `The menu as ${who} sees it: ${data.items.length} `
      + `module${data.items.length === 1 ? '' : 's'} from the services that are up.`),
    ...(modules.length ? modules : [h('p', { class: 'empty' }, 'Nothing on the menu.')])]);
  }

  async function auditPage({ params }) {
    const q = new URLSearchParams();
    for (const k of ['principal', 'type', 'since', 'cursor']) if (params.get(k)) q.set(k, params.get(k));
    const { data } = await api('GET', `/api/v1/audit?${q}`);
    const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
      field('Principal', h('input', { id: 'principal', name: 'principal', value: params.get('principal') ? await nameOf(params.get('principal')) : '', autocomplete: 'off' }),
        'A name or an id.'),
      field('Event type', h('input', { id: 'type', name: 'type', value: params.get('type') || '', autocomplete: 'off' }),
        'e.g. principal.created, secret.created, token.issued'),
      field('Since', h('input', { id: 'since', name: 'since', type: 'datetime-local', value: (params.get('since') || '').slice(0, 16) })),
      h('button', { type: 'submit' }, 'Filter'));
    filters.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const next = new URLSearchParams();
      const fd = new FormData(filters);
      const principal = (fd.get('principal') || '').trim();
      if (principal) {
        const found = await api('GET', `/api/v1/principals?q=${encodeURIComponent(principal)}&limit=200`)
          .then(({ data: d }) => d.items.find((p) => p.name === principal), () => null);
        next.set('principal', found ? found.id : principal);
      }
      if (fd.get('type')) next.set('type', fd.get('type').trim());
      if (fd.get('since')) next.set('since', `${fd.get('since')}:00Z`);
      location.hash = `#/audit?${next}`;
    });
    const rows = await Promise.all(data.items.map(async (e) => [
      when(e.created_at), h('code', { class: 'event' }, e.type), badge(e.outcome),
      await nameOf(e.actor_id), await nameOf(e.principal_id), e.remote_addr || '—',
      [e.reason || '', e.details ? h('code', { class: 'details' }, JSON.stringify(e.details)) : ''],
    ]));
    const older = data.next_cursor
      ? link(`#/audit?${new URLSearchParams({ ...Object.fromEntries(q), cursor: data.next_cursor })}`, 'Older events')
      : null;
    show('Audit', [filters,
      table('Audit events, newest first', ['When', 'Event', 'Outcome', 'By', 'Principal', 'From', 'Details'], rows,
        'No event matches.'), older]);
  }

  // ---- routing -------------------------------------------------------------------

  /** Trusted issuers of workload identities (Kubernetes, SPIFFE, CI platforms). */
  async function federationPage() {
    const reload = () => route({ focus: false });
    const { data } = await api('GET', '/api/v1/federation/issuers');
    const rows = data.items.map((i) => [
      i.issuer, i.audience, i.jwks_uri || (i.jwks ? `${i.jwks.keys.length} key(s)` : '—'), `${i.max_lifetime_secs} s`,
      confirmAction('Remove', `Stop trusting ${i.issuer}? Refused while a service names it.`, 'Remove', async () => {
        await api('DELETE', `/api/v1/federation/issuers/${encodeURIComponent(i.id)}`);
        await reload();
      }, { danger: true }),
    ]);
    const add = form({ 'aria-label': 'Trust an issuer' }, [
      field('Issuer', h('input', { id: 'issuer-iss', name: 'issuer', required: '', autocomplete: 'off' }), 'The iss of its tokens, exactly.'),
      field('Audience', h('input', { id: 'issuer-aud', name: 'audience', required: '', autocomplete: 'off' }), 'The aud its tokens carry for Roster.'),
      field('JWK Set URL', h('input', { id: 'issuer-jwks-uri', name: 'jwks_uri', autocomplete: 'off' }), 'Where its keys are (https)…'),
      field('JWK Set', h('textarea', { id: 'issuer-jwks', name: 'jwks', rows: 3, autocomplete: 'off' }), '…or its public keys, as JSON.'),
      field('Longest lifetime (s)', h('input', { id: 'issuer-life', name: 'max_lifetime_secs', value: '3600', inputmode: 'numeric' }), ''),
      h('button', { type: 'submit' }, 'Trust issuer'),
    ], async (fd) => {
      const body = { issuer: fd.get('issuer').trim(), audience: fd.get('audience').trim(),
        max_lifetime_secs: Number(fd.get('max_lifetime_secs')) };
      const jwks = fd.get('jwks').trim();
      if (jwks) {
        try { body.jwks = JSON.parse(jwks); } catch (e) { return note('error', `The JWK Set is not JSON: ${e.message}`); }
      } else {
        body.jwks_uri = fd.get('jwks_uri').trim();
      }
      await api('POST', '/api/v1/federation/issuers', body);
      await reload();
    });
    show('Trusted issuers', [
      h('p', {}, 'Tokens of these issuers stand for the services whose federated subjects name them: no secret is stored.'),
      table('Trusted issuers', ['Issuer', 'Audience', 'Keys', 'Longest lifetime', ''], rows, 'No issuer is trusted.'),
      h('section', {}, h('h2', {}, 'Trust an issuer'), add),
    ]);
  }

  const ROUTES = [
    [/^\/principals\/new$/, newService],
    [/^\/principals\/new-person$/, newPerson],
    [/^\/principals\/([^/]+)$/, principalDetail],
    [/^\/principals$/, principals],
    [/^\/registry$/, registryPage],
    [/^\/services\/([^/]+)$/, serviceLive],
    [/^\/modules$/, modulesPage],
    [/^\/audit$/, auditPage],
    [/^\/federation$/, federationPage],
    [/^\/security$/, securityPage],
  ];
  let leaving = new AbortController();

  async function route({ focus = true } = {}) {
    const hash = location.hash.replace(/^#/, '');
    if (!hash || hash === 'main') {
      location.replace('#/principals');
      return;
    }
    leaving.abort();
    leaving = new AbortController();
    const [path, query] = hash.split('?');
    const params = new URLSearchParams(query || '');
    focusTitle = focus;
    for (const [re, page] of ROUTES) {
      const m = re.exec(path);
      if (!m) continue;
      try {
        await page({ id: m[1] && decodeURIComponent(m[1]), params, signal: leaving.signal });
      } catch (e) {
        if (e.name !== 'AbortError') show('Something went wrong', [note('error', e.message)]);
      }
      return;
    }
    show('Not found', [h('p', {}, 'No such page. '), link('#/principals', 'Principals')]);
  }

  async function start() {
    if (location.origin !== new URL(ISSUER).origin) {
      location.replace(REDIRECT + location.hash);
      return;
    }
    const params = new URLSearchParams(location.search);
    try {
      if (params.has('code') || params.has('error')) await finishLogin(params);
    } catch (e) {
      show('Login failed', [note('error', e.message), h('p', {}, h('a', { href: REDIRECT }, 'Try again'))]);
      return;
    }
    const t = token();
    if (!t) {
      await login();
      return;
    }
    const { data: me } = await api('GET', '/api/v1/me');
    document.getElementById('who').replaceChildren(
      h('span', { id: 'me' }, me.name), ' ',
      h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'));
    if (!me.scopes.includes('admin')) {
      // A person without admin may still manage their own second factors.
      if (location.hash.startsWith('#/security')) {
        await securityPage();
        return;
      }
      show('Not an administrator', [note('error',
        `${me.name} does not hold the admin scope, so the console can show only your own security settings. Log out, and log in as an administrator.`),
      h('p', {}, link('#/security', 'Your second factors'))]);
      window.addEventListener('hashchange', () => { if (location.hash.startsWith('#/security')) securityPage(); });
      return;
    }
    // The skip link moves the focus without touching the address (the hash is the page).
    document.querySelector('.skip').addEventListener('click', (ev) => {
      ev.preventDefault();
      main.focus();
    });
    window.addEventListener('hashchange', () => route());
    // The first page leaves the focus at the top, where the skip link is.
    await route({ focus: false });
  }

  start().catch((e) => show('Something went wrong', [note('error', e.message)]));
})();
