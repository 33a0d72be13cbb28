"""Browser login in a real browser: headless Chromium, driven through
WebDriver (chromedriver), against a running Roster and a tiny static
frontend on another origin. The frontend (examples/frontend/index.html) does
authorization code + PKCE in JavaScript, exchanges the code cross-origin
(CORS), and calls /api/v1/me and /api/v1/modules.

Usage: login_test.py ROSTER_URL FRONTEND_URL USERNAME PASSWORD SCREENSHOT
"""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

roster, frontend, user, password, screenshot = sys.argv[1:6]

options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,760"):
    options.add_argument(arg)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20)


def status():
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#status[data-done]")))
    return driver.find_element(By.ID, "status").text


try:
    # 1. The first frontend sends the browser to Roster's login page.
    driver.get(f"{frontend}/?client_id=spa-one&roster={roster}")
    wait.until(ec.presence_of_element_located((By.ID, "password")))
    assert driver.current_url.startswith(f"{roster}/oauth/authorize"), driver.current_url
    assert "Log in" in driver.title, driver.title
    driver.save_screenshot(screenshot)
    # A wrong password first: the same page, with the one message.
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys("not the password")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "login-error")))
    assert driver.find_element(By.ID, "login-error").text == "Invalid username or password."
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # 2. Back on the frontend with a code; it exchanged it (PKCE) and called the API.
    text = status()
    assert text.startswith(f"signed in as {user} via spa-one; modules: "), text
    print("browser: login page, code + PKCE exchange, /api/v1/me, /api/v1/modules: ok")

    # 3. A second frontend: single sign-on, no login page.
    driver.get(f"{frontend}/?client_id=spa-two&roster={roster}")
    text = status()
    assert text.startswith(f"signed in as {user} via spa-two"), text
    print("browser: single sign-on into a second frontend: ok")

    # 4. Logout (RP-initiated, with the ID token) ends the session.
    driver.get(f"{frontend}/?client_id=spa-two&logout=1")
    wait.until(ec.url_contains("/bye"))
    driver.get(f"{frontend}/?client_id=spa-one&roster={roster}")
    wait.until(ec.presence_of_element_located((By.ID, "password")))
    print("browser: logout ends the session (the login page is back): ok")
finally:
    driver.quit()
