package tokenrefresher.authservers;

import java.net.Socket;
import java.security.cert.X509Certificate;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Accepts any client certificate chain in the TLS handshake: a self-signed one must
 * reach the SDK's self_signed_tls_client_auth check, and a chain to another CA must
 * be refused by the token endpoint with invalid_client, not by a failed handshake.
 * {@link Registry} verifies a tls_client_auth chain against the client CA. Extended,
 * so that the JDK uses it as it is rather than wrapping it in checks of its own.
 */
final class AcceptAnyClientChain extends X509ExtendedTrustManager {

	@Override
	public void checkClientTrusted(X509Certificate[] chain, String authType) {
	}

	@Override
	public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) {
	}

	@Override
	public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {
	}

	@Override
	public void checkServerTrusted(X509Certificate[] chain, String authType) {
		throw new UnsupportedOperationException("a server-side trust manager");
	}

	@Override
	public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) {
		throw new UnsupportedOperationException("a server-side trust manager");
	}

	@Override
	public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {
		throw new UnsupportedOperationException("a server-side trust manager");
	}

	/** No names in the certificate request: the client presents what it has. */
	@Override
	public X509Certificate[] getAcceptedIssuers() {
		return new X509Certificate[0];
	}
}
