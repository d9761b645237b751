package tokenrefresher.authservers;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.TrustManager;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.oauth2.sdk.AccessTokenResponse;
import com.nimbusds.oauth2.sdk.ClientCredentialsGrant;
import com.nimbusds.oauth2.sdk.ErrorObject;
import com.nimbusds.oauth2.sdk.GeneralException;
import com.nimbusds.oauth2.sdk.GrantType;
import com.nimbusds.oauth2.sdk.OAuth2Error;
import com.nimbusds.oauth2.sdk.ParseException;
import com.nimbusds.oauth2.sdk.Scope;
import com.nimbusds.oauth2.sdk.TokenErrorResponse;
import com.nimbusds.oauth2.sdk.TokenIntrospectionErrorResponse;
import com.nimbusds.oauth2.sdk.TokenIntrospectionRequest;
import com.nimbusds.oauth2.sdk.TokenIntrospectionSuccessResponse;
import com.nimbusds.oauth2.sdk.TokenRequest;
import com.nimbusds.oauth2.sdk.as.AuthorizationServerEndpointMetadata;
import com.nimbusds.oauth2.sdk.as.AuthorizationServerMetadata;
import com.nimbusds.oauth2.sdk.auth.ClientAuthentication;
import com.nimbusds.oauth2.sdk.auth.ClientAuthenticationMethod;
import com.nimbusds.oauth2.sdk.auth.verifier.ClientAuthenticationVerifier;
import com.nimbusds.oauth2.sdk.auth.verifier.Context;
import com.nimbusds.oauth2.sdk.auth.verifier.InvalidClientException;
import com.nimbusds.oauth2.sdk.client.ClientInformation;
import com.nimbusds.oauth2.sdk.http.HTTPRequest;
import com.nimbusds.oauth2.sdk.http.HTTPResponse;
import com.nimbusds.oauth2.sdk.id.Audience;
import com.nimbusds.oauth2.sdk.id.ClientID;
import com.nimbusds.oauth2.sdk.id.Issuer;
import com.nimbusds.oauth2.sdk.token.AccessTokenType;
import com.nimbusds.oauth2.sdk.token.BearerAccessToken;
import com.nimbusds.oauth2.sdk.token.Tokens;
import com.nimbusds.oauth2.sdk.util.JSONObjectUtils;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsExchange;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;

import net.minidev.json.JSONObject;

/**
 * The Connect2id Nimbus OAuth 2.0 SDK's server side on 127.0.0.1, a real
 * authorization server for the interop tests (internal/authservers).
 *
 * <p>usage: java -jar nimbus-authserver.jar CONFIG.json
 *
 * <p>CONFIG: {"tls": {"key": PEM, "cert": PEM, "client_ca": PEM}, "clients": [RFC 7591
 * client metadata with client_id and client_secret, ...]}, the shape the other servers
 * take.
 *
 * <p>Client authentication is the SDK's: it parses the request's client
 * authentication (client_secret_basic, client_secret_jwt, private_key_jwt,
 * tls_client_auth, self_signed_tls_client_auth) and its ClientAuthenticationVerifier
 * checks it against the registrations ({@link Registry}). What is here is the HTTP
 * plumbing: the JDK's HTTPS server, which asks every client for a certificate without
 * requiring one; a token endpoint for the client credentials grant that issues random
 * opaque tokens; RFC 7662 introspection, for the introspection client only; and RFC
 * 8414 metadata. The token endpoint's RFC 8705 mTLS alias, /mtls/token, is the one that
 * hands the presented certificate to the SDK: at /token a client certificate counts for
 * nothing, so that mutual TLS works only where the metadata says it does. It prints
 * one JSON line, {"issuer": "https://127.0.0.1:PORT"}, once it listens; everything
 * else it writes goes to standard error.
 */
public final class AuthServer {

	private static final Scope OFFERED = new Scope("api");
	private static final long TOKEN_LIFETIME_SECONDS = 300;
	private static final int MAX_BODY_BYTES = 1 << 20;
	private static final String INTROSPECTOR = "introspector";

	private final String issuer;
	private final Registry registry;
	private final ClientAuthenticationVerifier<X509Certificate[]> verifier;
	private final Map<String, Issued> tokens = new ConcurrentHashMap<>();

	/** What the server knows of a token it issued. */
	private record Issued(ClientID client, Scope scope, Date expires) {
	}

	private AuthServer(String issuer, Registry registry) {
		this.issuer = issuer;
		this.registry = registry;
		// A client assertion is for this server: its issuer or either token endpoint.
		Set<Audience> audience = Set.of(new Audience(issuer), new Audience(issuer + "/token"),
				new Audience(issuer + "/mtls/token"));
		this.verifier = new ClientAuthenticationVerifier<>(registry, registry, audience);
	}

	public static void main(String[] args) throws Exception {
		// The first line of standard output is the harness's readiness signal: logs go
		// to standard error.
		PrintStream ready = System.out;
		System.setOut(System.err);
		JSONObject config = JSONObjectUtils.parse(Files.readString(Path.of(args[0])));
		JSONObject tls = JSONObjectUtils.getJSONObject(config, "tls");
		List<X509Certificate> clientCA = certificates(JSONObjectUtils.getString(tls, "client_ca"));
		Registry registry = new Registry(JSONObjectUtils.getJSONArray(config, "clients"), clientCA.get(0));

		HttpsServer https = HttpsServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
		https.setHttpsConfigurator(new HttpsConfigurator(sslContext(tls)) {
			@Override
			public void configure(HttpsParameters params) {
				SSLParameters p = getSSLContext().getDefaultSSLParameters();
				p.setWantClientAuth(true);
				params.setSSLParameters(p);
			}
		});
		String issuer = "https://127.0.0.1:" + https.getAddress().getPort();
		AuthServer as = new AuthServer(issuer, registry);
		https.createContext("/", as::serve);
		https.start();
		ready.println(new JSONObject(Map.of("issuer", issuer)).toJSONString());
		ready.flush();
	}

	private void serve(HttpExchange exchange) throws IOException {
		try (exchange) {
			HTTPResponse resp;
			String path = exchange.getRequestURI().getPath();
			boolean post = "POST".equals(exchange.getRequestMethod());
			if (path.equals("/.well-known/oauth-authorization-server") && "GET".equals(exchange.getRequestMethod())) {
				resp = metadata();
			}
			else if (path.equals("/token") && post) {
				resp = token(exchange, false);
			}
			else if (path.equals("/mtls/token") && post) {
				resp = token(exchange, true);
			}
			else if (path.equals("/introspect") && post) {
				resp = introspect(exchange);
			}
			else {
				resp = new HTTPResponse(HTTPResponse.SC_NOT_FOUND);
			}
			write(exchange, resp);
		}
		catch (RuntimeException | Error ex) {
			ex.printStackTrace();
			throw ex;
		}
	}

	private HTTPResponse metadata() {
		AuthorizationServerMetadata md = new AuthorizationServerMetadata(new Issuer(this.issuer));
		md.setTokenEndpointURI(URI.create(this.issuer + "/token"));
		md.setIntrospectionEndpointURI(URI.create(this.issuer + "/introspect"));
		md.setGrantTypes(List.of(GrantType.CLIENT_CREDENTIALS));
		md.setScopes(OFFERED);
		md.setTokenEndpointAuthMethods(List.of(ClientAuthenticationMethod.CLIENT_SECRET_BASIC,
				ClientAuthenticationMethod.CLIENT_SECRET_JWT, ClientAuthenticationMethod.PRIVATE_KEY_JWT,
				ClientAuthenticationMethod.TLS_CLIENT_AUTH, ClientAuthenticationMethod.SELF_SIGNED_TLS_CLIENT_AUTH));
		md.setTokenEndpointJWSAlgs(List.of(JWSAlgorithm.HS256, JWSAlgorithm.ES256, JWSAlgorithm.RS256, JWSAlgorithm.PS256));
		md.setIntrospectionEndpointAuthMethods(List.of(ClientAuthenticationMethod.CLIENT_SECRET_BASIC));
		AuthorizationServerEndpointMetadata mtls = new AuthorizationServerEndpointMetadata();
		mtls.setTokenEndpointURI(URI.create(this.issuer + "/mtls/token"));
		md.setMtlsEndpointAliases(mtls);
		HTTPResponse resp = new HTTPResponse(HTTPResponse.SC_OK);
		resp.setHeader("Content-Type", "application/json");
		resp.setBody(md.toJSONObject().toJSONString());
		return resp;
	}

	/** The client credentials grant, for a client the SDK authenticates. */
	private HTTPResponse token(HttpExchange exchange, boolean mtls) throws IOException {
		Context<X509Certificate[]> context = new Context<>();
		HTTPRequest req = request(exchange, mtls ? context : null);
		try {
			TokenRequest tr = TokenRequest.parse(req);
			ClientAuthentication auth = authenticate(tr.getClientAuthentication(), context);
			ClientInformation client = this.registry.get(auth.getClientID());
			if (!(tr.getAuthorizationGrant() instanceof ClientCredentialsGrant)) {
				throw new GeneralException(OAuth2Error.UNSUPPORTED_GRANT_TYPE);
			}
			Set<GrantType> grants = client.getMetadata().getGrantTypes();
			if (grants == null || !grants.contains(GrantType.CLIENT_CREDENTIALS)) {
				throw new GeneralException(OAuth2Error.UNAUTHORIZED_CLIENT);
			}
			Scope allowed = client.getMetadata().getScope() == null ? new Scope() : client.getMetadata().getScope();
			Scope scope = tr.getScope() == null ? allowed : tr.getScope();
			if (!allowed.containsAll(scope)) {
				throw new GeneralException(OAuth2Error.INVALID_SCOPE);
			}
			BearerAccessToken at = new BearerAccessToken(TOKEN_LIFETIME_SECONDS, scope);
			this.tokens.put(at.getValue(), new Issued(auth.getClientID(), scope,
					new Date(System.currentTimeMillis() + TOKEN_LIFETIME_SECONDS * 1000)));
			System.err.println("token: issued to " + auth.getClientID() + " (" + auth.getMethod() + ")");
			return new AccessTokenResponse(new Tokens(at, null)).toHTTPResponse();
		}
		catch (GeneralException ex) {
			return new TokenErrorResponse(refusal("token", ex)).toHTTPResponse();
		}
	}

	/** RFC 7662, for the introspection client. */
	private HTTPResponse introspect(HttpExchange exchange) throws IOException {
		Context<X509Certificate[]> context = new Context<>();
		HTTPRequest req = request(exchange, null);
		try {
			TokenIntrospectionRequest ir = TokenIntrospectionRequest.parse(req);
			ClientAuthentication auth = authenticate(ir.getClientAuthentication(), context);
			if (!INTROSPECTOR.equals(auth.getClientID().getValue())) {
				throw new GeneralException(OAuth2Error.INVALID_CLIENT.setDescription("Not the introspection client"));
			}
			Issued issued = this.tokens.get(ir.getToken().getValue());
			if (issued == null || issued.expires().before(new Date())) {
				return new TokenIntrospectionSuccessResponse.Builder(false).build().toHTTPResponse();
			}
			return new TokenIntrospectionSuccessResponse.Builder(true)
					.clientID(issued.client())
					.scope(issued.scope())
					.tokenType(AccessTokenType.BEARER)
					.expirationTime(issued.expires())
					.issuer(new Issuer(this.issuer))
					.build()
					.toHTTPResponse();
		}
		catch (GeneralException ex) {
			return new TokenIntrospectionErrorResponse(refusal("introspection", ex)).toHTTPResponse();
		}
	}

	/** The SDK's verdict on auth: a request with none is refused as RFC 6749 §5.2 says. */
	private ClientAuthentication authenticate(ClientAuthentication auth, Context<X509Certificate[]> context)
			throws GeneralException {
		if (auth == null) {
			throw new InvalidClientException("No client authentication");
		}
		try {
			this.verifier.verify(auth, null, context);
		}
		catch (JOSEException ex) {
			throw new InvalidClientException("Assertion not verified: " + ex.getMessage());
		}
		return auth;
	}

	/** The error a refusal answers with, logged with the SDK's reason. */
	private static ErrorObject refusal(String endpoint, GeneralException ex) {
		ErrorObject err = ex.getErrorObject() != null ? ex.getErrorObject() : OAuth2Error.INVALID_REQUEST;
		if (ex instanceof InvalidClientException) {
			err = OAuth2Error.INVALID_CLIENT.setDescription(ex.getMessage());
		}
		else if (ex instanceof ParseException && err.getDescription() == null) {
			err = err.setDescription(ex.getMessage());
		}
		System.err.println(endpoint + ": refused: " + err.getCode() + ": " + err.getDescription());
		return err;
	}

	/**
	 * The exchange as the SDK's HTTPRequest. With context, the chain the client
	 * presented in the handshake goes with it: its leaf to the SDK's parser, which
	 * tells a self-signed certificate from a CA-issued one, and the whole chain to
	 * {@link Registry}, which verifies a CA-issued one.
	 */
	private HTTPRequest request(HttpExchange exchange, Context<X509Certificate[]> context) throws IOException {
		HTTPRequest req = new HTTPRequest(HTTPRequest.Method.valueOf(exchange.getRequestMethod()),
				URI.create(this.issuer + exchange.getRequestURI()));
		exchange.getRequestHeaders().forEach((name, values) -> req.setHeader(name, values.toArray(String[]::new)));
		req.setBody(new String(exchange.getRequestBody().readNBytes(MAX_BODY_BYTES), StandardCharsets.UTF_8));
		if (context != null) {
			X509Certificate[] chain = peerChain((HttpsExchange) exchange);
			if (chain != null) {
				context.set(chain);
				req.setClientX509Certificate(chain[0]);
			}
		}
		return req;
	}

	private static X509Certificate[] peerChain(HttpsExchange exchange) {
		try {
			Certificate[] peer = exchange.getSSLSession().getPeerCertificates();
			X509Certificate[] chain = new X509Certificate[peer.length];
			for (int i = 0; i < peer.length; i++) {
				chain[i] = (X509Certificate) peer[i];
			}
			return chain.length == 0 ? null : chain;
		}
		catch (SSLPeerUnverifiedException ex) {
			return null; // no certificate presented
		}
	}

	private static void write(HttpExchange exchange, HTTPResponse resp) throws IOException {
		resp.getHeaderMap().forEach((name, values) -> exchange.getResponseHeaders().put(name, values));
		byte[] body = resp.getBody() == null ? new byte[0] : resp.getBody().getBytes(StandardCharsets.UTF_8);
		exchange.sendResponseHeaders(resp.getStatusCode(), body.length == 0 ? -1 : body.length);
		try (OutputStream out = exchange.getResponseBody()) {
			out.write(body);
		}
	}

	private static SSLContext sslContext(JSONObject tls) throws Exception {
		char[] password = "loopback".toCharArray();
		KeyStore ks = KeyStore.getInstance("PKCS12");
		ks.load(null, null);
		ks.setKeyEntry("server", privateKey(JSONObjectUtils.getString(tls, "key")), password,
				certificates(JSONObjectUtils.getString(tls, "cert")).toArray(Certificate[]::new));
		KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
		kmf.init(ks, password);
		SSLContext ctx = SSLContext.getInstance("TLS");
		ctx.init(kmf.getKeyManagers(), new TrustManager[] {new AcceptAnyClientChain()}, null);
		return ctx;
	}

	/** A PKCS #8 PEM key (what internal/authservers writes: EC P-256). */
	private static PrivateKey privateKey(String pem) throws Exception {
		String b64 = pem.replaceAll("-----(BEGIN|END) PRIVATE KEY-----", "").replaceAll("\\s", "");
		return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(b64)));
	}

	private static List<X509Certificate> certificates(String pem) throws Exception {
		return CertificateFactory.getInstance("X.509")
				.generateCertificates(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)))
				.stream().map(c -> (X509Certificate) c).toList();
	}
}
