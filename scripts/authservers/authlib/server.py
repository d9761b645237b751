"""Authlib (Flask) on 127.0.0.1, a real authorization server for the interop tests.

usage: python server.py CONFIG.json
CONFIG: {"tls": {"key": PEM, "cert": PEM},
         "clients": [{"client_id", "client_secret", "token_endpoint_auth_method",
                      "jwks": {"keys": [...]}}, ...]}
Client authentication: client_secret_basic, client_secret_jwt and private_key_jwt
(RFC 7523, Authlib's own assertion check). Authlib has no mutual TLS. It serves HTTPS
on a random loopback port and prints one JSON line, {"issuer": "https://127.0.0.1:PORT"},
once it listens. Tokens are confirmed by its RFC 7662 introspection endpoint.
"""

import json
import secrets
import ssl
import sys
import tempfile
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, jsonify
from joserfc.jwk import KeySet, OctKey
from werkzeug.serving import make_server

config = json.load(open(sys.argv[1]))


class Client(ClientMixin):
    def __init__(self, meta):
        self.meta = meta

    def get_client_id(self):
        return self.meta["client_id"]

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s == "api")

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        want = self.meta.get("client_secret")
        return bool(want) and secrets.compare_digest(want, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        mine = self.meta["token_endpoint_auth_method"]
        if method == JWTBearerClientAssertion.CLIENT_AUTH_METHOD:
            return mine in ("client_secret_jwt", "private_key_jwt")
        return method == mine

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials" and self.meta["client_id"] != "introspector"


clients = {c["client_id"]: Client(c) for c in config["clients"]}
tokens = {}  # access_token -> record
seen_jti = set()


class Assertion(JWTBearerClientAssertion):
    def get_audiences(self):
        return [issuer + "/token", issuer]

    def validate_jti(self, claims, jti):
        key = (claims["sub"], jti)
        if key in seen_jti:
            return False
        seen_jti.add(key)
        return True

    def resolve_client_public_key(self, client):
        # The method registered decides the key: a client_secret_jwt client's
        # assertion verifies only with its secret, a private_key_jwt one's only
        # with its registered public keys.
        if client.meta["token_endpoint_auth_method"] == "client_secret_jwt":
            return OctKey.import_key(client.meta["client_secret"])
        return KeySet.import_key_set(client.meta["jwks"])


class Token(dict):
    """An issued token, as the introspection endpoint asks about it."""

    def is_expired(self):
        return self["expires_at"] <= time.time()

    def is_revoked(self):
        return False

    def get_scope(self):
        return self["scope"]

    def check_client(self, client):
        return client.get_client_id() == self["client_id"]


class Introspection(IntrospectionEndpoint):
    def query_token(self, token, token_type_hint):
        return tokens.get(token)

    def introspect_token(self, token):
        return {"active": token["expires_at"] > time.time(), "client_id": token["client_id"],
                "scope": token["scope"], "token_type": "Bearer", "exp": int(token["expires_at"])}

    def check_permission(self, token, client, request):
        return client.get_client_id() == "introspector"


def save_token(token, request):
    tokens[token["access_token"]] = Token(client_id=request.client.get_client_id(),
                                          scope=token.get("scope", ""),
                                          expires_at=time.time() + token["expires_in"])


app = Flask(__name__)
server = AuthorizationServer(app, query_client=clients.get, save_token=save_token)
server.register_grant(grants.ClientCredentialsGrant)
server.register_client_auth_method(Assertion.CLIENT_AUTH_METHOD, Assertion())
server.register_endpoint(Introspection)
grants.ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS = [
    "client_secret_basic", Assertion.CLIENT_AUTH_METHOD]
Introspection.CLIENT_AUTH_METHODS = ["client_secret_basic"]


@app.post("/token")
def token():
    return server.create_token_response()


@app.post("/introspect")
def introspect():
    return server.create_endpoint_response(Introspection.ENDPOINT_NAME)


@app.get("/.well-known/oauth-authorization-server")
def metadata():
    return jsonify({
        "issuer": issuer,
        "token_endpoint": issuer + "/token",
        "introspection_endpoint": issuer + "/introspect",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_jwt", "private_key_jwt"],
        # What Authlib verifies: its RFC 7523 check calls joserfc's jwt.decode with no
        # algorithms, so only RFC 7518's required and recommended ones pass (not PS256).
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "ES256"],
    })


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
with tempfile.NamedTemporaryFile("w", suffix=".pem") as cert, tempfile.NamedTemporaryFile("w", suffix=".pem") as key:
    cert.write(config["tls"]["cert"])
    key.write(config["tls"]["key"])
    cert.flush()
    key.flush()
    ctx.load_cert_chain(cert.name, key.name)
http = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ctx)
issuer = "https://127.0.0.1:%d" % http.port
print(json.dumps({"issuer": issuer}), flush=True)
http.serve_forever()
