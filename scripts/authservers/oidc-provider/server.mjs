// oidc-provider on 127.0.0.1, a real authorization server for the interop tests.
//
// usage: node server.mjs CONFIG.json
// CONFIG: {"tls": {"key": PEM, "cert": PEM, "client_ca": PEM},
//          "clients": [oidc-provider client metadata, ...]}
// It serves HTTPS on a random loopback port, asks every client for a certificate
// without requiring one (mutual TLS is decided per client, as RFC 8705 says), and
// prints one JSON line, {"issuer": "https://127.0.0.1:PORT"}, once it listens.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const server = https.createServer({
  key: config.tls.key,
  cert: config.tls.cert,
  ca: config.tls.client_ca,
  requestCert: true,
  rejectUnauthorized: false,
});

// The certificate the client presented in this connection's handshake, if any.
function peer(ctx) {
  const cert = ctx.req.socket.getPeerX509Certificate?.();
  return cert ?? undefined;
}

// RFC 4514 order: most significant last in Node's subject, first in the string.
function subjectDN(cert) {
  return cert.subject.split('\n').reverse().join(',');
}

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys: [{ ...signing, kid: 'as-1', use: 'sig', alg: 'RS256' }] },
    scopes: ['api'],
    clientAuthMethods: [
      'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt',
      'tls_client_auth', 'self_signed_tls_client_auth',
    ],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: peer,
        // The handshake verified the chain against tls.client_ca.
        certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => {
          const cert = peer(ctx);
          switch (property) {
            case 'tls_client_auth_subject_dn':
              return subjectDN(cert) === expected;
            case 'tls_client_auth_san_dns':
              return (cert.subjectAltName ?? '').split(', ').includes(`DNS:${expected}`);
            default:
              return false;
          }
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
