package tokenrefresher.authservers;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXCertPathValidatorResult;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.Set;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;

/**
 * The part of a TLS terminator that Spring leaves to it: a presented chain that
 * validates against the client CA is handed on as the validated path (leaf, then the
 * CA), which Spring reads as tls_client_auth; a single self-signed certificate is
 * handed on as it came, for Spring's self_signed_tls_client_auth check against the
 * client's registered keys; any other certificate is dropped, as a handshake that
 * verifies would have refused it.
 */
final class TlsClientChain implements Filter {

	private static final String ATTRIBUTE = "jakarta.servlet.request.X509Certificate";

	private final CertificateFactory factory;
	private final TrustAnchor anchor;

	TlsClientChain(String caPEM) throws GeneralSecurityException {
		this.factory = CertificateFactory.getInstance("X.509");
		X509Certificate ca = (X509Certificate) this.factory.generateCertificate(
				new ByteArrayInputStream(caPEM.getBytes(StandardCharsets.US_ASCII)));
		this.anchor = new TrustAnchor(ca, null);
	}

	@Override
	public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
			throws IOException, ServletException {
		X509Certificate[] presented = (X509Certificate[]) request.getAttribute(ATTRIBUTE);
		if (presented == null || presented.length == 0) {
			chain.doFilter(request, response);
			return;
		}
		X509Certificate[] handedOn = validated(presented);
		if (handedOn == null && presented.length == 1 && selfSigned(presented[0])) {
			handedOn = presented;
		}
		chain.doFilter(with((HttpServletRequest) request, handedOn), response);
	}

	/** The path from the leaf to the CA, or null if there is none. */
	private X509Certificate[] validated(X509Certificate[] presented) {
		try {
			// The CA itself is the anchor, not part of the path to validate.
			X509Certificate[] path = Arrays.stream(presented)
					.filter(c -> !c.equals(this.anchor.getTrustedCert()))
					.toArray(X509Certificate[]::new);
			if (path.length == 0) {
				return null;
			}
			CertPath certPath = this.factory.generateCertPath(Arrays.asList(path));
			PKIXParameters params = new PKIXParameters(Set.of(this.anchor));
			params.setRevocationEnabled(false);
			PKIXCertPathValidatorResult result = (PKIXCertPathValidatorResult) CertPathValidator.getInstance("PKIX")
					.validate(certPath, params);
			X509Certificate[] full = Arrays.copyOf(path, path.length + 1);
			full[path.length] = result.getTrustAnchor().getTrustedCert();
			return full;
		}
		catch (GeneralSecurityException ex) {
			return null;
		}
	}

	private static boolean selfSigned(X509Certificate cert) {
		try {
			cert.verify(cert.getPublicKey());
			return cert.getSubjectX500Principal().equals(cert.getIssuerX500Principal());
		}
		catch (GeneralSecurityException ex) {
			return false;
		}
	}

	private static HttpServletRequest with(HttpServletRequest request, X509Certificate[] chain) {
		return new HttpServletRequestWrapper(request) {
			@Override
			public Object getAttribute(String name) {
				return ATTRIBUTE.equals(name) ? chain : super.getAttribute(name);
			}
		};
	}
}
