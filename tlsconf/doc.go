// Package tlsconf builds wssgate's server-side TLS from the configuration,
// in one place: which protocol versions, cipher suites and ALPN protocols
// are offered, and which certificate each client gets.
//
// A [Manager] loads every site's certificate when it is made ([New]) and
// again for a reload ([Manager.Prepare], then the commit it returns). A
// site's certificate comes from one of:
//
//   - a cert_file/key_file pair: PEM files holding the full chain (leaf
//     first, then its intermediates) and the matching private key (RSA,
//     ECDSA or Ed25519);
//   - the internal CA (tls.internal: true): a local root kept on disk
//     that issues certificates for the site's hosts, for development;
//   - an ACME CA (tls.acme: true; Let's Encrypt by default), through
//     golang.org/x/crypto/acme/autocert: a certificate per host, answered
//     by tls-alpn-01 on the https listener or http-01 through
//     [Manager.HTTPHandler], kept in a cache directory and renewed by
//     autocert.
//
// [Manager.Run] keeps certificates current while the server runs. It
// reloads a cert_file/key_file pair when the files change (and a reload
// reads them afresh: wssgate reloads on SIGHUP); a pair that does not
// load keeps the previous certificate. It obtains ACME
// certificates: from the cache when there is a usable one, else by an
// order, which is retried after a failure with a backoff of 2 minutes
// doubling to an hour. Only the hosts of ACME sites are ever ordered:
// handshakes never cause an order, and for a name outside the
// configuration nothing reaches the CA. [Manager.Check] inspects static
// certificates as a client would (wssgate validate).
//
// Each handshake picks a site by SNI: exact host names match
// case-insensitively, with a trailing dot tolerated, and "*.example.com"
// matches exactly one more label. A client that sends no SNI or an
// unknown name gets the first site's certificate.
//
// The protocol settings follow Mozilla's "intermediate" profile: TLS 1.2
// (or 1.3, per tls.min_version) and up, and in TLS 1.2 only ECDHE key
// exchange with AEAD ciphers. ALPN offers "h2" and "http/1.1", and
// "acme-tls/1" when a site uses ACME.
//
// Load failures are returned together, one [*SiteError] per problem,
// naming the site, the configuration key and the file. An expired
// certificate is not an error: it is served, and a warning is logged.
package tlsconf
