package tokenrefresher.authservers;

import java.security.cert.X509Certificate;

import javax.net.ssl.X509TrustManager;

/**
 * Accepts any client certificate in the TLS handshake, so that a self-signed one
 * reaches Spring's self_signed_tls_client_auth check; {@link TlsClientChain} checks
 * the others against the client CA.
 */
public class AcceptAnyClientCertificate implements X509TrustManager {

	@Override
	public void checkClientTrusted(X509Certificate[] chain, String authType) {
	}

	@Override
	public void checkServerTrusted(X509Certificate[] chain, String authType) {
		throw new UnsupportedOperationException("a server-side trust manager");
	}

	@Override
	public X509Certificate[] getAcceptedIssuers() {
		return new X509Certificate[0];
	}
}
