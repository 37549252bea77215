package load

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/certkit"
)

// servingCert is a key and a certificate for 127.0.0.1, as the injector reads them.
type servingCert struct {
	files  map[string][]byte
	serial *big.Int
}

// issueServing makes a new key and a certificate for 127.0.0.1 that ca signs, as cert-manager
// does at each renewal.
func issueServing(t testing.TB, ca *certkit.CA) servingCert {
	t.Helper()
	c := ca.Issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "meshinit-injector"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return servingCert{serial: c.Cert.SerialNumber, files: map[string][]byte{"tls.crt": c.CertPEM, "tls.key": c.KeyPEM}}
}

// servedSerial is the serial of the certificate the server at addr serves to a new connection.
func servedSerial(addr string) (*big.Int, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the certificate is looked at
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// secretVolume is a directory laid out as kubelet lays out a Secret's volume, which is how the
// chart gives the injector its certificate: each file is a symlink into ..data, a symlink to a
// directory of the current files; an update writes a new directory, swaps ..data to it in one
// rename, and removes the old one.
type secretVolume struct {
	dir, current string
}

// newSecretVolume makes the volume with files.
func newSecretVolume(t testing.TB, files map[string][]byte) *secretVolume {
	t.Helper()
	v := &secretVolume{dir: t.TempDir()}
	v.update(t, files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// update replaces the files as kubelet does, and returns when the new ones took effect.
func (v *secretVolume) update(t testing.TB, files map[string][]byte) time.Time {
	t.Helper()
	dir, err := os.MkdirTemp(v.dir, "..")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if v.current != "" {
		if err := os.RemoveAll(v.current); err != nil {
			t.Fatal(err)
		}
	}
	v.current = dir
	return at
}
