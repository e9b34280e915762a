"""Drives the approver page (/approvals/ui) in a real headless Chromium through Selenium,
for tests/it/approver_ui.rs.

Usage: approver_ui.py PAGE_URL TOKEN WRONG_TOKEN

Prints one JSON object per line on stdout. It signs in with WRONG_TOKEN first (and reports
the error the page shows), then with TOKEN, then reads commands from stdin, one a line:

  approve COMMAND | deny COMMAND   wait for the pending request of COMMAND, click the verb,
                                   check the request is still pending at the confirmation
                                   step, confirm, and wait for it in the decided list
  quit                             report cookies, storage, the URL and CSP errors; exit

Only loopback URLs are opened; Chromium runs with a fresh profile and no background traffic.
"""

import json
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 60


def say(obj):
    print(json.dumps(obj), flush=True)


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)


def sign_in(d, token):
    field = WebDriverWait(d, WAIT).until(ec.visibility_of_element_located((By.ID, "token")))
    field.clear()
    field.send_keys(token)
    d.find_element(By.ID, "signin-button").click()


def pending_item(d, command):
    def find(drv):
        for li in drv.find_elements(By.CSS_SELECTOR, "#pending li.request"):
            if li.find_element(By.CSS_SELECTOR, ".what").text == command:
                return li
        return False

    return WebDriverWait(d, WAIT).until(find)


def field(li, cls):
    return li.find_element(By.CSS_SELECTOR, "dd." + cls).text


def decide(d, verb, command):
    li = pending_item(d, command)
    rid = li.get_attribute("data-id")
    seen = {k: field(li, k) for k in ["hosts", "rule", "reason", "client", "age"]}
    seen["label"] = li.find_element(By.CSS_SELECTOR, ".label").text
    li.find_element(By.CSS_SELECTOR, "button." + verb).click()
    confirm = WebDriverWait(d, WAIT).until(
        lambda drv: li.find_element(By.CSS_SELECTOR, "button.confirm-" + verb)
    )
    confirm_text = confirm.text
    # A poll or two later the request must still be pending: the first click decided nothing.
    d.execute_script("return new Promise(r => setTimeout(r, 1500))")
    still_pending = bool(d.find_elements(By.CSS_SELECTOR, f'#pending li.request[data-id="{rid}"]'))
    confirm.click()
    decided = WebDriverWait(d, WAIT).until(
        lambda drv: drv.find_elements(By.CSS_SELECTOR, f'#decided li.decided[data-id="{rid}"]')
    )[0]
    WebDriverWait(d, WAIT).until(
        lambda drv: not drv.find_elements(By.CSS_SELECTOR, f'#pending li.request[data-id="{rid}"]')
    )
    return {
        "step": verb,
        "id": rid,
        "seen": seen,
        "confirm_text": confirm_text,
        "pending_at_confirmation": still_pending,
        "verdict": decided.find_element(By.CSS_SELECTOR, ".verdict").text,
        "decided_what": decided.find_element(By.CSS_SELECTOR, ".what").text,
    }


def main():
    page, token, wrong = sys.argv[1], sys.argv[2], sys.argv[3]
    profile = tempfile.mkdtemp(prefix="sshwarden-chromium-")
    d = browser(profile)
    try:
        d.get(page)
        sign_in(d, wrong)
        error = WebDriverWait(d, WAIT).until(ec.visibility_of_element_located((By.ID, "error")))
        say({"step": "wrong_token", "error": error.text, "main_hidden": not d.find_element(By.ID, "main-view").is_displayed()})
        sign_in(d, token)
        WebDriverWait(d, WAIT).until(ec.visibility_of_element_located((By.ID, "main-view")))
        say({"step": "signed_in", "error_hidden": not d.find_element(By.ID, "error").is_displayed()})
        for line in sys.stdin:
            words = line.strip().split(" ", 1)
            if words[0] in ("approve", "deny") and len(words) == 2:
                say(decide(d, words[0], words[1]))
            elif words[0] == "quit":
                logs = d.get_log("browser")
                say({
                    "step": "done",
                    "url": d.current_url,
                    "cookies": d.execute_script("return document.cookie"),
                    "session_token": d.execute_script("return sessionStorage.getItem('sshwarden-approver-token')"),
                    "local_storage_keys": d.execute_script("return localStorage.length"),
                    "csp_errors": [l["message"] for l in logs if "Content Security Policy" in l["message"]],
                })
                return
            else:
                say({"step": "error", "message": f"unknown command {line!r}"})
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
