package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// loadKeyPair reads the PEM chain in certFile and the private key in
// keyFile of site i. It returns the certificate, or one *SiteError per
// problem found.
func loadKeyPair(i int, certFile, keyFile string) (*tls.Certificate, []error) {
	certPEM, cerr := os.ReadFile(certFile)
	keyPEM, kerr := os.ReadFile(keyFile)
	return parseKeyPair(i, certFile, certPEM, cerr, keyFile, keyPEM, kerr)
}

// parseKeyPair is loadKeyPair for file contents already read, with the
// errors reading them.
func parseKeyPair(i int, certFile string, certPEM []byte, certErr error, keyFile string, keyPEM []byte, keyErr error) (*tls.Certificate, []error) {
	var (
		errs  []error
		chain []*x509.Certificate
		key   crypto.Signer
	)
	err := certErr
	if err == nil {
		chain, err = parseChain(certPEM, certFile)
	}
	if err != nil {
		errs = append(errs, &SiteError{Site: i, Key: "tls.cert_file", Err: fmt.Errorf("load %s: %w", certFile, err)})
	}
	err = keyErr
	if err == nil {
		key, err = parseKeyPEM(keyPEM)
	}
	if err != nil {
		errs = append(errs, &SiteError{Site: i, Key: "tls.key_file", Err: fmt.Errorf("load %s: %w", keyFile, err)})
	}
	if errs != nil {
		return nil, errs
	}
	if !keyMatches(chain[0], key) {
		for n, c := range chain[1:] {
			if keyMatches(c, key) {
				return nil, []error{&SiteError{Site: i, Key: "tls.cert_file", Err: fmt.Errorf(
					"load %s: %w: the key in %s belongs to certificate %d of the file; put the leaf certificate first",
					certFile, ErrKeyMismatch, keyFile, n+2)}}
			}
		}
		return nil, []error{&SiteError{Site: i, Key: "tls.key_file", Err: fmt.Errorf(
			"load %s: %w in %s", keyFile, ErrKeyMismatch, certFile)}}
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// readChain returns the certificates of the PEM file, in file order.
// Blocks of other types are skipped, so a file holding both the chain and
// the key works.
func readChain(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseChain(data, file)
}

// parseChain is readChain for the contents of file.
func parseChain(data []byte, file string) ([]*x509.Certificate, error) {
	var (
		chain   []*x509.Certificate
		sawKey  bool
		rest    = data
		block   *pem.Block
		numCert int
	)
	for {
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			sawKey = sawKey || strings.HasSuffix(block.Type, "PRIVATE KEY")
			continue
		}
		numCert++
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", numCert, err)
		}
		chain = append(chain, c)
	}
	switch {
	case chain != nil:
		return chain, nil
	case sawKey:
		return nil, fmt.Errorf("%w: the file holds a private key (are cert_file and key_file swapped?)", ErrNoCertificate)
	case len(data) > 0 && data[0] == 0x30:
		return nil, fmt.Errorf("%w: the file looks like DER; convert it with openssl x509 -inform der -in %s -out cert.pem", ErrNoCertificate, file)
	}
	return nil, ErrNoCertificate
}

// readKey returns the first private key in the PEM file: PKCS #8
// ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
func readKey(file string) (crypto.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseKeyPEM(data)
}

// parseKeyPEM is readKey for the contents of a file.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	var (
		sawCert bool
		rest    = data
		block   *pem.Block
	)
	for {
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			sawCert = sawCert || block.Type == "CERTIFICATE"
			continue
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("the private key is encrypted; wssgate needs it unencrypted (openssl pkey -in KEY -out plain.key)")
		}
		return parseKey(block.Type, block.Bytes)
	}
	if sawCert {
		return nil, fmt.Errorf("%w: the file holds certificates only (are cert_file and key_file swapped?)", ErrNoPrivateKey)
	}
	return nil, ErrNoPrivateKey
}

// parseKey parses a DER private key by its PEM block type, trying every
// encoding readKey accepts for an unusual type, and checks that TLS can
// sign with it.
func parseKey(typ string, der []byte) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch typ {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	default:
		if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			if k, err1 := x509.ParsePKCS1PrivateKey(der); err1 == nil {
				key, err = k, nil
			} else if k, err2 := x509.ParseECPrivateKey(der); err2 == nil {
				key, err = k, nil
			}
		}
	}
	if err != nil {
		var se asn1.StructuralError
		var ye asn1.SyntaxError
		if errors.As(err, &se) || errors.As(err, &ye) {
			return nil, fmt.Errorf("parse private key: the %q block is not valid DER", typ)
		}
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	}
	return nil, fmt.Errorf("unsupported private key type %T (want RSA, ECDSA or Ed25519)", key)
}

// keyMatches reports whether key is the private key of c.
func keyMatches(c *x509.Certificate, key crypto.Signer) bool {
	pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}
