// Portcullis passkeys: the page side of the WebAuthn ceremonies. It turns
// the gateway's options into what navigator.credentials takes (base64url
// members into bytes), the browser's answer back into JSON, and calls the
// JSON API (Content-Type application/json, same origin, so the gateway's
// cross-origin and CSRF checks pass). No libraries.
//
// On the login page it wires the "Sign in with a passkey" button
// (#passkey-signin, shown only when the browser has passkeys), reports a
// refusal in #passkey-error and follows the answer: the return target, or
// the step-up page when the policy wants one. window.portcullisPasskey
// offers register(name) and signIn(rd) to other pages.
(() => {
  "use strict";
  const api = "/.portcullis/api/v1/passkeys/";

  const bytes = (s) => {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  };
  const b64url = (buf) => {
    let bin = "";
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const ids = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));

  async function call(path, body) {
    const res = await fetch(api + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error(answer.message || "The request was refused.");
      err.answer = answer;
      throw err;
    }
    return answer;
  }

  // credentialJSON is a PublicKeyCredential as the gateway reads it.
  function credentialJSON(cred) {
    const r = cred.response;
    const response = { clientDataJSON: b64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = b64url(r.authenticatorData);
      response.signature = b64url(r.signature);
      if (r.userHandle) response.userHandle = b64url(r.userHandle);
    }
    const out = {
      id: cred.id,
      rawId: b64url(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults(),
      response,
    };
    if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
    return out;
  }

  // register adds a passkey to the signed-in profile. A refusal that asks
  // for a step-up carries answer.status "step_up_required".
  async function register(name) {
    const begin = await call("register/begin", {});
    const pk = begin.options.publicKey;
    const cred = await navigator.credentials.create({
      publicKey: { ...pk, challenge: bytes(pk.challenge), user: { ...pk.user, id: bytes(pk.user.id) },
        excludeCredentials: ids(pk.excludeCredentials) },
    });
    return call("register/finish", { credential: credentialJSON(cred), name: name || "" });
  }

  // signIn signs in with a passkey the authenticator offers (no username)
  // and answers the gateway's "authenticated" with its redirect.
  async function signIn(rd) {
    const begin = await call("login/begin", {});
    const pk = begin.options.publicKey;
    const cred = await navigator.credentials.get({
      publicKey: { ...pk, challenge: bytes(pk.challenge), allowCredentials: ids(pk.allowCredentials) },
    });
    return call("login/finish", { credential: credentialJSON(cred), rd: rd || "" });
  }

  window.portcullisPasskey = { register, signIn };

  // The settings page's "Add a passkey" button.
  const add = document.getElementById("passkey-add");
  if (add && window.PublicKeyCredential && navigator.credentials) {
    const addError = document.getElementById("passkey-add-error");
    add.hidden = false;
    add.addEventListener("click", async () => {
      add.disabled = true;
      if (addError) addError.hidden = true;
      try {
        await register("");
        window.location.assign("/.portcullis/settings?done=passkey_added");
      } catch (err) {
        if (err.answer && err.answer.status === "step_up_required") {
          window.location.assign("/.portcullis/step-up");
          return;
        }
        add.disabled = false;
        if (addError) {
          addError.textContent = err.answer ? err.message : "Adding the passkey didn't finish. Try again.";
          addError.hidden = false;
        }
      }
    });
  }

  const button = document.getElementById("passkey-signin");
  if (!button || !window.PublicKeyCredential || !navigator.credentials) return;
  const errorBox = document.getElementById("passkey-error");
  const rdInput = document.querySelector('form[action="/.portcullis/login"] input[name="rd"]');
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    if (errorBox) errorBox.hidden = true;
    try {
      const answer = await signIn(rdInput ? rdInput.value : "");
      window.location.assign(answer.redirect || "/");
    } catch (err) {
      if (err.answer && err.answer.status === "step_up_required") {
        window.location.assign("/.portcullis/step-up");
        return;
      }
      button.disabled = false;
      if (errorBox) {
        // A dismissed or timed-out browser prompt is a DOMException.
        errorBox.textContent = err.answer ? err.message : "Signing in with a passkey didn't finish. Try again.";
        errorBox.hidden = false;
      }
    }
  });
})();
