"""Passkeys in a real browser: headless Chromium with WebDriver's virtual
authenticator (a platform authenticator that keeps discoverable credentials
and verifies its user), against a Roster whose issuer is http://localhost
(WebAuthn needs a domain name). A person registers a passkey on the
console's Security page, signs out, signs in with the passkey alone, and
signs in again with password + passkey. As an admin, they then invite a
person with no password in the console; the invitation link registers that
person's passkey, with which they sign in, and works no second time; their
passkey then confirms a change on the Security page in place of a code.

Usage: passkey_test.py ROSTER_URL USER PASSWORD
"""
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

roster, user, password = sys.argv[1:4]

options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
    options.add_argument(arg)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20)
authenticator = VirtualAuthenticatorOptions()
authenticator.protocol = Protocol.CTAP2
authenticator.transport = Transport.INTERNAL
authenticator.has_resident_key = True
authenticator.has_user_verification = True
authenticator.is_user_verified = True
authenticator.is_user_consenting = True


def totp(secret_b32):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def texts(selector):
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", selector)


def title(text):
    wait.until(lambda d: texts("#page-title") == [text])


def token():
    return driver.execute_script("return JSON.parse(sessionStorage.getItem('roster.console.token'))")


def claims(jwt):
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def factors(access):
    req = urllib.request.Request(f"{roster}/api/v1/me/factors", headers={"Authorization": f"Bearer {access}"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def click_when_ready(element_id):
    """Click the element once it is clickable, through page loads that replace it."""
    from selenium.common.exceptions import StaleElementReferenceException

    def attempt(d):
        try:
            el = d.find_element(By.ID, element_id)
            if not (el.is_displayed() and el.is_enabled()):
                return False
            text = el.text
            el.click()
            return text or True
        except StaleElementReferenceException:
            return False
    return wait.until(attempt)


def log_out():
    driver.find_element(By.XPATH, "//button[normalize-space()='Log out']").click()
    wait.until(ec.presence_of_element_located((By.ID, "password")))


try:
    driver.add_virtual_authenticator(authenticator)
    # 1. The person's first console login: the console asks for a second step
    #    (acr_values=mfa), so a TOTP factor is enrolled on the spot.
    driver.get(f"{roster}/console/#/security")
    wait.until(ec.presence_of_element_located((By.ID, "password")))
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[action='/oauth/login'] button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "totp-secret")))
    driver.find_element(By.ID, "code").send_keys(totp(driver.find_element(By.ID, "totp-secret").text))
    driver.find_element(By.CSS_SELECTOR, "form[action='/oauth/login/second'] button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "continue"))).click()
    title("Security")
    print("passkeys: first login enrolled TOTP, the Security page shows: ok")

    # 2. Register a passkey on the Security page.
    driver.find_element(By.ID, "passkey-name").clear()
    driver.find_element(By.ID, "passkey-name").send_keys("Laptop")
    driver.find_element(By.XPATH, "//button[normalize-space()='Add a passkey']").click()
    wait.until(lambda d: "Laptop is added." in d.page_source)
    assert len(driver.get_credentials()) == 1, driver.get_credentials()
    assert driver.get_credentials()[0].is_resident_credential, "a discoverable credential"
    kinds = sorted((f["kind"], f["name"], f["confirmed"]) for f in factors(token()["access"])["factors"])
    assert kinds == [("passkey", "Laptop", True), ("totp", "Authenticator app", True)], kinds
    print("passkeys: a passkey registered with the virtual authenticator: ok")

    # 3. Sign out, and sign in with the passkey alone: no username typed.
    log_out()
    assert click_when_ready("passkey") == "Sign in with a passkey"
    wait.until(lambda d: texts("#me") == [user])
    t = claims(token()["access"])
    assert (t["name"], t["amr"], t["acr"]) == (user, ["hwk", "user", "mfa"], "mfa"), t
    print("passkeys: signed in with the passkey alone (amr hwk user mfa): ok")

    # 4. Sign out; with the password, the second step is due, and the passkey answers it.
    log_out()
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[action='/oauth/login'] button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "code")))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Two-step verification"
    assert click_when_ready("passkey") == "Use a passkey instead"
    wait.until(lambda d: texts("#me") == [user])
    t = claims(token()["access"])
    assert (t["amr"], t["acr"]) == (["pwd", "hwk", "user", "mfa"], "mfa"), t
    listed = {f["name"]: f for f in factors(token()["access"])["factors"]}
    assert listed["Laptop"]["last_used_at"], listed
    print("passkeys: password + passkey as the second step: ok")

    # 4b. An admin invites quinn, who gets no password, in the console.
    driver.get(f"{roster}/console/#/principals/new-person")
    title("New person")
    driver.find_element(By.ID, "name").send_keys("quinn")
    driver.find_element(By.ID, "invite").click()
    driver.find_element(By.XPATH, "//button[normalize-space()='Create person']").click()
    link = wait.until(ec.visibility_of_element_located((By.ID, "invitation-link"))).text
    assert link.startswith(f"{roster}/oauth/invitation#"), link
    print("passkeys: the console made an invitation link: ok")

    # 5. No passkey, no way around the second step: a person who has a
    #    factor cannot finish with the password alone.
    log_out()
    driver.remove_all_credentials()
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[action='/oauth/login'] button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "code")))
    driver.get(f"{roster}/console/#/security")
    wait.until(ec.presence_of_element_located((By.ID, "password")))
    print("passkeys: the password alone does not finish a login: ok")

    # 6. Quinn opens the link: a passkey, then a sign-in with it alone. This
    #    browser still holds pat's half-finished login from step 5: "Sign in
    #    with a passkey" starts a new login all the same (it once answered
    #    pat's second step with quinn's passkey, and failed).
    driver.get(link)
    assert click_when_ready("invitation-create") == "Create a passkey"
    wait.until(ec.visibility_of_element_located((By.ID, "invitation-done")))
    assert "#" not in driver.current_url, "the token leaves the address bar"
    assert len(driver.get_credentials()) == 1 and driver.get_credentials()[0].is_resident_credential
    driver.find_element(By.ID, "invitation-sign-in").click()
    assert click_when_ready("passkey") == "Sign in with a passkey"
    wait.until(lambda d: texts("#me") == ["quinn"])
    t = claims(token()["access"])
    assert (t["name"], t["amr"], t["acr"]) == ("quinn", ["hwk", "user", "mfa"], "mfa"), t
    print("passkeys: an invited person created a passkey and signed in with it: ok")

    # 7. The link works once.
    driver.get(link)
    click_when_ready("invitation-create")
    wait.until(lambda d: texts("#invitation-status") == [
        "this invitation link is unknown, used or expired: ask your administrator for a new one"])
    print("passkeys: a used invitation link is refused: ok")

    # 8. Quinn has no code to type: his passkey is his fresh second step.
    driver.get(f"{roster}/console/#/security")
    title("Security")
    form = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "form[aria-label='Remove Passkey']")))
    assert "Empty: confirm with one of your passkeys." in form.text, form.text
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "No second factor." in d.page_source)
    assert factors(token()["access"])["factors"] == []
    print("passkeys: a passkey confirmed its own removal (a fresh step without a code): ok")
except Exception:
    print("passkeys: failed at", driver.current_url, file=sys.stderr)
    print(driver.execute_script("return document.body ? document.body.innerText : ''")[:2000], file=sys.stderr)
    raise
finally:
    driver.quit()
