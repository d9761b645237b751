package tokenrefresher.authservers;

import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.boot.web.context.WebServerApplicationContext;
import org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.event.EventListener;
import org.springframework.core.Ordered;
import org.springframework.http.MediaType;
import org.springframework.security.config.Customizer;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.oauth2.core.AuthorizationGrantType;
import org.springframework.security.oauth2.core.ClientAuthenticationMethod;
import org.springframework.security.oauth2.jose.jws.MacAlgorithm;
import org.springframework.security.oauth2.jose.jws.SignatureAlgorithm;
import org.springframework.security.oauth2.server.authorization.client.InMemoryRegisteredClientRepository;
import org.springframework.security.oauth2.server.authorization.client.RegisteredClient;
import org.springframework.security.oauth2.server.authorization.client.RegisteredClientRepository;
import org.springframework.security.oauth2.server.authorization.config.annotation.web.configurers.OAuth2AuthorizationServerConfigurer;
import org.springframework.security.oauth2.server.authorization.settings.AuthorizationServerSettings;
import org.springframework.security.oauth2.server.authorization.settings.ClientSettings;
import org.springframework.security.oauth2.server.authorization.settings.OAuth2TokenFormat;
import org.springframework.security.oauth2.server.authorization.settings.TokenSettings;
import org.springframework.security.web.SecurityFilterChain;

/**
 * Spring Authorization Server on 127.0.0.1, a real authorization server for the
 * interop tests (internal/authservers).
 *
 * <p>usage: java -jar spring-authserver.jar CONFIG.json
 *
 * <p>CONFIG: {"tls": {"key": PEM, "cert": PEM, "client_ca": PEM}, "clients":
 * [{"client_id", "client_secret", "token_endpoint_auth_method", "jwks": {"keys": [...]},
 * "tls_client_auth_subject_dn", "token_endpoint_auth_signing_alg"}, ...]}, the shape the other servers take.
 *
 * <p>Client authentication is Spring's own: client_secret_basic, client_secret_jwt,
 * private_key_jwt, tls_client_auth and self_signed_tls_client_auth. Spring reads a
 * client's public keys only from a JWK Set URL, so the registered keys are served on a
 * plain-HTTP loopback listener of this process. It serves HTTPS on a random loopback
 * port, asks every client for a certificate without requiring one, and prints one JSON
 * line, {"issuer": "https://127.0.0.1:PORT"}, once it listens; everything else it
 * writes goes to standard error. Tokens are opaque and confirmed by its RFC 7662
 * introspection endpoint.
 */
@SpringBootApplication
public class AuthServer {

	private static final ObjectMapper JSON = new ObjectMapper();

	private static PrintStream ready;
	private static JsonNode config;
	private static String jwksBase;

	public static void main(String[] args) throws IOException {
		// The first line of standard output is the harness's readiness signal: logs go
		// to standard error.
		ready = System.out;
		System.setOut(System.err);
		config = JSON.readTree(new File(args[0]));
		jwksBase = serveJwks(config.get("clients"));

		SpringApplication app = new SpringApplication(AuthServer.class);
		Map<String, Object> props = new HashMap<>();
		props.put("server.address", "127.0.0.1");
		props.put("server.port", "0");
		props.put("server.ssl.certificate", config.at("/tls/cert").asText());
		props.put("server.ssl.certificate-private-key", config.at("/tls/key").asText());
		props.put("server.ssl.client-auth", "want");
		props.put("spring.main.banner-mode", "off");
		props.put("logging.level.root", "WARN");
		props.put("logging.level.org.springframework.security", "INFO");
		app.setDefaultProperties(props);
		app.run(args);
	}

	/** Serves each client's registered JWK Set at jwksBase/CLIENT_ID. */
	private static String serveJwks(JsonNode clients) throws IOException {
		HttpServer http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
		Map<String, byte[]> sets = new HashMap<>();
		for (JsonNode c : clients) {
			if (c.has("jwks")) {
				sets.put("/" + URLEncoder.encode(c.get("client_id").asText(), StandardCharsets.UTF_8),
						JSON.writeValueAsBytes(c.get("jwks")));
			}
		}
		http.createContext("/", exchange -> {
			byte[] body = sets.get(exchange.getRequestURI().getRawPath());
			if (body == null) {
				exchange.sendResponseHeaders(404, -1);
			} else {
				exchange.getResponseHeaders().set("Content-Type", MediaType.APPLICATION_JSON_VALUE);
				exchange.sendResponseHeaders(200, body.length);
				exchange.getResponseBody().write(body);
			}
			exchange.close();
		});
		http.start();
		return "http://127.0.0.1:" + http.getAddress().getPort();
	}

	@EventListener
	void listening(ApplicationReadyEvent event) throws IOException {
		int port = ((WebServerApplicationContext) event.getApplicationContext()).getWebServer().getPort();
		ready.println(JSON.writeValueAsString(Map.of("issuer", "https://127.0.0.1:" + port)));
		ready.flush();
	}

	@Bean
	SecurityFilterChain authorizationServer(HttpSecurity http) throws Exception {
		OAuth2AuthorizationServerConfigurer as = OAuth2AuthorizationServerConfigurer.authorizationServer();
		http.securityMatcher(as.getEndpointsMatcher())
				.with(as, Customizer.withDefaults())
				// The token endpoint's own check refuses a request that authenticates no
				// client, with invalid_client as RFC 6749 says; the access rule would
				// refuse it first with a bare 401.
				.authorizeHttpRequests(authorize -> authorize
						.requestMatchers("/oauth2/token").permitAll()
						.anyRequest().authenticated())
				.csrf(csrf -> csrf.ignoringRequestMatchers(as.getEndpointsMatcher()));
		return http.build();
	}

	/** The issuer is left unset: Spring takes it from the request, https://127.0.0.1:PORT. */
	@Bean
	AuthorizationServerSettings settings() {
		return AuthorizationServerSettings.builder().build();
	}

	@Bean
	RegisteredClientRepository clients() {
		List<RegisteredClient> registered = new ArrayList<>();
		for (JsonNode c : config.get("clients")) {
			registered.add(client(c));
		}
		return new InMemoryRegisteredClientRepository(registered);
	}

	private static RegisteredClient client(JsonNode c) {
		String id = c.get("client_id").asText();
		String method = c.get("token_endpoint_auth_method").asText();
		RegisteredClient.Builder b = RegisteredClient.withId(UUID.randomUUID().toString())
				.clientId(id)
				.clientAuthenticationMethod(new ClientAuthenticationMethod(method))
				.authorizationGrantType(AuthorizationGrantType.CLIENT_CREDENTIALS)
				.scope("api")
				.tokenSettings(TokenSettings.builder().accessTokenFormat(OAuth2TokenFormat.REFERENCE).build());
		ClientSettings.Builder settings = ClientSettings.builder();
		if (c.hasNonNull("client_secret")) {
			String secret = c.get("client_secret").asText();
			// client_secret_jwt's HMAC key is the secret as stored; a secret checked by
			// comparison is stored with its encoding's prefix.
			b.clientSecret(method.equals("client_secret_jwt") ? secret : "{noop}" + secret);
		}
		if (method.equals("client_secret_jwt")) {
			settings.tokenEndpointAuthenticationSigningAlgorithm(MacAlgorithm.HS256);
		}
		if (c.has("jwks")) {
			settings.jwkSetUrl(jwksBase + "/" + URLEncoder.encode(id, StandardCharsets.UTF_8));
			if (method.equals("private_key_jwt")) {
				// RFC 7591's token_endpoint_auth_signing_alg when registered, else the
				// first key's alg: Spring holds each client to one algorithm.
				String alg = c.hasNonNull("token_endpoint_auth_signing_alg")
						? c.get("token_endpoint_auth_signing_alg").asText()
						: c.at("/jwks/keys/0/alg").asText("RS256");
				settings.tokenEndpointAuthenticationSigningAlgorithm(SignatureAlgorithm.from(alg));
			}
		}
		if (c.hasNonNull("tls_client_auth_subject_dn")) {
			settings.x509CertificateSubjectDN(c.get("tls_client_auth_subject_dn").asText());
		}
		return b.clientSettings(settings.build()).build();
	}

	/**
	 * Tomcat asks for a client certificate and accepts any in the handshake, as a
	 * self-signed one must pass it; the chain check of tls_client_auth is then done by
	 * {@link TlsClientChain} against tls.client_ca.
	 */
	@Bean
	WebServerFactoryCustomizer<TomcatServletWebServerFactory> anyClientCertificate() {
		return factory -> factory.addConnectorCustomizers(connector -> {
			for (var host : connector.findSslHostConfigs()) {
				host.setTrustManagerClassName(AcceptAnyClientCertificate.class.getName());
			}
		});
	}

	@Bean
	FilterRegistrationBean<TlsClientChain> tlsClientChain() throws Exception {
		FilterRegistrationBean<TlsClientChain> reg = new FilterRegistrationBean<>(
				new TlsClientChain(config.at("/tls/client_ca").asText()));
		reg.setOrder(Ordered.HIGHEST_PRECEDENCE);
		return reg;
	}
}
