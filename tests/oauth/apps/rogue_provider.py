"""A provider that breaks one rule of OpenID Connect at a time: ``python rogue_provider.py PORT``.

Its discovery document, keys, authorize and token endpoints are real; ``POST /fault``
(``fault=audience|issuer|expired|foreign-key|nonce|none``) picks what is wrong with the next
ID token: issued for another client, by another issuer, long expired, signed by a key it
does not publish (under the published key's id), or for another login's nonce. These are
the answers only a compromised or misconfigured provider (or a man in the middle) gives,
which oidc-provider-mock, being correct, never does.
"""
import secrets
import sys
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

port = int(sys.argv[1])
ISSUER = f"http://127.0.0.1:{port}"
KEY = RSAKey.generate_key(2048, parameters={"kid": "rogue", "use": "sig", "alg": "RS256"})
FOREIGN = RSAKey.generate_key(2048, parameters={"kid": "rogue", "use": "sig", "alg": "RS256"})
state = {"fault": "none", "codes": {}}
app = Flask(__name__)


@app.get("/.well-known/openid-configuration")
def metadata():
    return jsonify(issuer=ISSUER, authorization_endpoint=f"{ISSUER}/authorize", token_endpoint=f"{ISSUER}/token",
                   jwks_uri=f"{ISSUER}/jwks", response_types_supported=["code"], subject_types_supported=["public"],
                   id_token_signing_alg_values_supported=["RS256"])


@app.get("/jwks")
def jwks():
    return jsonify(KeySet([KEY]).as_dict(private=False))


@app.post("/fault")
def fault():
    state["fault"] = request.form["fault"]
    return "", 204


@app.route("/authorize", methods=["GET", "POST"])
def authorize():
    code = secrets.token_urlsafe(16)
    state["codes"][code] = (request.args.get("nonce"), request.args["client_id"])
    return redirect(request.args["redirect_uri"] + "?" + urlencode({"code": code, "state": request.args["state"]}))


@app.post("/token")
def token():
    issued = state["codes"].pop(request.form.get("code"), None)
    if issued is None:
        return jsonify(error="invalid_grant", error_description="unknown code"), 400
    nonce, client_id = issued
    fault, now = state["fault"], int(time.time())
    claims = {"iss": ISSUER, "sub": "eve", "aud": client_id, "iat": now, "exp": now + 300, "nonce": nonce,
              "email": "eve@example.com"}
    if fault == "audience":
        claims["aud"] = "another-client"
    elif fault == "issuer":
        claims["iss"] = "http://127.0.0.1:9"
    elif fault == "expired":
        claims.update(iat=now - 3600, exp=now - 1800)
    elif fault == "nonce":
        claims["nonce"] = "another-logins-nonce"
    signer = FOREIGN if fault == "foreign-key" else KEY
    id_token = jwt.encode({"alg": "RS256", "kid": "rogue"}, claims, signer)
    return jsonify(access_token=secrets.token_urlsafe(16), token_type="Bearer", expires_in=300, id_token=id_token)


app.run("127.0.0.1", port, threaded=True)
