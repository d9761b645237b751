"""Call a partner API with the token the refresher published, once per line of input.

usage: TOKEN_PARAMETER=/token-refresher/tokens/ecard python call_partner.py URL

Each line read from standard input is one request to URL: an empty line a GET, any
other line a POST with the line as its body. For each request one JSON line is
printed: {"status": ..., "token_fingerprint": ..., "body": ...}, where the fingerprint
identifies the token in use (never the token itself). The process keeps its token
between requests, as a warm Lambda does, so the 401 rule of partner_token can be seen
at work when the token is replaced between two lines. AWS settings come from the
environment (AWS_REGION, AWS_ENDPOINT_URL for LocalStack, ...).
"""

import json
import sys
import urllib.error

import partner_token


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    url = argv[1]
    for line in sys.stdin:
        line = line.rstrip("\n")
        data = line.encode() if line else None
        try:
            status, body = partner_token.call_partner(url, data)
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        token = partner_token.get_token()
        print(json.dumps({"status": status, "token_fingerprint": partner_token.fingerprint(token[0]),
                          "body": body.decode(errors="replace")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
