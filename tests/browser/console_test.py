"""The admin console in a real browser: headless Chromium through WebDriver
(chromedriver), against a running Roster. The console logs in through the
authorization-code flow as the public client roster-console; this script
plays both the admin at the keyboard and, over plain HTTP, the service the
admin creates.

Usage: console_test.py ROSTER_URL ADMIN_PASSWORD SCREENSHOT_DIR
"""
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

roster, admin_password, shots = sys.argv[1:4]
os.makedirs(shots, exist_ok=True)
SERVICE = "billing"

options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
    options.add_argument(arg)
options.binary_location = "/usr/bin/chromium"
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20)


def http(method, path, body=None, token=None, form=None, basic=None):
    """One request to Roster: (status, parsed JSON body or None)."""
    headers = {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data, headers["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    req = urllib.request.Request(roster + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def client_credentials(secret):
    return http("POST", "/oauth/token", form={"grant_type": "client_credentials"}, basic=(SERVICE, secret))


def texts(selector):
    """The text of every element `selector` matches, read in one script (never a stale element)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", selector)


def title(text):
    """Wait for a page whose heading is `text`."""
    wait.until(lambda d: texts("#page-title") == [text])


def shot(name):
    """The whole page, however long: the window grows to it for the picture."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height, min(full + 140, 3000)))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(os.path.join(shots, f"console-{name}.png"))
    driver.set_window_size(width, height)


def totp(secret_b32, at=None):
    """RFC 6238 with SHA-1, six digits, 30-second steps (what authenticator apps compute)."""
    import base64, hashlib, hmac, struct, time
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    step = int((time.time() if at is None else at) // 30)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def click_text(tag, text):
    wait.until(ec.element_to_be_clickable((By.XPATH, f"//{tag}[normalize-space()='{text}']"))).click()


try:
    # 1. The console sends the browser to Roster's login page; the admin logs in.
    driver.get(f"{roster}/console")
    wait.until(ec.presence_of_element_located((By.ID, "password")))
    assert driver.current_url.startswith(f"{roster}/oauth/authorize?"), driver.current_url
    assert "client_id=roster-console" in driver.current_url, driver.current_url
    driver.find_element(By.ID, "username").send_keys("admin")
    driver.find_element(By.ID, "password").send_keys(admin_password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # The console asks for a second step (acr_values=mfa) and admins must
    # have one: the first login enrols a TOTP factor, shown as a QR code and a key.
    wait.until(ec.presence_of_element_located((By.ID, "totp-secret")))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Set up two-step verification"
    assert driver.find_elements(By.CSS_SELECTOR, ".qr svg"), "a QR code"
    secret = driver.find_element(By.ID, "totp-secret").text
    driver.find_element(By.ID, "code").send_keys(totp(secret))
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "recovery-codes")))
    codes = texts("#recovery-codes code")
    assert len(codes) == 10, codes
    shot("recovery-codes")
    driver.find_element(By.ID, "continue").click()
    title("Principals")
    recovery = codes
    assert driver.current_url == f"{roster}/console/#/principals", driver.current_url
    assert driver.find_element(By.ID, "me").text == "admin"
    names = texts("td[data-label=Name] a")
    assert names == ["admin", "grace", "roster-console", "spa-one", "spa-two"], names
    shot("principals")
    print("console: login through the authorization-code flow, principals listed: ok")

    # Filters: services only.
    driver.find_element(By.ID, "kind").send_keys("Services")
    click_text("button", "Filter")
    wait.until(ec.url_contains("kind=service"))
    wait.until(lambda d: texts("td[data-label=Name] a") == ["roster-console", "spa-one", "spa-two"])

    # 2. Create a service; its secret is shown once, and it works.
    click_text("a", "New service")
    title("New service")
    driver.find_element(By.ID, "name").send_keys(SERVICE)
    driver.find_element(By.ID, "display_name").send_keys("Billing")
    driver.find_element(By.ID, "categories").send_keys("payments:10")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    secret1 = wait.until(ec.presence_of_element_located((By.ID, "new-secret"))).text
    assert len(secret1) >= 32, secret1
    shot("new-service")
    click_text("button", "Copy")
    wait.until(lambda d: texts("section.once button")[0] in ("Copied", "Selected: press Ctrl+C"))
    status, body = client_credentials(secret1)
    assert status == 200 and body["token_type"] == "Bearer", (status, body)
    click_text("a", f"Go to {SERVICE}")
    title(SERVICE)
    billing_id = driver.current_url.rsplit("/", 1)[1]
    assert secret1 not in driver.page_source, "the secret is shown a second time"
    print("console: service created, its secret shown once and accepted: ok")

    # 3. Rotate: a second secret, and both work until the old one is retired.
    driver.find_element(By.ID, "rotate").click()
    secret2 = wait.until(ec.presence_of_element_located((By.ID, "rotated-secret"))).text
    assert secret2 != secret1
    assert "The old secret keeps working until you retire" in driver.find_element(By.CSS_SELECTOR, "section.once").text
    for s in (secret1, secret2):
        status, body = client_credentials(s)
        assert status == 200, (status, body)
    # Use counts reach the database on the background tick: reload until they show.
    def uses(d):
        d.refresh()
        title(SERVICE)
        return texts("section[aria-labelledby=secrets-title] td[data-label=Uses]") == ["2", "1"]
    wait.until(uses)
    shot("service")
    rows = driver.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=secrets-title] tbody tr")
    assert all(r.find_element(By.CSS_SELECTOR, "td[data-label='Last used']").text.endswith("UTC") for r in rows)
    # Retire the older one (secrets are listed oldest first).
    rows[0].find_element(By.XPATH, ".//button[normalize-space()='Retire']").click()
    wait.until(ec.element_to_be_clickable((By.XPATH, "//div[@class='confirm-area']//button[normalize-space()='Retire']"))).click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=secrets-title] tbody tr")) == 1)
    status, body = client_credentials(secret1)
    assert (status, body["error"]) == (401, "invalid_client"), (status, body)
    status, body = client_credentials(secret2)
    assert status == 200, (status, body)
    token = body["access_token"]
    print("console: secret rotated with overlap, the old one retired: ok")

    # 4. The registry view is live: the service appears when it registers, without a reload.
    driver.get(f"{roster}/console/#/registry")
    title("Registry")
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "p.live"), "Live"))
    assert "No service is registered." in driver.find_element(By.ID, "main").text
    driver.execute_script("""
      window.__sameDocument = true;
      window.__t0 = performance.now();
      new MutationObserver((_, obs) => {
        const a = [...document.querySelectorAll("td[data-label=Service] a")].find((x) => x.textContent === arguments[0]);
        if (a) { window.__t1 = performance.now(); obs.disconnect(); }
      }).observe(document.getElementById("main"), { childList: true, subtree: true });
    """, SERVICE)
    status, body = http("PUT", f"/api/v1/services/{SERVICE}/registration", token=token,
                        body={"base_url": "http://127.0.0.1:9/", "categories": [{"name": "payments", "priority": 10}]})
    assert status == 200 and body["status"] == "up", (status, body)
    manifest = {"name": "Billing", "code": "billing", "pages": [
        {"name": "Invoices", "code": "invoices", "module_link": "/billing/invoices", "icon": "receipt", "menu_position": 1},
        {"name": "Billing settings", "code": "settings", "module_link": "/billing/settings", "icon": "gear",
         "required_scope": "billing:admin", "menu_position": 2}]}
    status, body = http("PUT", f"/api/v1/services/{SERVICE}/modules", token=token, body=manifest)
    assert status == 200, (status, body)
    # Read the row in one script: the live page may re-render between two WebDriver calls.
    row = """
      const a = [...document.querySelectorAll("td[data-label=Service] a")].find((x) => x.textContent === arguments[0]);
      if (!a) return null;
      const tr = a.closest("tr");
      return ["State", "Instances", "Categories"].map((l) => tr.querySelector(`td[data-label=${l}]`).textContent);
    """
    wait.until(lambda d: d.execute_script(row, SERVICE) == ["up", "1 of 1 up", "payments:10"])
    assert driver.execute_script("return window.__sameDocument === true"), "the registry page was reloaded"
    shot("registry")
    shown = driver.execute_script("return window.__t1 - window.__t0")
    print(f"console: the registration showed in the registry view {shown:.0f} ms after the request was sent")
    print("console: the registry view showed the registration as it happened (blocking queries): ok")

    # 5. The menu as a chosen principal sees it.
    driver.get(f"{roster}/console/#/modules?as=grace")
    title("Modules")
    wait.until(ec.text_to_be_present_in_element((By.ID, "menu-for"), "as grace"))
    pages = texts("td[data-label=Page]")
    assert pages == ["Invoices", "Billing settings"], pages
    shot("modules")
    driver.get(f"{roster}/console/#/modules?anonymous=1")
    wait.until(ec.text_to_be_present_in_element((By.ID, "menu-for"), "anonymous visitor"))
    pages = texts("td[data-label=Page]")
    assert pages == ["Invoices"], pages
    print("console: the menu as grace and as an anonymous visitor: ok")

    # 6. Disable the service: its live token is refused at once, and so is its secret.
    driver.get(f"{roster}/console/#/principals?kind=service")
    click_text("a", SERVICE)
    title(SERVICE)
    click_text("button", "Disable")
    click_text("button", f"Disable {SERVICE}")
    wait.until(ec.text_to_be_present_in_element((By.ID, "principal-status"), "disabled"))
    status, body = http("POST", f"/api/v1/services/{SERVICE}/heartbeat", token=token)
    assert (status, body) == (401, {"error": "invalid_token",
                                    "error_description": "the access token is invalid, expired or revoked"}), (status, body)
    status, body = client_credentials(secret2)
    assert (status, body["error"]) == (401, "invalid_client"), (status, body)
    print("console: disabled, and its token and secret are refused: ok")

    # 7. Set a person's password.
    driver.get(f"{roster}/console/#/principals?kind=human")
    click_text("a", "grace")
    title("grace")
    driver.find_element(By.ID, "new-password").send_keys("grace-new-password-456")
    click_text("button", "Set password")
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "form[aria-label='Set password'] .form-result"), "The password of grace is set."))
    status, body = http("POST", "/oauth/token", form={"grant_type": "password", "username": "grace",
                                                     "password": "grace-new-password-456"})
    assert status == 200 and body["token_type"] == "Bearer", (status, body)
    shot("person")
    print("console: a person's password set: ok")

    # 7b. Create a person, who can then log in.
    driver.get(f"{roster}/console/#/principals")
    click_text("a", "New person")
    title("New person")
    driver.find_element(By.ID, "name").send_keys("oscar")
    driver.find_element(By.ID, "scopes").send_keys("registry:read")
    driver.find_element(By.ID, "password").send_keys("oscar-password-789")
    click_text("button", "Create person")
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".form-result"), "Created oscar."))
    assert driver.switch_to.active_element.text.startswith("Created oscar."), driver.switch_to.active_element.text
    status, body = http("POST", "/oauth/token", form={"grant_type": "password", "username": "oscar",
                                                     "password": "oscar-password-789"})
    assert status == 200 and body["scope"] == "registry:read", (status, body)
    print("console: a person created, who logs in: ok")

    # 7c. A frontend's redirect URIs, edited.
    driver.get(f"{roster}/console/#/principals?q=spa-one")
    click_text("a", "spa-one")
    title("spa-one")
    box = driver.find_element(By.ID, "redirect_uris")
    first = box.get_attribute("value")
    box.send_keys(Keys.END, Keys.ENTER, "http://localhost:7777/cb")
    click_text("button", "Save URIs")
    # The page renders again after the save: read the new field in one script.
    wait.until(lambda d: d.execute_script("return document.getElementById('redirect_uris').value")
               == f"{first}\nhttp://localhost:7777/cb")
    # The admin has a second factor now: the password grant refuses them.
    status, body = http("POST", "/oauth/token", form={"grant_type": "password", "username": "admin",
                                                     "password": admin_password})
    assert (status, body["error_description"]) == (400, "a second factor is required: use the browser or device login"), body
    # The console's own token (from the browser login, amr pwd+otp) serves the checks below.
    admin_token = driver.execute_script("return JSON.parse(sessionStorage.getItem('roster.console.token')).access")
    status, body = http("GET", "/api/v1/principals?q=spa-one", token=admin_token)
    assert body["items"][0]["redirect_uris"] == [first, "http://localhost:7777/cb"], body
    print("console: redirect URIs edited: ok")

    # 8. The audit timeline, filtered by principal name.
    driver.get(f"{roster}/console/#/audit")
    title("Audit")
    driver.find_element(By.ID, "principal").send_keys(SERVICE)
    click_text("button", "Filter")
    wait.until(ec.url_contains("principal="))
    # The filtered page has replaced the whole log when every row is the service's.
    wait.until(lambda d: texts("td[data-label=Principal]") and set(texts("td[data-label=Principal]")) == {SERVICE})
    events = texts("td[data-label=Event]")
    for expected in ("principal.created", "secret.created", "secret.deleted", "principal.disabled"):
        assert expected in events, (expected, events)
    assert driver.find_element(By.ID, "principal").get_attribute("value") == SERVICE
    shot("audit")
    print("console: the audit timeline, filtered: ok")

    # 8b. Services without secrets: trust an issuer, and switch billing to its own key.
    jwks = '{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig","kid":"b-1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}'
    driver.get(f"{roster}/console/#/federation")
    title("Trusted issuers")
    driver.find_element(By.ID, "issuer-iss").send_keys("https://kubernetes.default.svc")
    driver.find_element(By.ID, "issuer-aud").send_keys("roster")
    driver.find_element(By.ID, "issuer-jwks").send_keys(jwks)
    click_text("button", "Trust issuer")
    wait.until(lambda d: "https://kubernetes.default.svc" in texts("td"))
    driver.get(f"{roster}/console/#/principals/{billing_id}")
    title(SERVICE)
    driver.find_element(By.ID, "auth-method").send_keys("private_key_jwt")
    driver.find_element(By.ID, "auth-jwks").send_keys(jwks)
    driver.find_element(By.ID, "auth-subjects").send_keys("https://kubernetes.default.svc system:serviceaccount:billing:api")
    click_text("button", "Save authentication")
    wait.until(lambda d: "It authenticates with private_key_jwt: it has no secret." in d.page_source)
    status, body = http("GET", f"/api/v1/principals/{billing_id}", token=admin_token)
    assert body["token_endpoint_auth_method"] == "private_key_jwt", body
    assert body["federated_subjects"] == [{"issuer": "https://kubernetes.default.svc",
                                           "subject": "system:serviceaccount:billing:api"}], body
    status, body = client_credentials(secret2)
    assert status == 401, (status, body)
    print("console: a trusted issuer, and a service switched to private_key_jwt: ok")

    # 8c. Token exchange: billing may act for its callers towards a category, in chains of two.
    assert "It may not act for its callers (no exchange policy)." in driver.page_source
    driver.find_element(By.ID, "exchange-audiences").send_keys("ledger\nurn:roster:category:notification")
    depth = driver.find_element(By.ID, "exchange-depth")
    depth.clear()
    depth.send_keys("2")
    click_text("button", "Save exchange policy")
    wait.until(lambda d: "It may act for its callers towards ledger, urn:roster:category:notification, "
                         "in chains of at most 2 hops." in d.page_source)
    status, body = http("GET", f"/api/v1/principals/{billing_id}", token=admin_token)
    assert body["token_exchange"] == {"audiences": ["ledger", "urn:roster:category:notification"], "max_depth": 2}, body
    driver.find_element(By.ID, "exchange-audiences").clear()
    click_text("button", "Save exchange policy")
    wait.until(lambda d: "It may not act for its callers (no exchange policy)." in d.page_source)
    status, body = http("GET", f"/api/v1/principals/{billing_id}", token=admin_token)
    assert "token_exchange" not in body, body
    print("console: a service's token exchange policy, set and removed: ok")

    # 8d. Security: the admin's own factors; a second authenticator app; new recovery codes.
    driver.get(f"{roster}/console/#/security")
    title("Security")
    assert driver.find_element(By.ID, "mfa-required").text == "yes"
    assert driver.find_element(By.ID, "recovery-left").text == "10"
    assert texts("td[data-label=Name]") == ["Authenticator app"], texts("td[data-label=Name]")
    driver.find_element(By.ID, "factor-name").clear()
    driver.find_element(By.ID, "factor-name").send_keys("Backup phone")
    click_text("button", "Add an authenticator app")
    wait.until(ec.presence_of_element_located((By.ID, "new-totp-secret")))
    driver.find_element(By.ID, "new-totp-code").send_keys(totp(driver.find_element(By.ID, "new-totp-secret").text))
    click_text("button", "Confirm")
    wait.until(lambda d: "Backup phone is confirmed." in d.page_source)
    assert not driver.find_elements(By.ID, "console-recovery-codes"), "recovery codes come with the first factor only"
    driver.find_element(By.ID, "regenerate-code").send_keys(recovery[0])
    click_text("button", "New recovery codes")
    wait.until(ec.presence_of_element_located((By.ID, "console-recovery-codes")))
    fresh = texts("#console-recovery-codes code")
    assert len(fresh) == 10 and not set(fresh) & set(recovery), fresh
    shot("security")
    status, body = http("GET", "/api/v1/me/factors", token=admin_token)
    assert [f["name"] for f in body["factors"]] == ["Authenticator app", "Backup phone"], body
    assert body["recovery_codes_left"] == 10, body
    # An admin sees a person's factors and sets their MFA setting.
    driver.get(f"{roster}/console/#/principals")
    click_text("a", "grace")
    wait.until(ec.presence_of_element_located((By.ID, "mfa")))
    driver.find_element(By.ID, "mfa").send_keys("required")
    click_text("button", "Save MFA setting")
    status, body = http("GET", "/api/v1/principals?q=grace", token=admin_token)
    grace_id = body["items"][0]["id"]
    # Saved once the server says so (the page reloads its section after the PUT).
    wait.until(lambda d: http("GET", f"/api/v1/principals/{grace_id}/factors", token=admin_token)[1]["mfa"] == "required")
    status, body = http("GET", f"/api/v1/principals/{grace_id}/factors", token=admin_token)
    assert (body["mfa"], body["mfa_required"], body["factors"]) == ("required", True, []), body
    status, body = http("PUT", f"/api/v1/principals/{grace_id}/mfa", body={"mfa": "optional"}, token=admin_token)
    assert status == 200, body
    print("console: security page (a second app, new recovery codes) and a person's MFA setting: ok")

    # 9. The keyboard alone: the skip link first, then the menu, and the new page's heading takes the focus.
    driver.get(f"{roster}/console/#/principals")
    driver.refresh()  # a fresh load, not a change of page within the console
    title("Principals")
    assert driver.switch_to.active_element.tag_name == "body"
    ActionChains(driver).send_keys(Keys.TAB).perform()
    assert driver.switch_to.active_element.text == "Skip to content", driver.switch_to.active_element.text
    for _ in range(10):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        if driver.switch_to.active_element.text == "Audit":
            break
    assert driver.switch_to.active_element.text == "Audit", driver.switch_to.active_element.text
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    title("Audit")
    assert driver.switch_to.active_element.get_attribute("id") == "page-title"
    print("console: keyboard navigation: ok")

    # 10. A phone's width: no sideways scrolling, table rows as labelled cards.
    driver.set_window_size(390, 844)
    driver.get(f"{roster}/console/#/principals")
    title("Principals")
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert driver.execute_script("return getComputedStyle(document.querySelector('td')).display") == "grid"
    shot("mobile")
    for page, heading in ((f"#/principals/{billing_id}", SERVICE), ("#/principals/new", "New service"),
                          ("#/principals/new-person", "New person"),
                          ("#/registry", "Registry"), (f"#/services/{SERVICE}", SERVICE),
                          ("#/modules?as=grace", "Modules"), ("#/audit", "Audit"),
                          ("#/federation", "Trusted issuers"), ("#/security", "Security")):
        driver.get(f"{roster}/console/{page}")
        title(heading)
        if driver.find_elements(By.CSS_SELECTOR, "p.live"):  # live pages fill in after their first answer
            wait.until(lambda d: (texts("p.live") or [""])[0].startswith("Live"))
        wide = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, (page, wide)
    print("console: mobile layout, every page without sideways scrolling: ok")

    # No page broke the Content-Security-Policy (no inline script or style).
    violations = [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not violations, violations
    print("console: no CSP violations: ok")

    # Logging out ends the login session: the console asks for the password again.
    driver.set_window_size(1200, 900)
    click_text("button", "Log out")
    wait.until(ec.presence_of_element_located((By.ID, "password")))
    assert driver.current_url.startswith(f"{roster}/oauth/authorize?"), driver.current_url
    print("console: log out: ok")
finally:
    driver.quit()
