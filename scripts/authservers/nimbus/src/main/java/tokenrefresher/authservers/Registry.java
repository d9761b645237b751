package tokenrefresher.authservers;

import java.security.KeyStore;
import java.security.PublicKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import javax.security.auth.x500.X500Principal;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.jwk.AsymmetricJWK;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKMatcher;
import com.nimbusds.jose.jwk.JWKSelector;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.oauth2.sdk.auth.ClientAuthenticationMethod;
import com.nimbusds.oauth2.sdk.auth.Secret;
import com.nimbusds.oauth2.sdk.auth.verifier.ClientCredentialsSelector;
import com.nimbusds.oauth2.sdk.auth.verifier.Context;
import com.nimbusds.oauth2.sdk.auth.verifier.InvalidClientException;
import com.nimbusds.oauth2.sdk.auth.verifier.PKIClientX509CertificateBindingVerifier;
import com.nimbusds.oauth2.sdk.client.ClientInformation;
import com.nimbusds.oauth2.sdk.client.ClientMetadata;
import com.nimbusds.oauth2.sdk.id.ClientID;
import com.nimbusds.oauth2.sdk.util.JSONObjectUtils;

import net.minidev.json.JSONObject;

/**
 * The registered clients, parsed by the SDK from their RFC 7591 metadata, and the two
 * lookups the SDK's ClientAuthenticationVerifier asks of a server: a client's secrets
 * and public keys for the method it claims, and whether a CA-issued certificate is
 * bound to it (tls_client_auth). The context of each request is the certificate chain
 * the client presented in the handshake, leaf first.
 */
final class Registry implements ClientCredentialsSelector<X509Certificate[]>,
		PKIClientX509CertificateBindingVerifier<X509Certificate[]> {

	private final Map<ClientID, ClientInformation> clients = new HashMap<>();
	private final X509TrustManager clientCA;

	Registry(List<Object> registrations, X509Certificate ca) throws Exception {
		for (Object o : registrations) {
			JSONObject m = (JSONObject) o;
			ClientID id = new ClientID(JSONObjectUtils.getString(m, "client_id"));
			String secret = JSONObjectUtils.getString(m, "client_secret", null);
			this.clients.put(id, new ClientInformation(id, new Date(), ClientMetadata.parse(m),
					secret == null ? null : new Secret(secret)));
		}
		// The JDK's own PKIX trust manager, with the client CA as its only anchor: the
		// check a handshake that verifies client certificates would have made.
		KeyStore anchors = KeyStore.getInstance(KeyStore.getDefaultType());
		anchors.load(null, null);
		anchors.setCertificateEntry("client-ca", ca);
		TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
		tmf.init(anchors);
		X509TrustManager pkix = null;
		for (TrustManager tm : tmf.getTrustManagers()) {
			if (tm instanceof X509TrustManager) {
				pkix = (X509TrustManager) tm;
			}
		}
		this.clientCA = pkix;
	}

	/** The client's registration, if it is registered for method. */
	ClientInformation registered(ClientID id, ClientAuthenticationMethod method) throws InvalidClientException {
		ClientInformation c = this.clients.get(id);
		if (c == null) {
			throw InvalidClientException.BAD_ID;
		}
		if (!method.equals(c.getMetadata().getTokenEndpointAuthMethod())) {
			throw InvalidClientException.NOT_REGISTERED_FOR_AUTH_METHOD;
		}
		return c;
	}

	/** The client's registration, whatever its method. */
	ClientInformation get(ClientID id) {
		return this.clients.get(id);
	}

	@Override
	public List<Secret> selectClientSecrets(ClientID id, ClientAuthenticationMethod method,
			Context<X509Certificate[]> context) throws InvalidClientException {
		Secret secret = registered(id, method).getSecret();
		return secret == null ? List.of() : List.of(secret);
	}

	/**
	 * The registered keys that may have signed an assertion with jwsHeader
	 * (private_key_jwt), or, with no header, every registered public key
	 * (self_signed_tls_client_auth, whose certificate's key must be one of them).
	 */
	@Override
	public List<? extends PublicKey> selectPublicKeys(ClientID id, ClientAuthenticationMethod method,
			JWSHeader jwsHeader, boolean forceRefresh, Context<X509Certificate[]> context)
			throws InvalidClientException {
		ClientMetadata md = registered(id, method).getMetadata();
		JWKSet set = md.getJWKSet();
		if (set == null) {
			throw InvalidClientException.NO_REGISTERED_JWK_SET;
		}
		List<JWK> candidates = set.getKeys();
		if (jwsHeader != null) {
			// RFC 7591's token_endpoint_auth_signing_alg: "All other algorithms MUST be
			// rejected".
			if (md.getTokenEndpointAuthJWSAlg() != null && !md.getTokenEndpointAuthJWSAlg().equals(jwsHeader.getAlgorithm())) {
				throw new InvalidClientException("The client is registered for " + md.getTokenEndpointAuthJWSAlg()
						+ ", not " + jwsHeader.getAlgorithm());
			}
			candidates = new JWKSelector(JWKMatcher.forJWSHeader(jwsHeader)).select(set);
		}
		List<PublicKey> keys = new ArrayList<>();
		for (JWK jwk : candidates) {
			if (jwk instanceof AsymmetricJWK) {
				try {
					keys.add(((AsymmetricJWK) jwk).toPublicKey());
				}
				catch (JOSEException ex) {
					throw new InvalidClientException("Registered JWK " + jwk.getKeyID() + ": " + ex.getMessage());
				}
			}
		}
		return keys;
	}

	/**
	 * tls_client_auth: the presented chain must verify to the client CA, and its leaf
	 * must carry the registered tls_client_auth_subject_dn (RFC 8705 §2.1.2).
	 */
	@Override
	public void verifyCertificateBinding(ClientID id, X509Certificate certificate,
			Context<X509Certificate[]> context) throws InvalidClientException {
		String dn = registered(id, ClientAuthenticationMethod.TLS_CLIENT_AUTH).getMetadata().getTLSClientAuthSubjectDN();
		if (dn == null) {
			throw new InvalidClientException("The client has no registered tls_client_auth_subject_dn");
		}
		X509Certificate[] chain = context == null ? null : context.get();
		if (chain == null || chain.length == 0 || !chain[0].equals(certificate)) {
			throw new InvalidClientException("No client certificate chain from the TLS handshake");
		}
		try {
			this.clientCA.checkClientTrusted(chain, certificate.getPublicKey().getAlgorithm());
		}
		catch (CertificateException ex) {
			throw new InvalidClientException("The client certificate does not verify to the client CA: " + ex.getMessage());
		}
		X500Principal want;
		try {
			want = new X500Principal(dn);
		}
		catch (IllegalArgumentException ex) {
			throw new InvalidClientException("Registered tls_client_auth_subject_dn " + dn + ": " + ex.getMessage());
		}
		if (!want.equals(certificate.getSubjectX500Principal())) {
			throw new InvalidClientException("The client certificate's subject " + certificate.getSubjectX500Principal()
					+ " is not the registered " + dn);
		}
	}
}
